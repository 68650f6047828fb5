"""The runner's nodes: registration, capacity from the host, status, and the node Lease.

Runner nodes carry `type=local` (kwok manages only `type=kwok` nodes), the label
`fleet.local/runner=true` and the taint `fleet.local/runner=true:NoSchedule`, so only pods of
the `fleet-local` RuntimeClass (which adds the toleration and node selector) land here.
"""

from __future__ import annotations

import asyncio
import fcntl
import ipaddress
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devcluster.runner.api import ApiError, AsyncApi
from devcluster.runner.podstatus import rfc3339, utcnow

log = logging.getLogger(__name__)

RUNNER_LABEL = "fleet.local/runner"
TAINT = {"key": RUNNER_LABEL, "value": "true", "effect": "NoSchedule"}
RUNTIME_CLASS = "fleet-local"
GPU_RESOURCE = "nvidia.com/gpu"
LEASE_SECONDS = 40
RENEW_SECONDS = 10  # 0.25 x 40, the kubelet's nodeLeaseRenewIntervalFraction
RUNNER_VERSION = "v1.37.2-fleet-runner"
# Runner pod IPs: one /24 per node from 127.1.128.0/17 (kwok allocates from 127.1.0.0/17).
RUNNER_POD_RANGE = ipaddress.ip_network("127.1.128.0/17")


def node_name(index: int) -> str:
    return f"local-{index}"


def node_pod_cidr(index: int) -> ipaddress.IPv4Network:
    base = int(RUNNER_POD_RANGE.network_address) + index * 256
    return ipaddress.ip_network(f"{ipaddress.IPv4Address(base)}/24")


def host_capacity() -> dict[str, str]:
    cpus = os.cpu_count() or 1
    try:
        with open("/proc/meminfo") as f:
            kib = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration, ValueError):
        kib = 1024 * 1024
    try:
        st = os.statvfs(tempfile.gettempdir())
        disk = f"{st.f_blocks * st.f_frsize // 1024}Ki"
    except OSError:
        disk = "10Gi"
    return {"cpu": str(cpus), "memory": f"{kib}Ki", "ephemeral-storage": disk, "pods": "110"}


@dataclass(frozen=True)
class NodeSpec:
    index: int
    gpus: int
    kwok_port: int
    capacity: dict[str, str]
    block: int = 0  # which /24 of 127.1.128.0/17 this node's pods use (see IpBlocks)

    @property
    def name(self) -> str:
        return node_name(self.index)

    def capacity_with_gpus(self) -> dict[str, str]:
        cap = dict(self.capacity)
        if self.gpus:
            cap[GPU_RESOURCE] = str(self.gpus)
        return cap


def node_object(spec: NodeSpec) -> dict[str, Any]:
    labels = {
        "kubernetes.io/hostname": spec.name, "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64", "type": "local", RUNNER_LABEL: "true",
    }
    if spec.gpus:
        labels["nvidia.com/gpu.present"] = "true"
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": spec.name, "labels": labels},
        "spec": {"podCIDR": str(node_pod_cidr(spec.block)),
                 "podCIDRs": [str(node_pod_cidr(spec.block))], "taints": [TAINT]},
    }


