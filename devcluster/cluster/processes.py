"""Start, check and stop the component processes the cluster owns, by pid."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import subprocess
import time
from pathlib import Path

# Children started by this process: polled for their exit status instead of guessing from /proc.
_children: dict[int, subprocess.Popen[bytes]] = {}


def start(name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None) -> int:
    """Start a component in its own session (it outlives `fleet cluster up`); returns its pid."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log = open(log_dir / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    finally:
        log.close()
    _children[proc.pid] = proc
    return proc.pid


def exit_code(pid: int) -> int | None:
    """The exit status of a child this process started, once it has exited."""
    proc = _children.get(pid)
    return proc.poll() if proc else None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def alive(pid: int, binary: str | None = None) -> bool:
    """True when `pid` runs and (if given) is still the binary we started, not a reused pid."""
    proc = _children.get(pid)
    if proc is not None:
        return proc.poll() is None
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    if state in ("Z", "X"):
        _reap(pid)
        return False
    return binary is None or Path(binary).name in _cmdline(pid)


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(pid: int, binary: str | None = None, timeout: float = 10.0) -> None:
    """SIGTERM, wait, then SIGKILL; only if the pid is still the process we started."""
    if not alive(pid, binary):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    for _ in range(100):
        _reap(pid)
        if not alive(pid):
            return
        time.sleep(0.05)


def log_tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def listening_addresses(pid: int) -> list[tuple[str, str, int]]:
    """(protocol, address, port) of every TCP listener and bound UDP socket of a process."""
    inodes: set[str] = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        return []
    found: list[tuple[str, str, int]] = []
    for table in ("tcp", "tcp6", "udp", "udp6"):
        try:
            rows = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            listening = cols[3] == "0A" or table.startswith("udp")  # 0A = TCP LISTEN
            if not listening or cols[9] not in inodes:
                continue
            addr_hex, port_hex = cols[1].split(":")
            found.append((table, _decode_addr(addr_hex), int(port_hex, 16)))
    return found


def _decode_addr(addr_hex: str) -> str:
    """/proc/net addresses are little-endian 32-bit words."""
    raw = bytes.fromhex(addr_hex)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def is_loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback
