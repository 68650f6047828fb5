"""Termination-message rules of the kubelet (no cluster needed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from devcluster.runner.crilog import CriLogWriter
from devcluster.runner.termination import (
    DEFAULT_PATH,
    MAX_LOG_LENGTH,
    MAX_MESSAGE_LENGTH,
    combine,
    container_message,
    create_file,
    message_path,
    read_at_most,
    tail_cri_log,
)

FALLBACK = {"name": "c", "terminationMessagePolicy": "FallbackToLogsOnError"}


def cri_log(path: Path, *chunks: tuple[str, bytes]) -> Path:
    with CriLogWriter(path) as w:
        for stream, data in chunks:
            w.write(stream, data)
    return path


def test_message_path_defaults_and_is_made_absolute_like_the_kubelet() -> None:
    assert message_path({}) == DEFAULT_PATH == "/dev/termination-log"
    assert message_path({"terminationMessagePath": "/tmp/msg"}) == "/tmp/msg"
    assert message_path({"terminationMessagePath": "var/x/../msg"}) == "/var/msg"
    assert message_path({"terminationMessagePath": "//dev//log/"}) == "/dev/log"
    assert message_path({"terminationMessagePath": ""}) is None


def test_create_file_is_empty_and_world_writable_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        f = create_file(tmp_path / "instances" / "c" / "0.termination-log")
    finally:
        os.umask(old)
    assert f.read_bytes() == b""
    assert stat.S_IMODE(f.stat().st_mode) == 0o666
    f.write_text("old")
    assert create_file(f).read_bytes() == b""  # a retry starts from an empty file again


def test_read_at_most_keeps_the_tail(tmp_path: Path) -> None:
    f = tmp_path / "m"
    f.write_bytes(b"a" * 10 + b"b" * MAX_MESSAGE_LENGTH)
    assert read_at_most(f, MAX_MESSAGE_LENGTH) == b"b" * MAX_MESSAGE_LENGTH
    f.write_bytes(b"short")
    assert read_at_most(f, MAX_MESSAGE_LENGTH) == b"short"
    f.write_bytes(b"")
    assert read_at_most(f, MAX_MESSAGE_LENGTH) == b""


def test_file_message_is_reported_for_any_exit_code_and_policy(tmp_path: Path) -> None:
    f = tmp_path / "m"
    f.write_text("disk full\n")
    log = cri_log(tmp_path / "0.log", ("stdout", b"ignored\n"))
    for spec in ({"name": "c"}, FALLBACK):
        for code in (0, 3):
            reason = "Completed" if code == 0 else "Error"
            assert container_message(spec, code, reason, f, log) == "disk full\n"


def test_fallback_to_logs_only_when_the_file_is_empty_and_the_exit_non_zero(
        tmp_path: Path) -> None:
    f = create_file(tmp_path / "m")
    log = cri_log(tmp_path / "0.log", ("stdout", b"starting\n"), ("stderr", b"Traceback\n"),
                  ("stdout", b"no newline"))
    assert container_message(FALLBACK, 1, "Error", f, log) == "starting\nTraceback\nno newline"
    assert container_message(FALLBACK, 0, "Completed", f, log) == ""
    assert container_message({"name": "c"}, 1, "Error", f, log) == ""
    assert container_message(FALLBACK, 1, "ContainerCannotRun", f, log) == ""
    # A missing file counts as empty.
    assert container_message(FALLBACK, 2, "Error", tmp_path / "gone", log).startswith("start")


def test_log_tail_is_the_last_80_records_cut_to_2048_bytes(tmp_path: Path) -> None:
    lines = b"".join(b"line %d\n" % i for i in range(200))
    log = cri_log(tmp_path / "0.log", ("stdout", lines))
    assert tail_cri_log(log) == b"".join(b"line %d\n" % i for i in range(120, 200))
    long = cri_log(tmp_path / "1.log", *(("stderr", b"%04d" % i + b"x" * 95 + b"\n")
                                         for i in range(50)))
    tail = tail_cri_log(long)
    assert len(tail) == MAX_LOG_LENGTH
    assert tail.endswith(b"0049" + b"x" * 95 + b"\n")
    # Records of a line cut by the CRI writer are re-joined; each still counts as a record.
    split = tmp_path / "2.log"
    with CriLogWriter(split, max_line=4) as w:
        w.write("stdout", b"abcdefghij\n")
    assert tail_cri_log(split, lines=80) == b"abcdefghij\n"
    assert tail_cri_log(split, lines=1) == b"ij\n"
    assert tail_cri_log(tmp_path / "2.log", lines=0) == b""


def test_log_tail_of_an_empty_log(tmp_path: Path) -> None:
    log = tmp_path / "0.log"
    log.touch()
    assert tail_cri_log(log) == b""


def test_invalid_utf8_is_replaced_as_in_the_api(tmp_path: Path) -> None:
    f = tmp_path / "m"
    f.write_bytes(b"bad \xff byte")
    assert container_message({"name": "c"}, 1, "Error", f, None) == "bad \ufffd byte"


def test_read_errors_become_the_message(tmp_path: Path) -> None:
    d = tmp_path / "dir"
    d.mkdir()
    msg = container_message({"name": "c"}, 1, "Error", d, None)
    assert msg.startswith(f"Error on reading termination log {d}: ")
    msg = container_message(FALLBACK, 1, "Error", None, tmp_path / "no.log")
    assert msg.startswith("Error on reading termination message from logs: ")


def test_no_path_means_logs_only(tmp_path: Path) -> None:
    f = tmp_path / "m"
    f.write_text("never read")
    log = cri_log(tmp_path / "0.log", ("stdout", b"out\n"))
    spec = {**FALLBACK, "terminationMessagePath": ""}
    assert container_message(spec, 1, "Error", f, log) == "out\n"
    assert container_message({"name": "c", "terminationMessagePath": ""}, 1, "Error", f,
                             log) == ""


@pytest.mark.parametrize(("runtime", "message", "expected"), [
    (None, "", None), ("shim failed", "", "shim failed"), (None, "bye", "bye"),
    ("ended while restarting", "bye", "ended while restarting: bye"),
])
def test_combine_appends_like_convert_to_kube_container_status(
        runtime: str | None, message: str, expected: str | None) -> None:
    assert combine(runtime, message) == expected
