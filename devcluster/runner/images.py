"""The local runner's image table: which command an image reference stands for.

Nothing can be pulled here, so a versioned YAML table (images.yaml, shipped as package data)
maps image repositories to the ENTRYPOINT and CMD the image would have, run in the project's
own Python environment. `ImageTable.argv` then applies the kubelet's command/args rules.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from devcluster.runner.podenv import expand

__all__ = [
    "ImageEntry",
    "ImageNotInTable",
    "ImageRef",
    "ImageTable",
    "InvalidImageName",
    "parse_image",
]

TABLE_VERSION = 1
_DEFAULT_DISPLAY = "devcluster/runner/images.yaml"
_DOCKER_HUB = {"docker.io", "index.docker.io", "registry-1.docker.io"}
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}")
_REGISTRY = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9-]*\.?)+(?::\d+)?|\[[0-9a-fA-F:]+\](?::\d+)?")


class ImageNotInTable(Exception):
    """The image has no entry in the table; str() is the message to show the user."""

    reason = "ErrImagePull"


class InvalidImageName(ImageNotInTable):
    """The image reference cannot be parsed (the kubelet's InvalidImageName)."""

    reason = "InvalidImageName"


@dataclass(frozen=True)
class ImageRef:
    """A parsed image reference; `repository` is normalised (Docker Hub prefixes dropped)."""

    repository: str
    tag: str | None
    digest: str | None


def parse_image(image: str) -> ImageRef:
    """Parse `[registry/]path[:tag][@digest]` the way Docker normalises names.

    Docker Hub spellings collapse to the short form: `docker.io/library/python:3.11` is
    `python:3.11` and `docker.io/modelfleet/model-server` is `modelfleet/model-server`, so a
    table entry matches however a manifest spells the image.
    """
    name, digest = image, None
    if "@" in image:
        name, digest = image.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise InvalidImageName(f'image "{image}" has an invalid digest "{digest}"')
    tag = None
    colon, slash = name.rfind(":"), name.rfind("/")
    if colon > slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise InvalidImageName(f'image "{image}" has an invalid tag "{tag}"')
    parts = name.split("/")
    registry = None
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry = parts.pop(0)
        if not _REGISTRY.fullmatch(registry):
            raise InvalidImageName(f'image "{image}" has an invalid registry "{registry}"')
    if not parts or not all(_COMPONENT.fullmatch(p) for p in parts):
        raise InvalidImageName(f'image "{image}" is not a valid image reference')
    if registry is None or registry in _DOCKER_HUB:
        if len(parts) == 2 and parts[0] == "library":
            parts = parts[1:]
        repository = "/".join(parts)
    else:
        repository = registry + "/" + "/".join(parts)
    return ImageRef(repository=repository, tag=tag, digest=digest)


@dataclass(frozen=True)
class ImageEntry:
    """One table row: what an image repository (optionally only some tags) runs."""

    repository: str
    tags: tuple[str, ...]
    entrypoint: tuple[str, ...]
    cmd: tuple[str, ...]
    # argv[0] spellings that mean "this image's python" (see images.yaml).
    python_aliases: tuple[str, ...] = ()

    def names(self) -> list[str]:
        """How the entry is spelled in messages: the repository, or repository:tag per tag."""
        return [f"{self.repository}:{t}" for t in self.tags] if self.tags else [self.repository]


def _str_list(value: Any, where: str, key: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: {key} must be a list of strings, got {value!r}")
    return tuple(value)


class ImageTable:
    """A loaded, validated image table."""

    def __init__(self, entries: list[ImageEntry], source: str = _DEFAULT_DISPLAY) -> None:
        self.entries = tuple(entries)
        self.source = source

    @classmethod
    def load(cls, path: Path | None = None) -> ImageTable:
        """Load and validate a table (default: the packaged images.yaml).

        Raises ValueError naming the file and the entry when the schema or version is wrong,
        so a bad edit fails at startup rather than when a pod is scheduled.
        """
        if path is None:
            text = (resources.files("devcluster.runner") / "images.yaml").read_text("utf-8")
            source = _DEFAULT_DISPLAY
        else:
            text = Path(path).read_text("utf-8")
            source = str(path)
        try:
            doc = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ValueError(f"{source}: not valid YAML: {exc}") from exc
        if not isinstance(doc, dict):
            raise ValueError(f"{source}: expected a mapping with 'version' and 'images'")
        if doc.get("version") != TABLE_VERSION:
            raise ValueError(
                f"{source}: unsupported image table version {doc.get('version')!r} "
                f"(this runner reads version {TABLE_VERSION})"
            )
        if unknown := set(doc) - {"version", "images"}:
            raise ValueError(f"{source}: unknown top-level keys: {', '.join(sorted(unknown))}")
        images = doc.get("images")
        if not isinstance(images, list):
            raise ValueError(f"{source}: 'images' must be a list")
        entries = [cls._entry(raw, f"{source}: images[{i}]") for i, raw in enumerate(images)]
        return cls(entries, source)

    @staticmethod
    def _entry(raw: Any, where: str) -> ImageEntry:
        if not isinstance(raw, dict):
            raise ValueError(f"{where}: expected a mapping, got {raw!r}")
        repo = raw.get("repository")
        if not isinstance(repo, str) or not repo:
            raise ValueError(f"{where}: 'repository' must be a non-empty string")
        where = f"{where} ({repo})"
        allowed = {"repository", "tags", "entrypoint", "cmd", "python_aliases"}
        if unknown := set(raw) - allowed:
            raise ValueError(f"{where}: unknown keys: {', '.join(sorted(unknown))}")
        for key in ("entrypoint", "cmd"):
            if key not in raw:
                raise ValueError(f"{where}: '{key}' is required (use [] for none)")
        try:
            ref = parse_image(repo)
        except InvalidImageName as exc:
            raise ValueError(f"{where}: {exc}") from None
        if ref.tag or ref.digest:
            raise ValueError(f"{where}: 'repository' must not carry a tag or digest; use 'tags'")
        tags = _str_list(raw.get("tags"), where, "tags")
        if "tags" in raw and not tags:
            raise ValueError(f"{where}: 'tags' must not be empty (omit it to match any tag)")
        return ImageEntry(
            repository=ref.repository,
            tags=tags,
            entrypoint=_str_list(raw["entrypoint"], where, "entrypoint"),
            cmd=_str_list(raw["cmd"], where, "cmd"),
            python_aliases=_str_list(raw.get("python_aliases"), where, "python_aliases"),
        )

    def lookup(self, image: str) -> ImageEntry:
        """The entry for an image reference; a tag-specific entry wins over a catch-all."""
        ref = parse_image(image)
        tag = ref.tag if ref.tag or ref.digest else "latest"
        candidates = [e for e in self.entries if e.repository == ref.repository]
        for entry in candidates:
            if entry.tags and tag in entry.tags:
                return entry
        for entry in candidates:
            if not entry.tags:
                return entry
        known = ", ".join(n for e in self.entries for n in e.names())
        raise ImageNotInTable(
            f'image "{image}" is not in the local runner\'s image table ({self.source}); '
            f"add an entry mapping its repository to a command, or use one of: {known}"
        )

    def argv(
        self, container: dict[str, Any], env: Mapping[str, str], python: str = sys.executable
    ) -> list[str]:
        """The process argv for a container, by the kubelet's and runtime's rules.

        `command` replaces the ENTRYPOINT and drops the image CMD; `args` replaces the CMD;
        only the pod's command and args get `$(VAR)` expansion with `env` (not the table's
        values). For entries with python_aliases, an argv[0] such as "python" or "python3"
        becomes `python`, so `command: ["python", "-c", ...]` runs the project's interpreter.
        """
        image = container.get("image") or ""
        entry = self.lookup(image)
        command = [expand(str(c), env) for c in container.get("command") or []]
        args = [expand(str(a), env) for a in container.get("args") or []]
        if command:
            argv = command + args
        else:
            image_cmd = [v.replace("{python}", python) for v in entry.cmd]
            argv = [v.replace("{python}", python) for v in entry.entrypoint]
            argv += args if args else image_cmd
        if not argv:
            raise ValueError(
                f'container "{container.get("name", "")}": image "{image}" has no entrypoint or '
                f"cmd in {self.source} and the pod sets no command or args; nothing to run"
            )
        if argv[0] in entry.python_aliases:
            argv[0] = python
        return argv
