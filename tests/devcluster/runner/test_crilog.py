"""CRI log records and the log file layout, byte for byte."""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from devcluster.runner.crilog import MAX_LINE, CriLogWriter, LogFiles, pump, rfc3339nano

BASE = datetime(2026, 12, 1, 19, 43, 13, 665420, tzinfo=UTC)


class Clock:
    """Each call returns the next microsecond, so every record's timestamp is predictable."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> datetime:
        self.calls += 1
        return BASE + timedelta(microseconds=self.calls - 1)


def ts(i: int) -> bytes:
    return rfc3339nano(BASE + timedelta(microseconds=i)).encode()


@pytest.fixture
def log(tmp_path: Path) -> tuple[CriLogWriter, Path]:
    path = tmp_path / "pod" / "logs" / "server" / "0.log"
    return CriLogWriter(path, clock=Clock()), path


@pytest.mark.parametrize(
    ("dt", "text"),
    [
        (datetime(2026, 12, 1, 19, 43, 13, 665420, tzinfo=UTC), "2026-12-01T19:43:13.66542Z"),
        (datetime(2026, 12, 1, 19, 43, 13, 665421, tzinfo=UTC), "2026-12-01T19:43:13.665421Z"),
        (datetime(2026, 12, 1, 19, 43, 13, 600000, tzinfo=UTC), "2026-12-01T19:43:13.6Z"),
        (datetime(2026, 12, 1, 19, 43, 13, 0, tzinfo=UTC), "2026-12-01T19:43:13Z"),
        (
            datetime(2026, 12, 1, 20, 43, 13, 5, tzinfo=timezone(timedelta(hours=1))),
            "2026-12-01T19:43:13.000005Z",
        ),
        (datetime(2026, 12, 1, 19, 43, 13, 100), "2026-12-01T19:43:13.0001Z"),
    ],
)
def test_rfc3339nano(dt: datetime, text: str) -> None:
    assert rfc3339nano(dt) == text


def test_full_lines(log: tuple[CriLogWriter, Path]) -> None:
    writer, path = log
    writer.write("stdout", b"hello\nworld\n")
    writer.write("stdout", b"\n")
    writer.close()
    assert path.read_bytes() == (
        b"2026-12-01T19:43:13.66542Z stdout F hello\n"
        b"2026-12-01T19:43:13.665421Z stdout F world\n"
        b"2026-12-01T19:43:13.665422Z stdout F \n"
    )


def test_line_split_across_writes(log: tuple[CriLogWriter, Path]) -> None:
    writer, path = log
    writer.write("stdout", b"hel")
    writer.write("stdout", b"lo wor")
    assert path.read_bytes() == b""  # nothing until the newline arrives
    writer.write("stdout", b"ld\nnext")
    writer.write("stdout", b"\r\n")  # CRLF: containerd drops the \r too
    writer.close()
    assert path.read_bytes() == (ts(0) + b" stdout F hello world\n" + ts(1) + b" stdout F next\n")


def test_partial_at_eof(log: tuple[CriLogWriter, Path]) -> None:
    writer, path = log
    writer.write("stderr", b"done\nno newline")
    writer.flush_partial("stderr")
    writer.flush_partial("stderr")  # nothing left: no empty record
    writer.close()
    assert path.read_bytes() == (ts(0) + b" stderr F done\n" + ts(1) + b" stderr P no newline\n")


def test_long_line_split_into_partials(log: tuple[CriLogWriter, Path]) -> None:
    writer, path = log
    assert MAX_LINE == 16384
    line = bytes(ord("a") + i % 26 for i in range(2 * MAX_LINE + 5))
    # Fed in odd-sized pieces, as a pipe would deliver it.
    for i in range(0, len(line), 5000):
        writer.write("stdout", line[i : i + 5000])
    writer.write("stdout", b"\n")
    writer.close()
    assert path.read_bytes() == (
        ts(0) + b" stdout P " + line[:MAX_LINE] + b"\n"
        + ts(1) + b" stdout P " + line[MAX_LINE : 2 * MAX_LINE] + b"\n"
        + ts(2) + b" stdout F " + line[2 * MAX_LINE :] + b"\n"
    )  # fmt: skip


def test_long_line_in_one_write_and_exact_max(log: tuple[CriLogWriter, Path]) -> None:
    writer, path = log
    exact = b"x" * MAX_LINE
    writer.write("stdout", exact + b"\n" + b"y" * (MAX_LINE + 1) + b"\n")
    writer.close()
    assert path.read_bytes() == (
        ts(0) + b" stdout F " + exact + b"\n"
        + ts(1) + b" stdout P " + b"y" * MAX_LINE + b"\n"
        + ts(2) + b" stdout F y\n"
    )  # fmt: skip


def test_double_max_line_ends_with_full_chunk(log: tuple[CriLogWriter, Path]) -> None:
    writer, path = log
    writer.write("stdout", b"z" * (2 * MAX_LINE))
    writer.write("stdout", b"\n")
    writer.close()
    chunk = b"z" * MAX_LINE
    assert path.read_bytes() == (
        ts(0) + b" stdout P " + chunk + b"\n" + ts(1) + b" stdout F " + chunk + b"\n"
    )


def test_long_unterminated_tail_at_eof_is_all_partial(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(path, clock=Clock(), max_line=4)
    writer.write("stdout", b"abcdefghij")
    writer.flush_partial("stdout")
    writer.close()
    assert path.read_bytes() == (
        ts(0) + b" stdout P abcd\n" + ts(1) + b" stdout P efgh\n" + ts(2) + b" stdout P ij\n"
    )


def test_stdout_stderr_interleaving(log: tuple[CriLogWriter, Path]) -> None:
    writer, path = log
    writer.write("stdout", b"out-a")
    writer.write("stderr", b"err-1\nerr-")
    writer.write("stdout", b"\nout-b\n")
    writer.write("stderr", b"2\n")
    writer.close()
    assert path.read_bytes() == (
        ts(0) + b" stderr F err-1\n"
        + ts(1) + b" stdout F out-a\n"
        + ts(2) + b" stdout F out-b\n"
        + ts(3) + b" stderr F err-2\n"
    )  # fmt: skip


def test_invalid_utf8_passes_through(log: tuple[CriLogWriter, Path]) -> None:
    writer, path = log
    writer.write("stdout", b"\xff\xfe caf\xc3\xa9 \x00\n")
    writer.close()
    assert path.read_bytes() == ts(0) + b" stdout F \xff\xfe caf\xc3\xa9 \x00\n"


def test_close_flushes_tails_and_appends(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    path.write_bytes(b"earlier\n")
    writer = CriLogWriter(path, clock=Clock())
    writer.write("stdout", b"tail")
    writer.close()
    writer.close()  # idempotent
    assert writer.closed
    assert path.read_bytes() == b"earlier\n" + ts(0) + b" stdout P tail\n"
    with pytest.raises(ValueError):
        writer.write("stdout", b"x\n")


def test_unknown_stream_rejected(log: tuple[CriLogWriter, Path]) -> None:
    writer, _ = log
    with pytest.raises(ValueError):
        writer.write("stdin", b"x\n")
    writer.close()


def test_default_clock_is_utc(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(path)
    writer.write("stdout", b"x\n")
    writer.close()
    stamp = path.read_bytes().split(b" ", 1)[0].decode()
    assert stamp.endswith("Z")
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs(parsed - datetime.now(UTC)) < timedelta(seconds=30)


@pytest.mark.asyncio
async def test_pump_until_eof(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(path, clock=Clock())
    out, err = asyncio.StreamReader(), asyncio.StreamReader()
    tasks = [
        asyncio.create_task(pump(out, "stdout", writer, chunk=3)),
        asyncio.create_task(pump(err, "stderr", writer)),
    ]
    out.feed_data(b"line one\nline")
    await asyncio.sleep(0)
    err.feed_data(b"oops\n")
    await asyncio.sleep(0.01)
    out.feed_data(b" two\nlast")
    out.feed_eof()
    err.feed_eof()
    await asyncio.gather(*tasks)
    writer.close()
    assert path.read_bytes() == (
        ts(0) + b" stdout F line one\n"
        + ts(1) + b" stderr F oops\n"
        + ts(2) + b" stdout F line two\n"
        + ts(3) + b" stdout P last\n"
    )  # fmt: skip


@pytest.mark.asyncio
async def test_pump_real_process(tmp_path: Path) -> None:
    path = tmp_path / "0.log"
    writer = CriLogWriter(path, clock=Clock())
    proc = await asyncio.create_subprocess_exec(
        "/bin/sh",
        "-c",
        "printf 'a\\n'; printf 'b' >&2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    await asyncio.gather(
        pump(proc.stdout, "stdout", writer), pump(proc.stderr, "stderr", writer), proc.wait()
    )
    writer.close()
    records = sorted(line.split(b" ", 1)[1] for line in path.read_bytes().splitlines())
    assert records == [b"stderr P b", b"stdout F a"]


# --------------------------------------------------------------------------------- LogFiles


def test_log_files_rotation_across_three_restarts(tmp_path: Path) -> None:
    files = LogFiles(tmp_path / "pod", "server")
    logs = tmp_path / "pod" / "logs" / "server"
    assert files.current == logs / "current.log"
    assert files.previous == logs / "previous.log"

    first = files.start_instance(0)
    assert first == logs / "0.log"
    assert first.exists()
    assert os.readlink(files.current) == "0.log"
    assert not files.previous.exists()
    first.write_bytes(b"zero\n")

    files.start_instance(1)
    (logs / "1.log").write_bytes(b"one\n")
    assert (os.readlink(files.current), os.readlink(files.previous)) == ("1.log", "0.log")

    assert files.start_instance(2) == logs / "2.log"
    (logs / "2.log").write_bytes(b"two\n")
    assert (os.readlink(files.current), os.readlink(files.previous)) == ("2.log", "1.log")
    assert files.current.read_bytes() == b"two\n"
    assert files.previous.read_bytes() == b"one\n"

    files.prune()
    assert sorted(p.name for p in logs.iterdir()) == [
        "1.log",
        "2.log",
        "current.log",
        "previous.log",
    ]


def test_start_instance_same_count_keeps_previous(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, "c")
    files.start_instance(0)
    files.start_instance(1)
    files.start_instance(1)  # runner restarted, same instance resumed
    assert (os.readlink(files.current), os.readlink(files.previous)) == ("1.log", "0.log")


def test_prune_keeps_link_targets_and_newest(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, "c")
    for n in range(5):
        files.start_instance(n)
    files.prune(keep=3)
    names = sorted(p.name for p in files.dir.iterdir())
    assert names == ["2.log", "3.log", "4.log", "current.log", "previous.log"]
    files.prune(keep=0)  # current's and previous's targets are never removed
    assert sorted(p.name for p in files.dir.glob("[0-9]*.log")) == ["3.log", "4.log"]


def test_writer_through_log_files(tmp_path: Path) -> None:
    files = LogFiles(tmp_path, "c")
    writer = CriLogWriter(files.start_instance(0), clock=Clock())
    writer.write("stdout", b"hi\n")
    writer.close()
    assert files.current.read_bytes() == ts(0) + b" stdout F hi\n"
