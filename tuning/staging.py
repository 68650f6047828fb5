"""Stage one dataset version from its URI to the pod's local disk, once.

`--data URI` names either one dataset version (a directory holding `dataset.json`) or a base
whose numbered subdirectories are versions; then the newest is taken (re-training relies on
that: "train on the newest data").
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from serving.store import ArtifactMissing
from tuning.contract import DATASET_FILE, TrainerError
from tuning.remote import Remote, join


@dataclass(frozen=True)
class StagedData:
    uri: str  # the dataset version's URI
    local_dir: Path
    info: dict[str, Any]  # dataset.json
    bytes: int
    seconds: float

    @property
    def version(self) -> str:
        return str(self.info.get("version", ""))

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds > 0 else 0.0


def resolve_version(data_uri: str, webhdfs_url: str = "") -> str:
    """The URI of the dataset version `data_uri` names (itself, or its newest version)."""
    remote = Remote.open(data_uri, webhdfs_url)
    kind = remote.kind()
    if kind is None:
        raise TrainerError(f"data {data_uri} does not exist")
    if kind == "file":
        raise TrainerError(f"data {data_uri} is a file; expected a dataset directory "
                           f"holding {DATASET_FILE} (or numbered versions of one)")
    if remote.kind(DATASET_FILE) == "file":
        return data_uri
    versions = sorted((int(c) for c in remote.children() if c.isdigit() and int(c) > 0),
                      reverse=True)
    for v in versions:
        if remote.kind(v, DATASET_FILE) == "file":
            return join(data_uri, v)
    raise TrainerError(f"data {data_uri} holds no {DATASET_FILE} and no numbered version "
                       f"with one (publish a dataset with `fleet train publish-example`)")


def read_info(version_uri: str, webhdfs_url: str = "") -> dict[str, Any]:
    remote = Remote.open(version_uri, webhdfs_url)
    try:
        info = json.loads(remote.read_text(DATASET_FILE))
    except ArtifactMissing as exc:
        raise TrainerError(f"data {version_uri}: {DATASET_FILE} is missing") from exc
    except ValueError as exc:
        raise TrainerError(f"data {version_uri}: {DATASET_FILE} is not JSON: {exc}") from exc
    if not isinstance(info, dict):
        raise TrainerError(f"data {version_uri}: {DATASET_FILE} is not a JSON object")
    return info


def stage(data_uri: str, dest: Path, webhdfs_url: str = "") -> StagedData:
    """Copy the dataset version to `dest` (skipped when an earlier call already staged it)."""
    version_uri = resolve_version(data_uri, webhdfs_url)
    marker = dest / ".staged-from"
    if marker.is_file() and marker.read_text() == version_uri:
        info = json.loads((dest / DATASET_FILE).read_text())
        size = sum(f.stat().st_size for f in dest.rglob("*") if f.is_file())
        return StagedData(version_uri, dest, info, size, 0.0)
    started = time.perf_counter()
    tmp = dest.with_name(dest.name + ".partial")
    size = Remote.open(version_uri, webhdfs_url).download("", tmp)
    if dest.exists():
        import shutil

        shutil.rmtree(dest)
    tmp.rename(dest)
    (dest / ".staged-from").write_text(version_uri)
    seconds = time.perf_counter() - started
    try:
        info = json.loads((dest / DATASET_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise TrainerError(f"data {version_uri}: {DATASET_FILE} unreadable: {exc}") from exc
    return StagedData(version_uri, dest, info, size, seconds)
