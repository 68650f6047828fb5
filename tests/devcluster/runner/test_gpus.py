"""nvidia.com/gpu allocation behaves like the kubelet's device manager."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from devcluster.runner.gpus import (
    AllocationError,
    GpuAllocator,
    GpuDevice,
    discover,
    gpu_limit,
    visible_devices_env,
)

ERR_2_OF_1 = (
    "Allocate failed due to requested number of devices unavailable for nvidia.com/gpu. "
    "Requested: 2, Available: 1, which is unexpected"
)


def fake_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    script = tmp_path / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    monkeypatch.setenv("PATH", str(tmp_path))


def test_discover_fake_count() -> None:
    assert discover(fake_count=3) == [GpuDevice(0, None), GpuDevice(1, None), GpuDevice(2, None)]
    assert discover(fake_count=0) == []


def test_discover_parses_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args_file = tmp_path / "args"
    fake_smi(
        tmp_path, monkeypatch, f'echo "$@" > {args_file}\nprintf "0, GPU-aaa\\n1, GPU-bbb\\n"\n'
    )
    assert discover() == [GpuDevice(0, "GPU-aaa"), GpuDevice(1, "GPU-bbb")]
    assert args_file.read_text() == "--query-gpu=index,uuid --format=csv,noheader\n"


def test_discover_without_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    assert discover() == []


def test_discover_failing_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_smi(tmp_path, monkeypatch, 'echo "NVIDIA-SMI has failed" >&2\nexit 9\n')
    assert discover() == []


def test_discover_ignores_garbage_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_smi(tmp_path, monkeypatch, 'printf "No devices were found\\n1, GPU-b\\n0, GPU-a\\n"\n')
    assert discover() == [GpuDevice(0, "GPU-a"), GpuDevice(1, "GPU-b")]


def test_allocate_lowest_free_and_idempotent() -> None:
    alloc = GpuAllocator(discover(fake_count=4))
    assert alloc.capacity == 4
    assert [d.index for d in alloc.allocate("pod-a", 2)] == [0, 1]
    assert [d.index for d in alloc.allocate("pod-b", 1)] == [2]
    assert [d.index for d in alloc.allocate("pod-a", 2)] == [0, 1]  # container restart
    assert alloc.free == 1
    alloc.release("pod-a")
    assert alloc.free == 3
    assert [d.index for d in alloc.allocate("pod-c", 3)] == [0, 1, 3]
    assert alloc.allocate("pod-d", 0) == []
    assert alloc.assigned() == {"pod-b": [2], "pod-c": [0, 1, 3]}


def test_over_capacity_error_and_nothing_allocated() -> None:
    alloc = GpuAllocator(discover(fake_count=2))
    alloc.allocate("pod-a", 1)
    with pytest.raises(AllocationError) as info:
        alloc.allocate("pod-b", 2)
    assert str(info.value) == ERR_2_OF_1
    assert info.value.reason == "UnexpectedAdmissionError"
    assert (info.value.requested, info.value.available) == (2, 1)
    assert alloc.assigned() == {"pod-a": [0]}
    assert alloc.free == 1
    assert [d.index for d in alloc.allocate("pod-b", 1)] == [1]


def test_no_gpus_node_error_text() -> None:
    with pytest.raises(AllocationError, match=r"Requested: 1, Available: 0, which is unexpected$"):
        GpuAllocator([]).allocate("pod", 1)


def test_count_change_keeps_held_devices_or_leaves_state_alone() -> None:
    alloc = GpuAllocator(discover(fake_count=3))
    alloc.allocate("a", 1)
    alloc.allocate("b", 1)
    assert [d.index for d in alloc.allocate("b", 2)] == [1, 2]
    with pytest.raises(AllocationError):
        alloc.allocate("a", 2)
    assert alloc.assigned() == {"a": [0], "b": [1, 2]}
    assert alloc.allocate("b", 0) == []
    assert alloc.assigned() == {"a": [0]}


def test_release_unknown_is_noop_and_assigned_is_a_copy() -> None:
    alloc = GpuAllocator(discover(fake_count=1))
    alloc.release("nobody")
    alloc.allocate("a", 1)
    alloc.assigned()["a"].append(99)
    assert alloc.assigned() == {"a": [0]}


def test_restore_from_checkpoint() -> None:
    alloc = GpuAllocator(discover(fake_count=4))
    alloc.restore("a", [3, 1])
    assert alloc.assigned() == {"a": [1, 3]}
    assert [d.index for d in alloc.allocate("a", 2)] == [1, 3]  # same devices after restart
    assert [d.index for d in alloc.allocate("b", 2)] == [0, 2]
    with pytest.raises(ValueError, match="already assigned"):
        alloc.restore("c", [0])
    with pytest.raises(ValueError, match="not present"):
        alloc.restore("c", [7])
    assert alloc.assigned() == {"a": [1, 3], "b": [0, 2]}
    assert alloc.free == 0


def test_duplicate_devices_rejected() -> None:
    with pytest.raises(ValueError):
        GpuAllocator([GpuDevice(0, None), GpuDevice(0, "GPU-x")])


def test_visible_devices_env() -> None:
    assert visible_devices_env([GpuDevice(0, None), GpuDevice(1, None)]) == {
        "CUDA_VISIBLE_DEVICES": "0,1",
        "NVIDIA_VISIBLE_DEVICES": "0,1",
    }
    assert visible_devices_env([GpuDevice(0, "GPU-aaa"), GpuDevice(1, "GPU-bbb")]) == {
        "CUDA_VISIBLE_DEVICES": "GPU-aaa,GPU-bbb",
        "NVIDIA_VISIBLE_DEVICES": "GPU-aaa,GPU-bbb",
    }
    assert visible_devices_env([]) == {"CUDA_VISIBLE_DEVICES": "", "NVIDIA_VISIBLE_DEVICES": "void"}
    mixed = visible_devices_env([GpuDevice(2, "GPU-c"), GpuDevice(3, None)])
    assert mixed["CUDA_VISIBLE_DEVICES"] == "2,3"


def _c(name: str, gpus: int | str | None, **extra: object) -> dict[str, object]:
    c: dict[str, object] = {"name": name, **extra}
    if gpus is not None:
        c["resources"] = {"limits": {"nvidia.com/gpu": gpus, "cpu": "1"}}
    return c


def test_gpu_limit() -> None:
    assert gpu_limit({"spec": {"containers": [_c("a", 1), _c("b", "2"), _c("c", None)]}}) == 3
    assert gpu_limit({"spec": {"containers": [_c("a", None)]}}) == 0
    # Regular init containers: the max, compared with the containers' sum.
    assert gpu_limit({"spec": {"initContainers": [_c("i", 4)], "containers": [_c("a", 1)]}}) == 4
    assert gpu_limit({"spec": {"initContainers": [_c("i", 1)], "containers": [_c("a", 2)]}}) == 2
    # A sidecar runs beside everything after it.
    sidecar = _c("s", 1, restartPolicy="Always")
    pod = {"spec": {"initContainers": [sidecar, _c("i", 2)], "containers": [_c("a", 1)]}}
    assert gpu_limit(pod) == 3
    requests_only = {"name": "r", "resources": {"requests": {"nvidia.com/gpu": "1"}}}
    assert gpu_limit({"spec": {"containers": [requests_only]}}) == 1
