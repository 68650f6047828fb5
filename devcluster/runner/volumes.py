"""A pod's volumes, materialised as host directories the integrator bind-mounts.

The kubelet's volume plugins are reproduced for the types a local pod needs. ConfigMap,
Secret, downwardAPI and projected volumes use the kubelet's AtomicWriter layout (files are
symlinks into `..data`, which points at a timestamped directory swapped in one rename), so a
running container sees a whole update at once, and apps watching `..data` for reloads work.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcluster.runner.podenv import (
    EnvError,
    expand,
    field_value,
    host_allocatable,
    resource_value,
)

__all__ = [
    "Mount",
    "SUPPORTED_TYPES",
    "VolumeError",
    "VolumeSources",
    "container_mounts",
    "materialize",
    "volume_type",
]

SUPPORTED_TYPES = ("emptyDir", "configMap", "secret", "downwardAPI", "projected", "hostPath")
# The kubelet always mounts these read-only, whatever the volumeMount says.
_READ_ONLY_TYPES = frozenset({"configMap", "secret", "downwardAPI", "projected"})
_DEFAULT_MODE = 0o644  # 420, the API's defaultMode
_DATA = "..data"


class VolumeError(Exception):
    """A volume cannot be set up or mounted; str() names the volume and what is wrong."""

    reason = "FailedMount"


@dataclass(frozen=True)
class Mount:
    """One bind mount for a container."""

    host_path: Path
    mount_path: str
    read_only: bool


@dataclass(frozen=True)
class VolumeSources:
    """The objects volumes project, prefetched by the integrator."""

    configmaps: Mapping[str, Mapping[str, str]]
    secrets: Mapping[str, Mapping[str, str]]  # decoded (str, or bytes for binary data)
    token: str | None  # the service-account token for projected serviceAccountToken sources
    ca_crt: str | None = None  # unused: kube-root-ca.crt arrives as a normal ConfigMap
    # Node allocatable for downwardAPI resourceFieldRef with unset limits (default: this host).
    allocatable: Mapping[str, str] | None = None


def volume_type(volume: Mapping[str, Any]) -> str:
    """The volume's source type; none at all means emptyDir, as API defaulting makes it."""
    keys = [k for k in volume if k != "name" and volume[k] is not None]
    return keys[0] if keys else "emptyDir"


Payload = dict[str, tuple[bytes, int]]


def _mode(value: Any, default: int) -> int:
    return default if value is None else int(value) & 0o7777


def _check_path(vol: str, path: str) -> str:
    """Item paths are relative, without '..' elements, and must not start with '..'."""
    if not path or path.startswith("/") or ".." in path.split("/") or path.startswith(".."):
        raise VolumeError(f'volume "{vol}": invalid item path "{path}"')
    return posixpath.normpath(path)


