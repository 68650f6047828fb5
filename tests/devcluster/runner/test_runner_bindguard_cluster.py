"""Wildcard binds in runner pods mean the pod IP, as in a pod's own network namespace.

TensorFlow's gRPC server and many real containers bind 0.0.0.0 or [::]; the runner preloads
its bind guard so such a pod listens on its pod IP only and two pods can use the same port.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.devcluster.runner.runnerkit import (
    create,
    descendants,
    pod,
    pod_pid,
    python_container,
    ready,
    wait_pod,
)
from tests.fixtures.cluster import TestCluster, wait_for

pytestmark = pytest.mark.cluster

V4_PORT, V6_PORT = 47101, 47102

# Binds ("0.0.0.0", V4_PORT) and ("::", V6_PORT), then answers every connection with the
# address the connection reached, so the test sees where the listener really is.
WILDCARD_SERVER = f"""
import socket, threading
def listener(family, addr, port):
    s = socket.socket(family)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen()
    return s
def serve(s, tag):
    while True:
        c, _ = s.accept()
        c.sendall(f"{{tag}} {{c.getsockname()[0]}}".encode()); c.close()
v4 = listener(socket.AF_INET, "0.0.0.0", {V4_PORT})
v6 = listener(socket.AF_INET6, "::", {V6_PORT})
print("bound", v4.getsockname()[0], v6.getsockname()[0], flush=True)
threading.Thread(target=serve, args=(v6, "v6"), daemon=True).start()
serve(v4, "v4")
"""


def _tcp_listeners(port: int) -> list[str]:
    """Local addresses of every TCP listener on `port` in this (the host's) namespace."""
    found = []
    for table in ("tcp", "tcp6"):
        for row in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            cols = row.split()
            addr_hex, port_hex = cols[1].split(":")
            if cols[3] != "0A" or int(port_hex, 16) != port:  # 0A = LISTEN
                continue
            raw = bytes.fromhex(addr_hex)
            words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            ip = ipaddress.ip_address(words)
            mapped = getattr(ip, "ipv4_mapped", None)
            found.append(f"::ffff:{mapped}" if mapped else str(ip))
    return found


def _ask(ip: str, port: int) -> str:
    with socket.create_connection((ip, port), timeout=10) as c:
        return c.recv(100).decode()


def test_wildcard_binds_listen_only_on_the_pod_ip(cluster: TestCluster,
                                                  namespace: str) -> None:
    probe = {"tcpSocket": {"port": V4_PORT}, "periodSeconds": 1}
    for name in ("wild-a", "wild-b"):  # the same ports in two pods: no EADDRINUSE
        create(cluster, namespace, pod(name, [python_container(
            "main", WILDCARD_SERVER, readinessProbe=probe)]))
    ips = []
    for name in ("wild-a", "wild-b"):
        p = wait_pod(cluster, namespace, name, ready, what="Ready")
        ips.append(p["status"]["podIP"])
    assert ips[0] != ips[1]
    assert sorted(_tcp_listeners(V4_PORT)) == sorted(ips)
    assert sorted(_tcp_listeners(V6_PORT)) == sorted(f"::ffff:{ip}" for ip in ips)
    for ip in ips:
        assert _ask(ip, V4_PORT) == f"v4 {ip}"
        assert _ask(ip, V6_PORT) == f"v6 ::ffff:{ip}"  # an IPv4 client reaches the [::] bind
    with pytest.raises(OSError):
        _ask("127.0.0.1", V4_PORT)  # nothing on the host's other addresses



TF_PORT = 47103
TF_SERVER = f"""
import os, time
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
import tensorflow as tf
spec = tf.train.ClusterSpec({{"worker": [os.environ["POD_IP"] + ":{TF_PORT}"]}})
server = tf.distribute.Server(spec, job_name="worker", task_index=0, start=True)
print("serving", server.target, flush=True)
while True: time.sleep(1)
"""


def test_tensorflow_grpc_server_listens_on_the_pod_ip(cluster: TestCluster,
                                                      namespace: str) -> None:
    """tf.distribute.Server binds the wildcard address whatever its ClusterSpec says."""
    env = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]
    c = python_container("worker", TF_SERVER, env=env,
                         readinessProbe={"tcpSocket": {"port": TF_PORT}, "periodSeconds": 1})
    create(cluster, namespace, pod("tf-worker", [c]))
    p = wait_pod(cluster, namespace, "tf-worker", ready, timeout=120, what="Ready")
    ip = p["status"]["podIP"]
    assert _tcp_listeners(TF_PORT) == [f"::ffff:{ip}"]
    socket.create_connection((ip, TF_PORT), timeout=10).close()


