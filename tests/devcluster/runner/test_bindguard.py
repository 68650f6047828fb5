"""The bind guard outside the cluster: compiled from source, preloaded into a Python child."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devcluster.runner import bindguard

# The child prints what each socket ended up bound to; any error is printed instead.
CHILD = r"""
import json, socket, sys
out = {}
def run(name, fn):
    try:
        out[name] = fn()
    except OSError as exc:
        out[name] = f"error {exc.errno}"

def v4_any():
    s = socket.socket(); s.bind(("0.0.0.0", 0)); return list(s.getsockname())

def v4_specific():
    s = socket.socket(); s.bind(("127.0.0.2", 0)); return list(s.getsockname())

def v4_udp_any():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("", 0))
    return list(s.getsockname())

def v6_any_v6only():
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind(("::", 0)); s.listen()
    port = s.getsockname()[1]
    c = socket.create_connection(("127.0.0.1", port), timeout=5)  # an IPv4 client reaches it
    conn, peer = s.accept(); conn.sendall(b"hi"); data = c.recv(2)
    return [s.getsockname()[0], data.decode(),
            s.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY)]

def v6_any_dual():
    s = socket.socket(socket.AF_INET6)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.bind(("::", 0)); return s.getsockname()[0]

def v6_loopback():
    s = socket.socket(socket.AF_INET6); s.bind(("::1", 0)); return s.getsockname()[0]

def dual_pattern():
    # nginx's default: "listen 80" plus "listen [::]:80 ipv6only=on" on the same port.
    v4 = socket.socket(); v4.bind(("0.0.0.0", 0)); v4.listen()
    port = v4.getsockname()[1]
    v6 = socket.socket(socket.AF_INET6)
    v6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    v6.bind(("::", port)); v6.listen()
    return [list(v4.getsockname()), v6.getsockname()[0]]

def listen_unbound():
    s = socket.socket(); s.listen(); return list(s.getsockname())

def unix():
    import tempfile, os
    path = os.path.join(tempfile.mkdtemp(), "s")
    s = socket.socket(socket.AF_UNIX); s.bind(path); return s.getsockname()

for fn in (v4_any, v4_specific, v4_udp_any, v6_any_v6only, v6_any_dual, v6_loopback,
           dual_pattern, listen_unbound, unix):
    run(fn.__name__, fn)
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def guard(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bindguard.build(tmp_path_factory.mktemp("state"))


def _run(guard: Path, address: str | None, preload: str | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "FLEET_BIND_ADDRESS")}
    env = bindguard.preload_env(env, guard, address or "")
    if address is None:
        env.pop("FLEET_BIND_ADDRESS")
    if preload is not None:
        env["LD_PRELOAD"] = preload
    proc = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True,
                          text=True, timeout=60, check=True)
    assert "cannot be preloaded" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def test_build_is_cached_by_source_hash(guard: Path, tmp_path: Path) -> None:
    assert guard.name.startswith("bindguard-") and guard.suffix == ".so"
    assert bindguard.build(guard.parent.parent) == guard  # same source: the cached file
    edited = tmp_path / "bindguard.c"
    edited.write_text(bindguard.SOURCE.read_text() + "\n/* edited */\n")
    other = bindguard.build(guard.parent.parent, source=edited)
    assert other != guard and other.is_file()
    assert not list(guard.parent.glob(".*.tmp"))


def test_no_compiler_names_the_install_command(tmp_path: Path) -> None:
    with pytest.raises(bindguard.BindGuardUnavailable) as err:
        bindguard.build(tmp_path, compiler="no-such-cc")
    msg = str(err.value)
    assert "no C compiler" in msg
    assert "apt-get install -y gcc libc6-dev" in msg


def test_a_broken_source_reports_the_compiler_error(tmp_path: Path) -> None:
    bad = tmp_path / "bindguard.c"
    bad.write_text("this is not C\n")
    with pytest.raises(bindguard.BindGuardUnavailable) as err:
        bindguard.build(tmp_path / "state", source=bad)
    assert "exited" in str(err.value) and "error" in str(err.value)
    assert not list((tmp_path / "state" / "lib").glob("*"))


def test_wildcard_binds_become_the_pod_ip(guard: Path) -> None:
    out = _run(guard, "127.0.0.1")
    assert out["v4_any"][0] == "127.0.0.1"
    assert out["v4_specific"][0] == "127.0.0.2"  # specific addresses are left alone
    assert out["v4_udp_any"][0] == "127.0.0.1"
    addr, reply, v6only = out["v6_any_v6only"]
    assert addr == "::ffff:127.0.0.1" and reply == "hi" and v6only == 0
    assert out["v6_any_dual"] == "::ffff:127.0.0.1"
    assert out["v6_loopback"] == "::1"
    v4, v6 = out["dual_pattern"]
    assert v4[0] == "127.0.0.1" and v6 == "::1"  # no wildcard, no EADDRINUSE
    assert out["listen_unbound"][0] == "127.0.0.1"
    assert out["unix"].endswith("/s")


def test_without_an_address_nothing_changes(guard: Path) -> None:
    out = _run(guard, None)
    assert out["v4_any"][0] == "0.0.0.0"
    assert out["v6_any_dual"] == "::"


def test_the_pods_own_preload_is_kept_first() -> None:
    env = bindguard.preload_env({"LD_PRELOAD": "/opt/a.so:/opt/b.so"}, Path("/s/g.so"),
                                "127.1.128.7")
    assert env["LD_PRELOAD"] == "/opt/a.so:/opt/b.so /s/g.so"
    assert env["FLEET_BIND_ADDRESS"] == "127.1.128.7"
    assert bindguard.preload_env(env, Path("/s/g.so"), "127.1.128.7") == env  # idempotent
    assert bindguard.preload_env({}, Path("/s/g.so"), "x")["LD_PRELOAD"] == "/s/g.so"
