"""The process a sweep trial runs in, and how the worker talks to it.

Every trial runs in its own process of the per-pod environment (`tuning.train_run`): a crash is
contained and its GPU memory goes when it exits. Two ways to get that process quickly:

- `Zygote` (the worker pool's default): one process imports TensorFlow once and forks a trial
  process per config, so a trial pays neither the import (≈5 s of CPU on a loaded 2-core
  machine) nor, since the forked process leaves with `os._exit` after handing over its result,
  TensorFlow's teardown.
- `SpawnedTrial`: a fresh `--warm` interpreter per trial (pod-per-trial, distributed trials, or
  `FLEET_TRIAL_START=spawn`); a pool keeps the next one warm while a trial runs.

Both hand the worker the same events (`TrialHandle.events()`): the trainer's JSON lines, ending
with `{"phase": "done", "result": …}` once the model is published, so the worker tells the
result without waiting for the process to be gone.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("sweep")
EXIT_WAIT_S = 10.0  # a trial process that handed over its result must be gone by then
Event = dict[str, Any]


class TrialHandle(Protocol):
    """One trial's process, as the worker sees it."""

    result: dict[str, Any] | None

    def events(self) -> Iterator[Event]:
        """The trainer's events until `done`, or until the process ended without it."""
        ...

    def kill(self) -> None:
        """SIGKILL the trial process (pruned, or the pod is terminating); never blocks."""
        ...

    def finish(self) -> int:
        """The exit code: 0 once the result was handed over (the process is reaped in the
        background), else what the process exited with (waits for it)."""
        ...


def _parse(line: str) -> Event | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


# -- a fresh interpreter per trial --------------------------------------------------------------
class SpawnedTrial:
    """A `--warm` child: imports TensorFlow at once, then waits for its config on stdin."""

    def __init__(self, python: Path, env: dict[str, str]) -> None:
        self.read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            [str(python), "-m", "tuning.train_run", "--warm", str(write_fd)],
            stdin=subprocess.PIPE, pass_fds=(write_fd,), env=env, text=True)
        os.close(write_fd)
        self.result: dict[str, Any] | None = None
        self._stream: Any = None

    def start(self, cfg: dict[str, Any]) -> SpawnedTrial:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cfg) + "\n")
        self.proc.stdin.close()
        return self

    def events(self) -> Iterator[Event]:
        self._stream = os.fdopen(self.read_fd)
        for line in self._stream:
            event = _parse(line)
            if event is None:
                continue
            if event.get("phase") == "done":
                self.result = event.get("result") or {}
                return
            yield event

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()

    def finish(self) -> int:
        if self.result is not None:
            threading.Thread(target=self._reap, name="trial-reaper", daemon=True).start()
            return 0
        code = self.proc.wait()
        self._close()
        return code

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=EXIT_WAIT_S)
        except subprocess.TimeoutExpired:
            log.warning("trial process %d still exiting %.0f s after its result; killed",
                        self.proc.pid, EXIT_WAIT_S)
            self.kill()
            self.proc.wait()
        self._close()

    def _close(self) -> None:
        if self._stream is not None:
            self._stream.close()
        else:
            with contextlib.suppress(OSError):
                os.close(self.read_fd)

    def dismiss(self) -> None:
        """A spare that will not run a trial: an empty config makes it exit 0."""
        if self.proc.poll() is None and self.proc.stdin and not self.proc.stdin.closed:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.kill()
            self.proc.wait()
        self._close()


# -- one TensorFlow import per pod, a fork per trial ---------------------------------------------
class Zygote:
    """`python -m tuning.train_run --zygote`: forks one trial process at a time."""

    def __init__(self, python: Path, env: dict[str, str]) -> None:
        read_fd, write_fd = os.pipe()
        self.proc = subprocess.Popen(
            [str(python), "-m", "tuning.train_run", "--zygote", str(write_fd)],
            stdin=subprocess.PIPE, pass_fds=(write_fd,), env=env, text=True)
        os.close(write_fd)
        self.queue: queue.Queue[Event | None] = queue.Queue()
        self.dead = False
        self._unreaped: int | None = None  # a trial process that handed over, not yet reaped
        self._reader = threading.Thread(target=self._read, args=(read_fd,),
                                        name="zygote-events", daemon=True)
        self._reader.start()
        self._ready = False

    def _read(self, fd: int) -> None:
        with os.fdopen(fd) as stream:
            for line in stream:
                event = _parse(line)
                if event is not None:
                    self.queue.put(event)
        self.queue.put(None)  # the zygote is gone

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event; None once the zygote has died (queue.Empty on a timeout)."""
        if self.dead:
            return None
        event = self.queue.get(timeout=timeout)
        if event is None:
            self.dead = True
        return event

    def _wait_ready(self) -> None:
        while not self._ready:
            event = self.get()
            if event is None:
                raise RuntimeError(f"the trial zygote exited with {self.proc.wait()} before "
                                   "it was ready (see the pod log)")
            self._ready = event.get("phase") == "zygote-ready"

    def _reap_previous(self) -> None:
        """Consume the `exited` of the last trial process, so events never mix."""
        pid, self._unreaped = self._unreaped, None
        if pid is None:
            return
        killed = False
        while True:
            try:
                event = self.get(timeout=EXIT_WAIT_S)
            except queue.Empty:
                if killed:
                    raise RuntimeError(f"trial process {pid} could not be reaped") from None
                log.warning("trial process %d still exiting %.0f s after its result; killed",
                            pid, EXIT_WAIT_S)
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed = True
                continue
            if event is None or (event.get("phase") == "exited" and event.get("pid") == pid):
                return

    def start(self, cfg: dict[str, Any]) -> ForkedTrial:
        self._wait_ready()
        self._reap_previous()
        if self.dead:
            raise RuntimeError("the trial zygote died (see the pod log)")
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(cfg) + "\n")
        self.proc.stdin.flush()
        return ForkedTrial(self)

    def handed_over(self, pid: int | None) -> None:
        self._unreaped = pid

    def close(self) -> None:
        """End the zygote (waits for a trial process still exiting, then for the zygote)."""
        with contextlib.suppress(Exception):
            if not self.dead:
                self._reap_previous()
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.proc.kill()


class ForkedTrial:
    """A trial process forked by the `Zygote`."""

    def __init__(self, zygote: Zygote) -> None:
        self.zygote = zygote
        self.pid: int | None = None
        self.result: dict[str, Any] | None = None
        self.code: int | None = None

    def events(self) -> Iterator[Event]:
        while True:
            event = self.zygote.get()
            if event is None:  # the zygote died under the trial (killed: a pod ending)
                self.code = self.zygote.proc.wait()
                return
            phase = event.get("phase")
            if phase == "forked":
                self.pid = event.get("pid")
            elif phase == "exited":
                self.code = int(event.get("code", 1))
                return
            elif phase == "done":
                self.result = event.get("result") or {}
                self.zygote.handed_over(self.pid)
                return
            else:
                yield event

    def kill(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        else:  # not announced yet: stopping the zygote is the only sure way
            self.zygote.kill()

    def finish(self) -> int:
        if self.result is not None:
            return 0
        while self.code is None:
            try:
                event = self.zygote.get(timeout=EXIT_WAIT_S * 3)
            except queue.Empty:
                raise RuntimeError(f"trial process {self.pid} did not exit") from None
            if event is None:
                self.code = self.zygote.proc.wait()
            elif event.get("phase") == "exited" and event.get("pid") == self.pid:
                self.code = int(event.get("code", 1))
        return self.code