def node_status(spec: NodeSpec, previous: dict[str, Any] | None) -> dict[str, Any]:
    now = rfc3339(utcnow())
    old = {c["type"]: c for c in (previous or {}).get("conditions", []) or []}

    def cond(type_: str, status: str, reason: str, message: str) -> dict[str, Any]:
        same = old.get(type_, {}).get("status") == status
        return {"type": type_, "status": status, "reason": reason, "message": message,
                "lastHeartbeatTime": now,
                "lastTransitionTime": old[type_]["lastTransitionTime"] if same else now}

    cap = spec.capacity_with_gpus()
    return {
        "capacity": cap, "allocatable": cap,
        "conditions": [
            cond("MemoryPressure", "False", "KubeletHasSufficientMemory",
                 "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure",
                 "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID",
                 "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ],
        "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                      {"type": "Hostname", "address": spec.name}],
        # kwok's kubelet server answers logs and port-forward for our pods (pod-runner notes).
        "daemonEndpoints": {"kubeletEndpoint": {"Port": spec.kwok_port}},
        "nodeInfo": {
            "architecture": "amd64", "operatingSystem": "linux", "osImage": "modelfleet runner",
            "kernelVersion": os.uname().release, "kubeletVersion": RUNNER_VERSION,
            "kubeProxyVersion": "", "containerRuntimeVersion": "process://1",
            "machineID": "", "systemUUID": "", "bootID": "",
        },
        "phase": "Running",
    }


async def register(api: AsyncApi, spec: NodeSpec) -> None:
    """Create or update the node and its status (the runner owns them)."""
    obj = node_object(spec)
    existing = await api.get_or_none(f"/api/v1/nodes/{spec.name}")
    if existing is None:
        try:
            existing = await api.post("/api/v1/nodes", obj)
        except ApiError as exc:
            if exc.status != 409:
                raise
            existing = await api.get(f"/api/v1/nodes/{spec.name}")
    else:
        await api.merge_patch(f"/api/v1/nodes/{spec.name}",
                              {"metadata": {"labels": obj["metadata"]["labels"]},
                               "spec": {"taints": obj["spec"]["taints"]}})
    await api.merge_patch(f"/api/v1/nodes/{spec.name}/status",
                          {"status": node_status(spec, existing.get("status"))})


async def renew_lease(api: AsyncApi, name: str) -> None:
    path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{name}"
    now = utcnow().strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    spec = {"holderIdentity": name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": now}
    lease = await api.get_or_none(path)
    if lease is None:
        await api.post("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", {
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": name, "namespace": "kube-node-lease"}, "spec": spec})
    else:
        await api.merge_patch(path, {"spec": spec})


async def heartbeat(api: AsyncApi, spec: NodeSpec) -> None:
    """Renew the Lease every 10 s; post node status every minute (the kubelet's cadence)."""
    ticks = 0
    while True:
        try:
            await renew_lease(api, spec.name)
            if ticks % 6 == 0:
                node = await api.get(f"/api/v1/nodes/{spec.name}")
                await api.merge_patch(f"/api/v1/nodes/{spec.name}/status",
                                      {"status": node_status(spec, node.get("status"))})
        except Exception as exc:  # noqa: BLE001 - keep beating through API outages
            log.warning("heartbeat for %s failed: %s", spec.name, exc)
        ticks += 1
        await asyncio.sleep(RENEW_SECONDS)


class IpBlocks:
    """Claims /24 blocks of 127.1.128.0/17 machine-wide, so that several local clusters (tests
    run in parallel, a demo beside them) never hand out the same pod IP.

    A claim is an exclusive `flock` on `<lock dir>/<block>` held for the runner's lifetime; the
    kernel drops it when the runner exits, so a crashed runner leaks nothing.
    """

    def __init__(self, lock_dir: Path | None = None) -> None:
        base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
        self.lock_dir = lock_dir or Path(base) / "modelfleet-runner-ip-blocks"
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        self._held: dict[int, int] = {}

    def claim(self, preferred: int | None = None) -> int:
        order = list(range(RUNNER_POD_RANGE.num_addresses // 256))
        if preferred is not None and preferred in order:
            order.remove(preferred)
            order.insert(0, preferred)
        for block in order:
            if block in self._held:
                continue
            fd = os.open(self.lock_dir / str(block), os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                continue
            self._held[block] = fd
            return block
        raise RuntimeError("every /24 of 127.1.128.0/17 is claimed by another local cluster")


def block_of(cidr: str | None) -> int | None:
    """The block index of a node's existing podCIDR (a restarted runner keeps its IPs)."""
    if not cidr:
        return None
    net = ipaddress.ip_network(cidr)
    if not net.subnet_of(RUNNER_POD_RANGE):  # type: ignore[arg-type]
        return None
    return (int(net.network_address) - int(RUNNER_POD_RANGE.network_address)) // 256


def _bound_addresses() -> set[str]:
    """Local addresses with a TCP listener (leftover processes must not get a new pod's IP)."""
    found = set()
    try:
        rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return found
    for row in rows:
        cols = row.split()
        if cols[3] == "0A":
            found.add(str(ipaddress.IPv4Address(bytes.fromhex(cols[1].split(":")[0])[::-1])))
    return found


class PodIps:
    """Pod IPs of one node's /24 (.2 to .254), lowest free first, stable per pod uid."""

    def __init__(self, block: int) -> None:
        net = node_pod_cidr(block)
        self._pool = [str(h) for h in list(net.hosts())[1:]]
        self._by_uid: dict[str, str] = {}

    def allocate(self, uid: str) -> str:
        if uid in self._by_uid:
            return self._by_uid[uid]
        used = set(self._by_uid.values()) | _bound_addresses()
        for ip in self._pool:
            if ip not in used:
                self._by_uid[uid] = ip
                return ip
        raise RuntimeError(f"no free pod IP left in {self._pool[0]}/24")

    def restore(self, uid: str, ip: str) -> None:
        self._by_uid[uid] = ip

    def release(self, uid: str) -> None:
        self._by_uid.pop(uid, None)
