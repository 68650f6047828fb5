"""bench/serving/listeners.py: the guard that stops the serving benchmark when a server (ours
or a peer such as KServe, whose REST server hard-codes 0.0.0.0) listens beyond loopback.
Checked against real sockets held by a real process session, including a forked worker. The
test itself binds only loopback (the project's network rule): a non-loopback listener is
checked through the parsing of /proc's own address format instead."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.serving.listeners import _address, listening, not_loopback

CHILD = """
import os, socket, sys
def say(*words):  # one write per line: both processes share the pipe
    os.write(1, (" ".join(map(str, words)) + "\\n").encode())
def listen(family, host):
    s = socket.socket(family)
    s.bind((host, 0))
    s.listen()
    return s
keep = [listen(socket.AF_INET, "127.0.0.1"), listen(socket.AF_INET, "127.0.0.2")]
peer = socket.create_connection(keep[0].getsockname())  # connected, not listening
if os.fork() == 0:  # a worker in the same session, like a server's worker process
    keep.append(listen(socket.AF_INET, "127.0.0.1"))
    say("worker", keep[-1].getsockname()[1])
    sys.stdin.read()
    os._exit(0)
say("main", keep[0].getsockname()[1], keep[1].getsockname()[1], peer.getsockname()[1])
sys.stdin.read()
"""


@pytest.fixture
def session() -> Iterator[tuple[int, dict[str, list[int]]]]:
    proc = subprocess.Popen([sys.executable, "-c", CHILD], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout is not None and proc.stdin is not None
    ports: dict[str, list[int]] = {}
    for _ in range(2):
        kind, *nums = proc.stdout.readline().split()
        ports[kind] = [int(n) for n in nums]
    try:
        yield proc.pid, ports
    finally:
        proc.stdin.close()  # both processes see EOF and exit
        proc.wait(10)


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc")
def test_listening_sees_every_listener_of_the_session_and_only_those(
        session: tuple[int, dict[str, list[int]]]) -> None:
    sid, ports = session
    loop, other, client = ports["main"]
    worker = ports["worker"][0]
    found = listening(sid)
    assert sorted(found) == sorted([f"127.0.0.1:{loop}", f"127.0.0.2:{other}",
                                    f"127.0.0.1:{worker}"])
    assert not any(a.endswith(f":{client}") for a in found)
    assert not_loopback(found) == []


def test_proc_addresses_decode_to_what_the_socket_was_bound_to() -> None:
    # /proc/net/tcp and tcp6 print each 32-bit word little-endian, the port big-endian
    assert _address("0100007F:1F90") == "127.0.0.1:8080"
    assert _address("00000000:1F91") == "0.0.0.0:8081"
    assert _address("0200000A:0050") == "10.0.0.2:80"
    assert _address("00000000000000000000000001000000:0051") == "[::1]:81"
    assert _address("00000000000000000000000000000000:0052") == "[::]:82"
    assert not_loopback([_address("00000000:1F91"), _address("0100007F:1F90")]) == [
        "0.0.0.0:8081"]


def test_not_loopback_reads_v4_and_v6_forms() -> None:
    addrs = ["127.0.0.1:80", "127.1.0.5:81", "[::1]:82", "[::]:83", "0.0.0.0:84", "10.0.0.2:85"]
    assert not_loopback(addrs) == ["[::]:83", "0.0.0.0:84", "10.0.0.2:85"]


def test_listening_of_a_session_that_does_not_exist_is_empty() -> None:
    assert listening(2**22 + 12345) == []
