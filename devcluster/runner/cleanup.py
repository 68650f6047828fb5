"""Stopping every pod process a runner recorded (used by `fleet cluster down`)."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

from devcluster.runner.pod import Checkpoint
from devcluster.runner.process import proc_start_time


def recorded_processes(state_dir: Path) -> list[int]:
    """Process-group leaders of pod containers that still run, from the checkpoints."""
    pids = []
    for cp_file in state_dir.glob("*/pods/*/checkpoint.json"):
        cp = Checkpoint.load(cp_file)
        for rec in (cp.containers.values() if cp else []):
            if "pid" in rec and proc_start_time(rec["pid"]) == rec["start_time"]:
                pids.append(rec["pid"])
    return pids


def stop_all_pods(state_dir: Path, grace: float = 5.0) -> int:
    """SIGTERM every recorded pod process group, SIGKILL what is left after `grace`."""
    pids = recorded_processes(state_dir)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and recorded_processes(state_dir):
        time.sleep(0.05)
    for pid in recorded_processes(state_dir):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
    return len(pids)
