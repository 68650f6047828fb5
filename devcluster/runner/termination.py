"""Termination messages, as the kubelet writes them into `state.terminated.message`.

Ports `pkg/kubelet/kuberuntime/kuberuntime_container.go` (Kubernetes v1.37.2):

- `makeMounts`: every container instance gets a fresh, empty host file (mode 0666) that is
  bind-mounted at its `terminationMessagePath` (default `/dev/termination-log`); the runtime
  creates the target if it is missing.
- `getTerminationMessage`: after the instance exits, the *last* 4096 bytes of that file
  (`tail.ReadAtMost`, `MaxContainerTerminationMessageLength`) are the message, whatever the
  exit code. A missing file reads as empty; any other read error becomes the message
  `Error on reading termination log <path>: <err>`.
- `terminationMessagePolicy: FallbackToLogsOnError`, exit code non-zero, reason not
  `ContainerCannotRun`, and the file empty: `readLastStringFromContainerLogs`, i.e. the
  content of the last 80 CRI log records (`TailLines`, `MaxContainerTerminationMessageLogLines`)
  of both streams in file order, of which a 2048-byte ring buffer keeps the last bytes
  (`MaxContainerTerminationMessageLogLength`).
- `convertToKubeContainerStatus`: a non-empty message is appended to the runtime's own
  message with ": ".
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

__all__ = [
    "DEFAULT_PATH",
    "MAX_LOG_LENGTH",
    "MAX_LOG_LINES",
    "MAX_MESSAGE_LENGTH",
    "combine",
    "container_message",
    "create_file",
    "message_path",
    "read_at_most",
    "tail_cri_log",
]

DEFAULT_PATH = "/dev/termination-log"  # v1.TerminationMessagePathDefault
MAX_MESSAGE_LENGTH = 4 * 1024  # kubecontainer.MaxContainerTerminationMessageLength
MAX_LOG_LENGTH = 2 * 1024  # kubecontainer.MaxContainerTerminationMessageLogLength
MAX_LOG_LINES = 80  # kubecontainer.MaxContainerTerminationMessageLogLines
FALLBACK_TO_LOGS = "FallbackToLogsOnError"


def message_path(spec: dict[str, Any]) -> str | None:
    """The container's absolute terminationMessagePath (`MakeAbsolutePath`), None if unset.

    The apiserver defaults it to /dev/termination-log; an explicit empty string means none
    (only possible for objects that skipped defaulting)."""
    path = spec.get("terminationMessagePath", DEFAULT_PATH)
    if not path:
        return None
    # Go's filepath.Clean("/" + path): unlike posixpath.normpath it folds a leading "//".
    return "/" + posixpath.normpath("/" + path).lstrip("/")


def create_file(path: Path) -> Path:
    """An empty termination-log file for one instance, 0666 whatever the umask."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o666)
    os.close(fd)
    os.chmod(path, 0o666)
    return path


def read_at_most(path: Path, limit: int) -> bytes:
    """The last `limit` bytes of the file (`k8s.io/kubernetes/pkg/util/tail.ReadAtMost`)."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size == 0:
            return b""
        f.seek(-min(size, limit), os.SEEK_END)
        return f.read()


def _parse_cri(line: bytes) -> tuple[str, bytes] | None:
    """(stream, content) of one CRI record (`parseCRILog`); content keeps its newline for F."""
    parts = line.split(b" ", 3)
    if len(parts) < 4 or parts[1] not in (b"stdout", b"stderr"):
        return None
    content = parts[3]
    if parts[2].split(b":")[0] == b"P" and content.endswith(b"\n"):
        content = content[:-1]
    return parts[1].decode(), content


def tail_cri_log(path: Path, lines: int = MAX_LOG_LINES, limit: int = MAX_LOG_LENGTH) -> bytes:
    """The last `lines` records of a CRI log, stdout and stderr together, cut to its last
    `limit` bytes (kubelet `readLastStringFromContainerLogs`)."""
    data = path.read_bytes()
    # findTailLineStartIndex: just after the (lines+1)-th newline from the end, else 0.
    start, end = 0, len(data)
    for _ in range(lines + 1):
        nl = data.rfind(b"\n", 0, end)
        if nl < 0:
            start = 0
            break
        start, end = nl + 1, nl
    out = bytearray()
    left = lines
    pos = start
    while left and pos < len(data):  # bufio ReadBytes('\n'): the last record may lack one
        nl = data.find(b"\n", pos)
        record = data[pos:] if nl < 0 else data[pos:nl + 1]
        pos += len(record)
        parsed = _parse_cri(record)
        if parsed is None:  # logged and skipped, not counted
            continue
        out += parsed[1]
        left -= 1
    return bytes(out[-limit:]) if limit else b""


def _decode(data: bytes) -> str:
    # Go's string(data) goes out as JSON, where invalid UTF-8 becomes U+FFFD.
    return data.decode("utf-8", errors="replace")


def container_message(spec: dict[str, Any], exit_code: int, reason: str,
                      message_file: Path | None, log_file: Path | None) -> str:
    """The termination message of one exited instance ("" when there is none)."""
    fallback = (spec.get("terminationMessagePolicy") == FALLBACK_TO_LOGS
                and exit_code != 0 and reason != "ContainerCannotRun")
    check_logs = fallback
    message = ""
    if message_path(spec) is not None and message_file is not None:
        try:
            data = read_at_most(message_file, MAX_MESSAGE_LENGTH)
        except FileNotFoundError:
            pass
        except OSError as exc:
            return f"Error on reading termination log {message_file}: {exc}"
        else:
            message = _decode(data)
            check_logs = fallback and not data
    if check_logs and log_file is not None:
        try:
            message = _decode(tail_cri_log(log_file))
        except OSError as exc:
            message = f"Error on reading termination message from logs: {exc}"
    return message


def combine(runtime_message: str | None, message: str) -> str | None:
    """The runtime's message, then ": " and the termination message when there is one."""
    if not message:
        return runtime_message
    return f"{runtime_message}: {message}" if runtime_message else message
