"""Measured CPU and memory of the runner's pods, published as kwok `ResourceUsage` objects.

metrics-server scrapes each node's kubelet endpoint at `/metrics/resource`; for runner nodes
that endpoint is the runner's own kwok, whose `Metric` object (`metrics-resource`) evaluates
`pod.Usage(...)`/`pod.CumulativeUsage(...)` from the pod's `ResourceUsage` object. Every
`INTERVAL` seconds this loop measures each running container's process group:

- CPU: utime+stime of every process in the container's process group (`/proc/PID/stat`),
  as cores over the last interval;
- memory: the container's cgroup v1 working set (`memory.usage_in_bytes` minus
  `total_inactive_file`) where the runner made one, else the group's resident set.

One `ResourceUsage` per pod (named after it, owned by it, so the garbage collector removes it
with the pod), written only when a value changed. The nodes get the annotation metrics-server
reads for the scrape path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcluster.runner import process
from devcluster.runner.api import ApiError, AsyncApi
from devcluster.runner.cgroups import CgroupSupport
from devcluster.runner.pod import Checkpoint

log = logging.getLogger(__name__)

INTERVAL = 10.0
METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"
RESOURCE_USAGES = "/apis/kwok.x-k8s.io/v1alpha1/namespaces/{ns}/resourceusages"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def metrics_path(node_name: str) -> str:
    """Where kwok's `metrics-resource` Metric serves this node's kubelet resource metrics."""
    return f"/metrics/nodes/{node_name}/metrics/resource"


@dataclass(frozen=True)
class GroupSample:
    cpu_seconds: float
    rss_bytes: int


def scan_process_groups(proc: Path = Path("/proc")) -> dict[int, GroupSample]:
    """CPU seconds and resident bytes summed per process group, from one pass over /proc."""
    cpu: dict[int, float] = {}
    rss: dict[int, int] = {}
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            statm = (entry / "statm").read_text().split()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[-1].split()
        # fields[0] is the state (field 3 of stat): pgrp is field 5, utime/stime 14/15.
        pgrp = int(fields[2])
        cpu[pgrp] = cpu.get(pgrp, 0.0) + (int(fields[11]) + int(fields[12])) / CLK_TCK
        rss[pgrp] = rss.get(pgrp, 0) + int(statm[1]) * PAGE
    return {g: GroupSample(cpu[g], rss[g]) for g in cpu}


def cgroup_working_set(support: CgroupSupport, pod_uid: str, container: str) -> int | None:
    """The kubelet's working set: usage minus inactive file pages (cgroup v1)."""
    if support.memory is None:
        return None
    d = support.memory / pod_uid / container
    try:
        usage = int((d / "memory.usage_in_bytes").read_text())
        stat = (d / "memory.stat").read_text().split("\n")
    except (OSError, ValueError):
        return None
    inactive = 0
    for line in stat:
        key, _, value = line.partition(" ")
        if key == "total_inactive_file":
            inactive = int(value)
    return max(0, usage - inactive)


def cpu_quantity(cores: float) -> str:
    return f"{max(0, round(cores * 1000))}m"


def memory_quantity(nbytes: int) -> str:
    return str(max(0, int(nbytes)))


def _values(spec: dict[str, Any]) -> dict[tuple[str, str], float]:
    out = {}
    for u in spec["usages"]:
        for resource, v in u["usage"].items():
            raw = v["value"]
            out[(u["containers"][0], resource)] = (float(raw[:-1]) / 1000 if raw.endswith("m")
                                                   else float(raw))
    return out