MARKER_C = r"""
#include <stdlib.h>
__attribute__((constructor)) static void mark(void) { setenv("FLEET_TEST_MARK", "loaded", 1); }
"""

PRELOAD_PROGRAM = """
import os, socket, time
s = socket.socket(); s.bind(("0.0.0.0", 0))
print(os.environ.get("FLEET_TEST_MARK"), s.getsockname()[0], flush=True)
print(os.environ["LD_PRELOAD"], flush=True)
while True: time.sleep(1)
"""


def test_a_pods_own_ld_preload_is_kept(cluster: TestCluster, namespace: str,
                                       tmp_path: Path) -> None:
    (tmp_path / "marker.c").write_text(MARKER_C)
    marker = tmp_path / "libmarker.so"
    subprocess.run(["cc", "-shared", "-fPIC", "-o", str(marker), str(tmp_path / "marker.c")],
                   check=True, capture_output=True, timeout=60)
    c = python_container("main", PRELOAD_PROGRAM,
                         env=[{"name": "LD_PRELOAD", "value": str(marker)}])
    create(cluster, namespace, pod("preload", [c]))
    p = wait_pod(cluster, namespace, "preload", ready, what="Ready")
    ip = p["status"]["podIP"]
    out = wait_for(lambda: (lambda o: o if o.count("\n") >= 2 else None)(
        cluster.kubectl_run("logs", "preload", "-n", namespace).stdout),
        timeout=20, what="preload output")
    first, preload = out.splitlines()[:2]
    assert first == f"loaded {ip}"  # the pod's library ran and the guard still applies
    entries = preload.split()
    assert entries[0] == str(marker) and len(entries) == 2
    guard = entries[1]
    assert Path(guard).name.startswith("bindguard-")
    # Both libraries are mapped into the program itself.
    program = next(pid for pid in descendants(pod_pid(p))
                   if b"FLEET_TEST_MARK" in Path(f"/proc/{pid}/cmdline").read_bytes())
    maps = Path(f"/proc/{program}/maps").read_text()
    assert str(marker) in maps and guard in maps


def test_runner_start_fails_clearly_without_a_compiler(cluster: TestCluster,
                                                       tmp_path: Path) -> None:
    pki = Path(cluster.ca_cert).parent
    proc = subprocess.run(
        [sys.executable, "-m", "devcluster.runner", f"--server={cluster.server}",
         f"--ca={cluster.ca_cert}", f"--cert={pki / 'admin.crt'}", f"--key={pki / 'admin.key'}",
         f"--state-dir={tmp_path / 'runner'}", "--kwok-port=1", "--health-port=0"],
        env={**os.environ, "CC": "no-such-cc"}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "runner: cannot start:" in proc.stderr
    assert "sudo apt-get update && sudo apt-get install -y gcc libc6-dev" in proc.stderr
    assert not (tmp_path / "runner" / "local-0").exists()  # failed before taking any node


def test_a_volume_over_the_runner_state_does_not_hide_the_guard(cluster: TestCluster,
                                                                namespace: str) -> None:
    # An emptyDir over the cluster's state dir (where the compiled guard lives), as /tmp is
    # when the state lies below /tmp: the runner binds the guard's directory back.
    cover = str(cluster.local.layout.runner_dir.parent)
    code = ("import os, socket; s = socket.socket(); s.bind(('0.0.0.0', 0)); "
            "print(os.path.exists(os.environ['LD_PRELOAD'].split()[-1]), s.getsockname()[0], "
            "flush=True)")
    c = python_container("main", code, volumeMounts=[{"name": "cover", "mountPath": cover}])
    create(cluster, namespace, pod("cover-guard", [c], restartPolicy="Never",
                                   volumes=[{"name": "cover", "emptyDir": {}}]))
    p = wait_pod(cluster, namespace, "cover-guard", lambda p: p["status"].get("phase") in
                 ("Succeeded", "Failed"), what="finished")
    assert p["status"]["phase"] == "Succeeded", p["status"]
    out = cluster.kubectl_run("logs", "cover-guard", "-n", namespace).stdout
    assert out == f"True {p['status']['podIP']}\n"  # preloaded, no ld.so warning
