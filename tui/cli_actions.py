"""Run `fleet …` as a subprocess and stream what it says: the TUI's sweep actions.

Launch, stop, resume and promote of a sweep live in the `tuning` package, which the TUI must
not import (it would pull Optuna and SQLAlchemy into the UI process, and the layering forbids
it). So the TUI runs exactly what a user would type, `python -m fleet.cli sweep stop NAME -n NS
--context CTX`, in a worker thread: every stderr line (the CLI's progress) and stdout line (its
result) is handed to `on_line` as it arrives, and the exit status decides success (0 done,
1 failed, 2 invalid input: the CLI's contract).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

OnLine = Callable[[str, str], None]  # (stream "stdout" | "stderr", line)
KEEP_LINES = 200
DEFAULT_TIMEOUT = 900.0  # a stop waits up to 90 s for pods, a promote up to 5 min


@dataclass(frozen=True)
class CliResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: tuple[str, ...]
    stderr: tuple[str, ...]  # the last KEEP_LINES lines
    elapsed_s: float
    timed_out: bool = False

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def summary(self) -> str:
        """The command's last word: its last stdout line, else its last error line."""
        if self.timed_out:
            return f"timed out after {self.elapsed_s:.0f}s; stopped"
        errors = [line for line in self.stderr if line.startswith("error")]
        if not self.ok and errors:
            return errors[-1]
        for lines in (self.stdout, self.stderr):
            if lines:
                return lines[-1]
        return "done" if self.ok else f"exit status {self.returncode}"

    @property
    def status_text(self) -> str:
        if self.timed_out:
            return "timed out"
        if self.returncode < 0:
            return f"killed by signal {-self.returncode}"
        return f"exit status {self.returncode}"


def fleet_command(args: Sequence[str], *, context: str | None = None,
                  kubeconfig: str | None = None) -> list[str]:
    """`python -m fleet.cli ARGS --context CTX [--kubeconfig PATH]` with this interpreter."""
    cmd = [sys.executable, "-m", "fleet.cli", *args]
    if context:
        cmd += ["--context", context]
    if kubeconfig:
        cmd += ["--kubeconfig", kubeconfig]
    return cmd


def run_cli(cmd: Sequence[str], on_line: OnLine | None = None, *,
            env: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
            cancel: threading.Event | None = None) -> CliResult:
    """Run `cmd`, streaming lines to `on_line`; blocks (call it from a worker thread). The
    child gets its own session (a Ctrl+C in the TUI is not its), no stdin, and on timeout or
    `cancel` SIGTERM then SIGKILL. OSError (no such interpreter) is raised."""
    say = on_line or (lambda _s, _l: None)
    full_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    proc = subprocess.Popen(list(cmd), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, bufsize=1, env=full_env,
                            start_new_session=True, errors="replace")
    out: deque[str] = deque(maxlen=KEEP_LINES)
    err: deque[str] = deque(maxlen=KEEP_LINES)

    def pump(stream, name: str, keep: deque[str]) -> None:
        for raw in stream:
            line = raw.rstrip("\n")
            keep.append(line)
            with contextlib.suppress(Exception):  # a closed UI must not break the pump
                say(name, line)

    readers = [threading.Thread(target=pump, args=(proc.stdout, "stdout", out), daemon=True,
                                name="cli-stdout"),
               threading.Thread(target=pump, args=(proc.stderr, "stderr", err), daemon=True,
                                name="cli-stderr")]
    for t in readers:
        t.start()
    timed_out = False
    deadline = started + timeout
    while True:
        try:
            proc.wait(timeout=0.2)
            break
        except subprocess.TimeoutExpired:
            if (cancel is not None and cancel.is_set()) or time.monotonic() >= deadline:
                timed_out = time.monotonic() >= deadline
                _stop(proc)
                break
    for t in readers:
        t.join(timeout=5)
    return CliResult(tuple(cmd), proc.returncode if proc.returncode is not None else -9,
                     tuple(out), tuple(err), time.monotonic() - started, timed_out)


def _stop(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