def _significant(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Worth a write: 100 idle pods must not cost 10 API writes a second for noise.

    A change counts when CPU moves by 5m and 10 %, or memory by 5 % (the HPA's own
    tolerance is 10 %, so nothing it could act on is held back)."""
    a, b = _values(old), _values(new)
    if a.keys() != b.keys():
        return True
    for key, new_v in b.items():
        old_v = a[key]
        if key[1] == "cpu":
            if abs(new_v - old_v) >= 0.005 and abs(new_v - old_v) >= 0.1 * max(old_v, 1e-9):
                return True
        elif abs(new_v - old_v) >= 0.05 * max(old_v, 1.0):
            return True
    return False


@dataclass
class _Last:
    pid: int
    start: int
    cpu_seconds: float
    at: float


class UsageReporter:
    """Samples the pods recorded under the runner's node state dirs and writes their usage."""

    def __init__(self, api: AsyncApi, node_dirs: dict[str, Path], support: CgroupSupport,
                 interval: float = INTERVAL) -> None:
        self.api = api
        self.node_dirs = node_dirs
        self.support = support
        self.interval = interval
        self._last: dict[tuple[str, str], _Last] = {}
        self._written: dict[str, dict[str, Any]] = {}

    def _pods(self) -> Iterable[tuple[str, str, Checkpoint]]:
        for d in self.node_dirs.values():
            root = d / "pods"
            if not root.is_dir():
                continue
            for pod_dir in root.iterdir():
                parts = pod_dir.name.split("_")
                if len(parts) != 3:
                    continue
                cp = Checkpoint.load(pod_dir / "checkpoint.json")
                if cp is not None:
                    yield parts[0], parts[1], cp

    def sample(self, now: float | None = None) -> dict[tuple[str, str, str], dict[str, Any]]:
        """{(namespace, pod, uid): ResourceUsage spec} for every pod with a measured container.

        A container's first sighting only records a baseline (no CPU rate yet)."""
        now = time.monotonic() if now is None else now
        groups = scan_process_groups()
        seen: set[tuple[str, str]] = set()
        specs: dict[tuple[str, str, str], dict[str, Any]] = {}
        for ns, name, cp in self._pods():
            usages = []
            for cname, rec in sorted(cp.containers.items()):
                pid, start = rec.get("pid"), rec.get("start_time")
                if not pid or process.proc_start_time(pid) != start or pid not in groups:
                    continue
                key = (cp.uid, cname)
                seen.add(key)
                g = groups[pid]
                last = self._last.get(key)
                self._last[key] = _Last(pid, start, g.cpu_seconds, now)
                if last is None or (last.pid, last.start) != (pid, start) or now <= last.at:
                    continue
                cores = max(0.0, g.cpu_seconds - last.cpu_seconds) / (now - last.at)
                mem = cgroup_working_set(self.support, cp.uid, cname)
                usages.append({"containers": [cname], "usage": {
                    "cpu": {"value": cpu_quantity(cores)},
                    "memory": {"value": memory_quantity(g.rss_bytes if mem is None else mem)}}})
            if usages:
                specs[(ns, name, cp.uid)] = {"usages": usages}
        for key in [k for k in self._last if k not in seen]:
            del self._last[key]
        return specs

    async def publish(self, specs: dict[tuple[str, str, str], dict[str, Any]]) -> None:
        for (ns, name, uid), spec in specs.items():
            old = self._written.get(uid)
            if old is not None and not _significant(old, spec):
                continue
            obj = {
                "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ResourceUsage",
                "metadata": {"name": name, "namespace": ns, "ownerReferences": [
                    {"apiVersion": "v1", "kind": "Pod", "name": name, "uid": uid}]},
                "spec": spec,
            }
            try:
                await self.api.apply(f"{RESOURCE_USAGES.format(ns=ns)}/{name}", obj)
            except ApiError as exc:
                # 404: the CRD is not installed (an old cluster); 409/422: the pod is gone.
                log.debug("ResourceUsage %s/%s: %s", ns, name, exc)
                continue
            self._written[uid] = spec
        live = {uid for (_, _, uid) in specs}
        for uid in [u for u in self._written if u not in live]:
            del self._written[uid]

    async def annotate_nodes(self) -> None:
        for node_name in self.node_dirs:
            with contextlib.suppress(ApiError):
                await self.api.merge_patch(
                    f"/api/v1/nodes/{node_name}",
                    {"metadata": {"annotations": {
                        METRICS_PATH_ANNOTATION: metrics_path(node_name)}}})

    async def run(self) -> None:
        await self.annotate_nodes()
        while True:
            try:
                specs = await asyncio.to_thread(self.sample)
                await self.publish(specs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - usage is best effort; pods go on
                log.warning("usage sampling: %s", exc)
            await asyncio.sleep(self.interval)