def _data(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8", "surrogateescape")


def _key_payload(
    vol: str,
    kind: str,
    name: str,
    store: Mapping[str, Mapping[str, str | bytes]],
    items: list[Mapping[str, Any]] | None,
    default_mode: int,
    optional: bool,
) -> Payload:
    """The kubelet's MakePayload for a ConfigMap or Secret (all keys, or just `items`)."""
    if name not in store:
        if optional:
            return {}
        raise VolumeError(f'volume "{vol}": {kind} "{name}" not found')
    data = store[name]
    if not items:
        return {_check_path(vol, k): (_data(v), default_mode) for k, v in data.items()}
    payload: Payload = {}
    for item in items:
        key = item.get("key", "")
        if key not in data:
            if optional:
                continue
            what = "config" if kind == "configmap" else "secret"
            raise VolumeError(f'volume "{vol}": {kind} references non-existent {what} key: {key}')
        payload[_check_path(vol, item.get("path") or key)] = (
            _data(data[key]),
            _mode(item.get("mode"), default_mode),
        )
    return payload


def _downward_payload(
    vol: str,
    pod: Mapping[str, Any],
    items: list[Mapping[str, Any]],
    default_mode: int,
    pod_ip: str,
    allocatable: Mapping[str, str],
) -> Payload:
    containers = [
        c
        for key in ("initContainers", "containers")
        for c in (pod.get("spec") or {}).get(key) or []
    ]
    payload: Payload = {}
    for item in items:
        path = _check_path(vol, item.get("path", ""))
        try:
            if (fr := item.get("fieldRef")) is not None:
                value = field_value(pod, fr.get("fieldPath", ""), pod_ip=pod_ip)
            elif (rf := item.get("resourceFieldRef")) is not None:
                cname = rf.get("containerName")
                target = next((c for c in containers if c.get("name") == cname), None)
                if target is None:
                    raise EnvError(f"container {cname} not found")
                value = resource_value(
                    pod, target, rf.get("resource", ""), rf.get("divisor"), allocatable
                )
            else:
                raise EnvError(f'item "{path}" has neither fieldRef nor resourceFieldRef')
        except EnvError as exc:
            raise VolumeError(f'volume "{vol}": {exc}') from exc
        payload[path] = (value.encode("utf-8"), _mode(item.get("mode"), default_mode))
    return payload


def _projected_payload(
    vol: str,
    pod: Mapping[str, Any],
    spec: Mapping[str, Any],
    sources: VolumeSources,
    pod_ip: str,
    allocatable: Mapping[str, str],
) -> Payload:
    default_mode = _mode(spec.get("defaultMode"), _DEFAULT_MODE)
    payload: Payload = {}
    for src in spec.get("sources") or []:
        if (sat := src.get("serviceAccountToken")) is not None:
            if sources.token is None:
                raise VolumeError(
                    f'volume "{vol}": a serviceAccountToken source needs a token and none '
                    "was provided"
                )
            # audience and expirationSeconds shape the token the integrator requests.
            payload[_check_path(vol, sat.get("path", ""))] = (
                sources.token.encode("utf-8"),
                default_mode,
            )
        elif (cm := src.get("configMap")) is not None:
            payload.update(
                _key_payload(
                    vol,
                    "configmap",
                    cm.get("name", ""),
                    sources.configmaps,
                    cm.get("items"),
                    default_mode,
                    bool(cm.get("optional")),
                )
            )
        elif (sec := src.get("secret")) is not None:
            payload.update(
                _key_payload(
                    vol,
                    "secret",
                    sec.get("name", ""),
                    sources.secrets,
                    sec.get("items"),
                    default_mode,
                    bool(sec.get("optional")),
                )
            )
        elif (dapi := src.get("downwardAPI")) is not None:
            payload.update(
                _downward_payload(
                    vol, pod, dapi.get("items") or [], default_mode, pod_ip, allocatable
                )
            )
        else:
            kinds = ", ".join(sorted(src)) or "(empty)"
            raise VolumeError(
                f'volume "{vol}": projected source {kinds} is not supported by the local runner '
                "(supported: serviceAccountToken, configMap, secret, downwardAPI)"
            )
    return payload


def _read_tree(root: Path) -> Payload:
    out: Payload = {}
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            out[p.relative_to(root).as_posix()] = (p.read_bytes(), stat.S_IMODE(p.stat().st_mode))
    return out


def _write_atomic(vol_dir: Path, payload: Payload) -> None:
    """Publish payload under vol_dir like the kubelet's AtomicWriter.

    Files live in a fresh timestamped directory; `..data` is switched to it with one
    rename and the visible names are symlinks through `..data`, so readers never see a
    half-written update. Nothing is rewritten when the content and modes are unchanged.
    """
    vol_dir.mkdir(parents=True, exist_ok=True)
    data_link = vol_dir / _DATA
    old_dir = None
    if data_link.is_symlink():
        old_dir = vol_dir / os.readlink(data_link)
        if old_dir.is_dir() and _read_tree(old_dir) == payload:
            return
    ts_dir = Path(tempfile.mkdtemp(prefix=time.strftime("..%Y_%m_%d_%H_%M_%S."), dir=vol_dir))
    ts_dir.chmod(0o755)
    for rel, (content, mode) in payload.items():
        target = ts_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(target, mode)
    tmp_link = vol_dir / (_DATA + "_tmp")
    if tmp_link.is_symlink() or tmp_link.exists():
        tmp_link.unlink()
    os.symlink(ts_dir.name, tmp_link)
    os.replace(tmp_link, data_link)

    visible = {rel.split("/", 1)[0] for rel in payload}
    for name in sorted(visible):
        link = vol_dir / name
        want = f"{_DATA}/{name}"
        if link.is_symlink() and os.readlink(link) == want:
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        elif link.exists():
            shutil.rmtree(link)
        os.symlink(want, link)
    for entry in vol_dir.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in visible and entry.is_symlink():
            entry.unlink()
    if old_dir is not None and old_dir.is_dir() and old_dir != ts_dir:
        shutil.rmtree(old_dir)
    # Leftovers of an interrupted run: timestamped dirs that ..data no longer points at.
    for entry in vol_dir.iterdir():
        if (
            entry.name.startswith("..")
            and entry.name not in (_DATA, ts_dir.name)
            and (entry.is_dir() and not entry.is_symlink())
        ):
            shutil.rmtree(entry)


def _host_path(vol: str, spec: Mapping[str, Any]) -> Path:
    """Check (or create) a hostPath per its type, like the kubelet's hostPath type checker."""
    raw = spec.get("path") or ""
    if not raw.startswith("/"):
        raise VolumeError(f'volume "{vol}": hostPath path "{raw}" must be absolute')
    path = Path(raw)
    kind = spec.get("type") or ""

    def fail(what: str) -> VolumeError:
        return VolumeError(f'volume "{vol}": hostPath type check failed: {raw} {what}')

    if kind == "":
        # No check, as in the kubelet; the container runtime creates a missing directory.
        if not path.exists():
            path.mkdir(parents=True, exist_ok=True)
    elif kind == "DirectoryOrCreate":
        if not path.exists():
            path.mkdir(parents=True, exist_ok=True, mode=0o755)
        elif not path.is_dir():
            raise fail("is not a directory")
    elif kind == "Directory":
        if not path.is_dir():
            raise fail("is not a directory" if path.exists() else "does not exist")
    elif kind == "FileOrCreate":
        if not path.exists():
            if not path.parent.is_dir():
                raise fail(f"cannot be created: its directory {path.parent} does not exist")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
            os.close(fd)
        elif path.is_dir():
            raise fail("is a directory, not a file")
    elif kind == "File":
        if not path.is_file():
            raise fail("is not a file" if path.exists() else "does not exist")
    elif kind in ("Socket", "CharDevice", "BlockDevice"):
        test = {"Socket": stat.S_ISSOCK, "CharDevice": stat.S_ISCHR, "BlockDevice": stat.S_ISBLK}
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            raise fail("does not exist") from None
        if not test[kind](mode):
            raise fail(f"is not a {kind}")
    else:
        raise VolumeError(f'volume "{vol}": unknown hostPath type "{kind}"')
    return path


def materialize(
    pod: dict[str, Any], pod_dir: Path, sources: VolumeSources, *, pod_ip: str
) -> dict[str, Path]:
    """Create every volume of the pod under pod_dir/volumes/<name>; return name -> host path.

    emptyDir is a plain directory (medium Memory too; sizeLimit is not enforced) created once
    and never cleared, so a restarted container keeps its data. ConfigMap, Secret,
    downwardAPI and projected volumes are (re)written on every call, so calling this again
    refreshes them. hostPath returns the host path itself. fsGroup ownership is not applied.
    """
    allocatable = sources.allocatable if sources.allocatable is not None else host_allocatable()
    root = Path(pod_dir) / "volumes"
    out: dict[str, Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        kind = volume_type(volume)
        spec = volume.get(kind) or {}
        vol_dir = root / name
        if kind == "hostPath":
            out[name] = _host_path(name, spec)
            continue
        if kind == "emptyDir":
            if not vol_dir.is_dir():
                vol_dir.mkdir(parents=True, exist_ok=True)
                vol_dir.chmod(0o777)  # the kubelet's emptyDir mode
            out[name] = vol_dir
            continue
        default_mode = _mode(spec.get("defaultMode"), _DEFAULT_MODE)
        if kind == "configMap":
            payload = _key_payload(
                name,
                "configmap",
                spec.get("name", ""),
                sources.configmaps,
                spec.get("items"),
                default_mode,
                bool(spec.get("optional")),
            )
        elif kind == "secret":
            payload = _key_payload(
                name,
                "secret",
                spec.get("secretName", ""),
                sources.secrets,
                spec.get("items"),
                default_mode,
                bool(spec.get("optional")),
            )
        elif kind == "downwardAPI":
            payload = _downward_payload(
                name, pod, spec.get("items") or [], default_mode, pod_ip, allocatable
            )
        elif kind == "projected":
            payload = _projected_payload(name, pod, spec, sources, pod_ip, allocatable)
        else:
            raise VolumeError(
                f'volume "{name}": type {kind} is not supported by the local runner '
                f"(supported: {', '.join(SUPPORTED_TYPES)})"
            )
        _write_atomic(vol_dir, payload)
        out[name] = vol_dir
    return out


def _within(path: Path, base: Path) -> bool:
    real, real_base = os.path.realpath(path), os.path.realpath(base)
    return real == real_base or real.startswith(real_base.rstrip("/") + "/")


def container_mounts(
    pod: dict[str, Any],
    container: dict[str, Any],
    volume_paths: Mapping[str, Path],
    *,
    env: Mapping[str, str] | None = None,
) -> list[Mount]:
    """The container's bind mounts, parents before children (as container runtimes order).

    subPath (or subPathExpr expanded with the container's `env`) selects a path inside the
    volume; it must be relative, without '..', and must not escape the volume through a
    symlink. A missing subPath is created as a directory, as the kubelet does. ConfigMap,
    Secret, downwardAPI and projected volumes are always read-only, as in the kubelet.
    """
    types = {v["name"]: volume_type(v) for v in (pod.get("spec") or {}).get("volumes") or []}
    cname = container.get("name", "")
    mounts: list[Mount] = []
    for vm in container.get("volumeMounts") or []:
        name = vm.get("name", "")
        if name not in volume_paths:
            raise VolumeError(f'cannot find volume "{name}" to mount into container "{cname}"')
        mount_path = vm.get("mountPath") or ""
        if not mount_path.startswith("/"):
            raise VolumeError(
                f'volume "{name}": mountPath "{mount_path}" in container "{cname}" must be absolute'
            )
        base = Path(volume_paths[name])
        host = base
        sub = vm.get("subPath") or ""
        if expr := vm.get("subPathExpr"):
            if sub:
                raise VolumeError(f'volume "{name}": subPath and subPathExpr are exclusive')
            sub = expand(expr, env or {})
        if sub:
            if sub.startswith("/"):
                raise VolumeError(f'volume "{name}": subPath "{sub}" must not be absolute')
            if ".." in sub.split("/"):
                raise VolumeError(f'volume "{name}": subPath "{sub}" must not contain ".."')
            host = base / sub
            if not _within(host, base):
                raise VolumeError(f'volume "{name}": subPath "{sub}" escapes the volume')
            if not host.exists() and not host.is_symlink():
                host.mkdir(parents=True, exist_ok=True)
        read_only = bool(vm.get("readOnly")) or types.get(name) in _READ_ONLY_TYPES
        mounts.append(
            Mount(host_path=host, mount_path=posixpath.normpath(mount_path), read_only=read_only)
        )
    mounts.sort(key=lambda m: len([p for p in m.mount_path.split("/") if p]))
    return mounts
