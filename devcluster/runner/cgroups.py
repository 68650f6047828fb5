"""CPU and memory limits through cgroup v1 (the controllers this machine offers), per container.

Each container instance gets `<runner cgroup>/fleet-runner/<pod uid>/<container>` under the
`memory` and `cpu` hierarchies, with `memory.limit_in_bytes` from `limits.memory` and a CFS
quota from `limits.cpu`. Where the hierarchies are missing or read-only, containers run
without limits and `fleet cluster status` says so (the runner writes its capabilities).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcluster.runner.podenv import parse_quantity

ROOT = Path("/sys/fs/cgroup")
CFS_PERIOD_US = 100_000


def _own_path(controller: str) -> str | None:
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return path
    return None


@dataclass(frozen=True)
class CgroupSupport:
    memory: Path | None
    cpu: Path | None
    reason: str

    @property
    def summary(self) -> str:
        have = [n for n, p in (("memory", self.memory), ("cpu", self.cpu)) if p]
        if len(have) == 2:
            return "cgroup v1: CPU and memory limits enforced"
        return f"limits not enforced ({self.reason})" if not have else (
            f"cgroup v1: only {have[0]} limits enforced ({self.reason})")


def detect() -> CgroupSupport:
    """Probe whether we may create child cgroups; never raises."""
    found: dict[str, Path | None] = {}
    reasons = []
    for controller in ("memory", "cpu"):
        own = _own_path(controller)
        base = ROOT / controller
        if own is None or not base.is_dir():
            found[controller] = None
            reasons.append(f"no cgroup v1 {controller} hierarchy")
            continue
        parent = base / own.lstrip("/") / "fleet-runner"
        try:
            parent.mkdir(parents=True, exist_ok=True)
            probe = parent / ".probe"
            probe.mkdir(exist_ok=True)
            probe.rmdir()
            found[controller] = parent
        except OSError as exc:
            found[controller] = None
            reasons.append(f"{controller}: {exc.strerror or exc}")
    return CgroupSupport(found["memory"], found["cpu"], "; ".join(reasons))


def container_cgroups(support: CgroupSupport, pod_uid: str, container: dict[str, Any]
                      ) -> list[Path]:
    """Create the container's cgroups with its limits; returns the dirs the shim joins."""
    limits = (container.get("resources") or {}).get("limits") or {}
    dirs = []
    name = container["name"]
    if support.memory is not None:
        d = _fresh(support.memory / pod_uid / name)
        if "memory" in limits:
            _write(d / "memory.limit_in_bytes", str(int(parse_quantity(limits["memory"]))))
            # No swap: a container over its limit is OOM-killed as under the kubelet.
            _write(d / "memory.memsw.limit_in_bytes", str(int(parse_quantity(limits["memory"]))))
        dirs.append(d)
    if support.cpu is not None:
        d = _fresh(support.cpu / pod_uid / name)
        if "cpu" in limits:
            quota = max(1000, math.ceil(float(parse_quantity(limits["cpu"])) * CFS_PERIOD_US))
            _write(d / "cpu.cfs_period_us", str(CFS_PERIOD_US))
            _write(d / "cpu.cfs_quota_us", str(quota))
        dirs.append(d)
    return dirs


def _fresh(d: Path) -> Path:
    """A new cgroup per instance, so the OOM counter describes this instance only."""
    with contextlib.suppress(OSError):
        d.rmdir()
    d.mkdir(parents=True, exist_ok=True)
    return d


def _write(path: Path, value: str) -> None:
    with contextlib.suppress(OSError):
        path.write_text(value)


def oom_killed(support: CgroupSupport, pod_uid: str, container: str) -> bool:
    if support.memory is None:
        return False
    try:
        text = (support.memory / pod_uid / container / "memory.oom_control").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip() not in ("", "0"):
            return True
    return False


def remove_pod(support: CgroupSupport, pod_uid: str) -> None:
    """Remove a pod's (empty) cgroups once its processes are gone."""
    for base in (support.memory, support.cpu):
        if base is None:
            continue
        pod_dir = base / pod_uid
        if not pod_dir.is_dir():
            continue
        for child in pod_dir.iterdir():
            if child.is_dir():
                with contextlib.suppress(OSError):
                    child.rmdir()
        with contextlib.suppress(OSError):
            pod_dir.rmdir()
