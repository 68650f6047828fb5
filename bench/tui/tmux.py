"""Minimal tmux driver for the side-by-side TUI benchmark: launch, capture, send keys."""

from __future__ import annotations

import shutil
import subprocess
import time


def require_tmux() -> str:
    path = shutil.which("tmux")
    if path is None:
        raise SystemExit("the TUI benchmark needs tmux: apt-get install -y tmux")
    return path


class Pane:
    """One detached tmux session running one command at a fixed size."""

    def __init__(self, session: str, command: str, width: int, height: int,
                 env: dict[str, str]) -> None:
        self.session = session
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
        args = ["tmux", "new-session", "-d", "-s", session, "-x", str(width), "-y", str(height)]
        for k, v in env.items():
            args += ["-e", f"{k}={v}"]
        self.launched = time.monotonic()
        subprocess.run([*args, command], check=True, capture_output=True)
        subprocess.run(["tmux", "set-option", "-t", session, "remain-on-exit", "on"],
                       capture_output=True)

    @property
    def pid(self) -> int:
        out = subprocess.run(["tmux", "display", "-p", "-t", self.session, "#{pane_pid}"],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip())

    def capture(self, escapes: bool = False) -> str:
        args = ["tmux", "capture-pane", "-p", "-t", self.session]
        if escapes:
            args.append("-e")
        done = subprocess.run(args, capture_output=True, text=True)
        if done.returncode != 0:  # tmux is gone (e.g. "server exited unexpectedly"): say so
            raise subprocess.CalledProcessError(done.returncode, args, done.stdout, done.stderr)
        return done.stdout

    def send(self, *keys: str, literal: bool = False) -> None:
        args = ["tmux", "send-keys", "-t", self.session]
        if literal:
            args.append("-l")
        subprocess.run([*args, *keys], check=True, capture_output=True)

    def wait_for(self, predicate, timeout: float, interval: float = 0.01,
                 escapes: bool = False) -> tuple[float, str] | None:
        """Poll captures until predicate(text) is truthy; (monotonic time, text) or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.capture(escapes)
            now = time.monotonic()
            if predicate(text):
                return now, text
            time.sleep(interval)
        return None

    def kill(self) -> None:
        subprocess.run(["tmux", "kill-session", "-t", self.session], capture_output=True)


def proc_cpu_seconds(pid: int) -> float:
    """utime+stime of a process and its reaped children, in seconds."""
    import os

    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    ticks = sum(int(x) for x in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


def proc_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0
