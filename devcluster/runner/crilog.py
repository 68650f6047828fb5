"""Container logs in the CRI file format, as containerd writes them and the kubelet reads them.

Each record is `<RFC3339Nano UTC> <stdout|stderr> <F|P> <content>\\n`
(kwok's log server parses it with k8s.io/cri-client/pkg/logs). Matches containerd's
`internal/cri/io/logger.go` `redirectLogs`:

- a line ending in `\\n` is one `F` record; the newline (and a `\\r` before it) is dropped;
- a line longer than the max line size (16 KiB, containerd's default
  `max_container_log_line_size`) is cut into `P` records of exactly that size, the rest
  (1 byte .. max) ends in an `F` record; a line of exactly the max size stays one `F` record;
- bytes left without a newline at EOF are written as `P` ("a partial line"), which is how
  `kubectl logs` knows not to append a newline there.

The timestamp is taken when a record is written. Content is bytes: invalid UTF-8 passes
through unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from devcluster.runner.podstatus import utcnow

__all__ = ["MAX_LINE", "CriLogWriter", "LogFiles", "pump", "rfc3339nano"]

MAX_LINE = 16 * 1024
STREAMS = ("stdout", "stderr")


def rfc3339nano(dt: datetime) -> str:
    """Go's time.RFC3339Nano in UTC: fraction with trailing zeros trimmed, none when zero.

    Python datetimes carry microseconds, so at most 6 fraction digits (naive means UTC).
    """
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    frac = f"{dt.microsecond:06d}".rstrip("0")
    return dt.strftime("%Y-%m-%dT%H:%M:%S") + (f".{frac}" if frac else "") + "Z"


class CriLogWriter:
    """Appends CRI lines for one container instance to a file; shared by its stdout/stderr pumps.

    Each record goes out in a single unbuffered append, so a reader tailing the file never
    sees a record of one stream interleaved inside a record of the other.
    """

    def __init__(
        self,
        path: Path,
        clock: Callable[[], datetime] = utcnow,
        max_line: int = MAX_LINE,
    ) -> None:
        if max_line <= 0:
            raise ValueError("max_line must be positive")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(
            self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
        )
        self._clock = clock
        self._max = max_line
        self._tails: dict[str, bytearray] = {s: bytearray() for s in STREAMS}

    @staticmethod
    def _check_stream(stream: str) -> None:
        if stream not in STREAMS:
            raise ValueError(f"stream must be stdout or stderr, not {stream!r}")

    def _record(self, stream: str, tag: bytes, content: bytes | bytearray) -> None:
        if self._fd is None:
            raise ValueError("write to a closed CriLogWriter")
        line = b"".join(
            (rfc3339nano(self._clock()).encode(), b" ", stream.encode(), b" ", tag, b" ")
        )
        view = memoryview(line + bytes(content) + b"\n")
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def write(self, stream: str, data: bytes) -> None:
        """Add output of `stream`: complete lines become records, the tail is buffered."""
        self._check_stream(stream)
        if self._fd is None:
            raise ValueError("write to a closed CriLogWriter")
        tail = self._tails[stream]
        tail += data
        start = 0
        while True:
            nl = tail.find(b"\n", start)
            if nl < 0:
                break
            line = tail[start:nl]
            if line.endswith(b"\r"):
                line = line[:-1]
            self._emit_line(stream, line, final_tag=b"F")
            start = nl + 1
        del tail[:start]
        # An over-long unterminated line is cut as it comes, keeping at most max bytes
        # back (a line of exactly max bytes must still end up as one F record).
        while len(tail) > self._max:
            self._record(stream, b"P", tail[: self._max])
            del tail[: self._max]

    def _emit_line(self, stream: str, line: bytes | bytearray, final_tag: bytes) -> None:
        while len(line) > self._max:
            self._record(stream, b"P", line[: self._max])
            line = line[self._max :]
        self._record(stream, final_tag, line)

    def flush_partial(self, stream: str) -> None:
        """At EOF of `stream`: write what is left without a newline as a `P` record."""
        self._check_stream(stream)
        tail = self._tails[stream]
        if tail and self._fd is not None:
            self._emit_line(stream, bytes(tail), final_tag=b"P")
        tail.clear()

    def close(self) -> None:
        """Flush both streams' tails (as at EOF) and close the file; idempotent."""
        if self._fd is None:
            return
        for stream in STREAMS:
            self.flush_partial(stream)
        fd, self._fd = self._fd, None
        os.close(fd)

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __enter__(self) -> CriLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def pump(
    reader: asyncio.StreamReader, stream: str, writer: CriLogWriter, chunk: int = 65536
) -> None:
    """Copy a process pipe into `writer` until EOF, then flush the unterminated tail."""
    try:
        while True:
            data = await reader.read(chunk)
            if not data:
                break
            writer.write(stream, data)
    finally:
        if not writer.closed:
            writer.flush_partial(stream)


class LogFiles:
    """<pod_dir>/logs/<container>/<restartCount>.log plus current.log / previous.log symlinks.

    The numbered files follow the kubelet's layout (`<container>/<restartCount>.log`).
    The symlinks are relative (the tree can move) and swapped with an atomic rename, so a
    reader resolving them (kwok, at the start of each read) always finds a valid target.
    """

    def __init__(self, pod_dir: Path, container: str) -> None:
        self.dir = Path(pod_dir) / "logs" / container

    @property
    def current(self) -> Path:
        return self.dir / "current.log"

    @property
    def previous(self) -> Path:
        return self.dir / "previous.log"

    def instance(self, restart_count: int) -> Path:
        """Path of the log of the container instance with that restart count."""
        return self.dir / f"{restart_count}.log"

    def _target(self, link: Path) -> str | None:
        try:
            return os.readlink(link)
        except OSError:
            return None

    def _point(self, link: Path, target: str) -> None:
        tmp = link.with_name(f".{link.name}.{os.getpid()}.tmp")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, link)

    def start_instance(self, restart_count: int) -> Path:
        """Create the new instance's file; current.log -> it, previous.log -> the former one."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.instance(restart_count)
        path.touch(exist_ok=True)
        new_target = path.name
        old_target = self._target(self.current)
        if old_target is not None and old_target != new_target:
            self._point(self.previous, old_target)
        self._point(self.current, new_target)
        return path

    def prune(self, keep: int = 2) -> None:
        """Delete instance logs beyond the newest `keep`, never current's or previous's target."""
        protected = {t for t in (self._target(self.current), self._target(self.previous)) if t}
        instances = sorted(
            (int(p.stem), p)
            for p in self.dir.glob("*.log")
            if p.stem.isdigit() and not p.is_symlink()
        )
        doomed = instances[: max(len(instances) - keep, 0)]
        for _, path in doomed:
            if path.name not in protected:
                path.unlink(missing_ok=True)
