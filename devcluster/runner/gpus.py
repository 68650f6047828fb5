"""Per-node `nvidia.com/gpu` allocation, standing in for the kubelet's device manager.

The device manager hands a pod's containers exclusive devices at admission and fails the
pod with `UnexpectedAdmissionError` when too few are free; it checkpoints assignments so a
kubelet restart keeps them. This module does the same per pod (the process runner gives all
containers of a pod the pod's devices), choosing the lowest free indices so runs are
reproducible.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from typing import Any

__all__ = [
    "GPU_RESOURCE",
    "AllocationError",
    "GpuAllocator",
    "GpuDevice",
    "discover",
    "gpu_limit",
    "visible_devices_env",
]

GPU_RESOURCE = "nvidia.com/gpu"
ADMISSION_REASON = "UnexpectedAdmissionError"


@dataclass(frozen=True)
class GpuDevice:
    """One device: its nvidia-smi index and, when known, its `GPU-...` UUID."""

    index: int
    uuid: str | None


def discover(fake_count: int | None = None) -> list[GpuDevice]:
    """The node's GPUs: `fake_count` fake ones, else what nvidia-smi lists (none on failure)."""
    if fake_count is not None:
        return [GpuDevice(index=i, uuid=None) for i in range(fake_count)]
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    try:
        proc = subprocess.run(
            [smi, "--query-gpu=index,uuid", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return []
    if proc.returncode != 0:
        return []
    devices = []
    for line in proc.stdout.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 2 or not fields[0].isdigit():
            continue
        devices.append(GpuDevice(index=int(fields[0]), uuid=fields[1] or None))
    return sorted(devices, key=lambda d: d.index)


class AllocationError(Exception):
    """Not enough free devices; `str()` is the device manager's admission message."""

    reason = ADMISSION_REASON

    def __init__(self, requested: int, available: int) -> None:
        self.requested = requested
        self.available = available
        super().__init__(
            f"Allocate failed due to requested number of devices unavailable for {GPU_RESOURCE}. "
            f"Requested: {requested}, Available: {available}, which is unexpected"
        )


class GpuAllocator:
    """Exclusive device assignment per pod UID; every failure leaves the state unchanged."""

    def __init__(self, devices: list[GpuDevice]) -> None:
        self._devices = {d.index: d for d in devices}
        if len(self._devices) != len(devices):
            raise ValueError("duplicate GPU indices")
        self._by_pod: dict[str, list[int]] = {}

    @property
    def capacity(self) -> int:
        return len(self._devices)

    @property
    def free(self) -> int:
        return self.capacity - sum(len(v) for v in self._by_pod.values())

    def _in_use(self, exclude: str | None = None) -> set[int]:
        return {i for uid, ids in self._by_pod.items() if uid != exclude for i in ids}

    def allocate(self, pod_uid: str, count: int) -> list[GpuDevice]:
        """The pod's devices, assigning the lowest free ones on first call.

        Idempotent: a pod that already holds `count` devices gets the same ones again, so a
        container restart sees the same GPUs. A different count (in-place resize) is
        re-assigned, keeping held devices first; raises `AllocationError` if it cannot.
        """
        if count < 0:
            raise ValueError(f"negative GPU count {count}")
        held = self._by_pod.get(pod_uid, [])
        if len(held) == count:
            return [self._devices[i] for i in held]
        if count == 0:
            self._by_pod.pop(pod_uid, None)
            return []
        busy = self._in_use(exclude=pod_uid)
        candidates = [i for i in held if i in self._devices] + sorted(
            i for i in self._devices if i not in busy and i not in held
        )
        if len(candidates) < count:
            raise AllocationError(count, len(candidates))
        chosen = sorted(candidates[:count])
        self._by_pod[pod_uid] = chosen
        return [self._devices[i] for i in chosen]

    def release(self, pod_uid: str) -> None:
        """Free the pod's devices (pod terminal or deleted); unknown UIDs are ignored."""
        self._by_pod.pop(pod_uid, None)

    def restore(self, pod_uid: str, indices: list[int]) -> None:
        """Re-establish a checkpointed assignment after a runner restart.

        Raises ValueError (and changes nothing) for an unknown index or one held by another pod.
        """
        wanted = sorted(set(indices))
        unknown = [i for i in wanted if i not in self._devices]
        if unknown:
            raise ValueError(f"GPU indices {unknown} not present on this node")
        clash = sorted(set(wanted) & self._in_use(exclude=pod_uid))
        if clash:
            raise ValueError(f"GPU indices {clash} already assigned to another pod")
        if wanted:
            self._by_pod[pod_uid] = wanted
        else:
            self._by_pod.pop(pod_uid, None)

    def assigned(self) -> dict[str, list[int]]:
        """Pod UID -> device indices, for the checkpoint file (a copy)."""
        return {uid: list(ids) for uid, ids in self._by_pod.items()}


def visible_devices_env(devices: list[GpuDevice]) -> dict[str, str]:
    """Environment that confines a process to `devices`.

    UUIDs when every device has one (stable across reboots), else indices. With no devices
    CUDA needs an empty CUDA_VISIBLE_DEVICES to hide all GPUs, and NVIDIA's container
    toolkit spells "none" as `void`.
    """
    if not devices:
        return {"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"}
    if all(d.uuid for d in devices):
        value = ",".join(str(d.uuid) for d in devices)
    else:
        value = ",".join(str(d.index) for d in devices)
    return {"CUDA_VISIBLE_DEVICES": value, "NVIDIA_VISIBLE_DEVICES": value}


def _gpus(container: dict[str, Any]) -> int:
    resources = container.get("resources") or {}
    value = (resources.get("limits") or {}).get(GPU_RESOURCE)
    if value is None:
        value = (resources.get("requests") or {}).get(GPU_RESOURCE, 0)
    try:
        return int(str(value))
    except ValueError:
        return 0


def gpu_limit(pod: dict[str, Any]) -> int:
    """GPUs the pod needs, computed like the scheduler's effective pod request.

    Regular containers and sidecars (restartPolicy Always init containers) run together and
    add up; a regular init container runs alone beside the sidecars started before it, so
    the pod needs the larger of the two.
    """
    spec = pod.get("spec") or {}
    total = sum(_gpus(c) for c in spec.get("containers") or [])
    sidecars = 0
    init_peak = 0
    for c in spec.get("initContainers") or []:
        if c.get("restartPolicy") == "Always":
            sidecars += _gpus(c)
            init_peak = max(init_peak, sidecars)
        else:
            init_peak = max(init_peak, sidecars + _gpus(c))
    return max(total + sidecars, init_peak)
