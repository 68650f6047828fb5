"""Port-forward through proxies against the real apiserver and process kubelet, next to
kubectl: an `https://` proxy-url (TLS to the proxy with a test CA, then TLS to the apiserver
inside the tunnel), `HTTPS_PROXY` with `NO_PROXY`, and a proxy that refuses (407, 403).
The proxy (tests/fleet/connectproxy.py) counts the tunnels it opened."""

from __future__ import annotations

import base64
import http.client
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from fleet.kube import KubeClient
from fleet.ops import predict as ops
from fleet.portforward import PodHTTP, PortForwarder
from fleet.proxy import ProxyRefused
from tests.fixtures.cluster import TestCluster, wait_for
from tests.fleet.clusterkit import create_namespace, fleet
from tests.fleet.connectproxy import ConnectProxy, TestCA
from tests.fleet.test_proxy_unit import FAKE_NAME, PROXY_VARS, resolve_fake  # noqa: F401

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def pod(cluster: TestCluster) -> Iterator[tuple[str, str]]:
    """(namespace, pod): a runner pod answering HTTP on 8080 (tests/tui/test_tui_cluster.py)."""
    from tests.tui.test_tui_cluster import runner_dep

    ns = create_namespace(cluster, "proxy")
    cluster.apply(runner_dep("pf", ns))

    def ready() -> str | None:
        for p in cluster.get_json("pods", "-n", ns, "-l", "app=pf")["items"]:
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for c in p["status"].get("conditions", [])):
                return p["metadata"]["name"]
        return None

    yield ns, wait_for(ready, timeout=90, what="the runner pod Ready")
    cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("proxy-ca"))


def via_proxy(cluster: TestCluster, path: Path, proxy: ConnectProxy | None, *,
              extra_ca: bytes = b"", **cluster_fields: Any) -> str:
    """The admin kubeconfig (client certificate) with `proxy`'s `proxy-url` (None: none),
    its CA data the cluster's CA plus `extra_ca` (the https proxy's)."""
    doc = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    entry = doc["clusters"][0]["cluster"]
    entry.pop("certificate-authority", None)
    ca_pem = Path(cluster.ca_cert).read_bytes()
    entry["certificate-authority-data"] = base64.b64encode(ca_pem + extra_ca).decode()
    if proxy is not None:
        entry["proxy-url"] = proxy.url
    entry.update(cluster_fields)
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def kubectl_port_forward(cluster: TestCluster, kubeconfig: str, ns: str, pod: str
                         ) -> tuple[subprocess.Popen[str], int]:
    """`kubectl port-forward pod/POD :8080` (the peer); returns it and its local port."""
    proc = subprocess.Popen([cluster.kubectl, "port-forward", "-n", ns, f"pod/{pod}", ":8080",
                             "--address", "127.0.0.1"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**cluster.env, "KUBECONFIG": kubeconfig})
    assert proc.stdout is not None
    line = proc.stdout.readline()  # Forwarding from 127.0.0.1:PORT -> 8080
    m = re.search(r"127\.0\.0\.1:(\d+)", line)
    if m is None:
        proc.kill()
        raise AssertionError(f"kubectl port-forward: {line!r} {proc.communicate()[1]}")
    return proc, int(m.group(1))


def http_get(port: int, path: str) -> bytes:
    """The body (by Content-Length: kubectl's local end stays open after the pod's closes)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return conn.getresponse().read()
    finally:
        conn.close()


def test_port_forward_through_an_https_proxy_like_kubectl(cluster, pod, ca, tmp_path):
    ns, name = pod
    server = urlsplit(cluster.server).netloc
    proxy = ConnectProxy("https", tls=ca.server_context("proxy"))
    try:
        kc = via_proxy(cluster, tmp_path / "kc", proxy, extra_ca=ca.pem)
        client = KubeClient.from_kubeconfig(kc)
        assert client.get("/version")["major"]
        assert len(proxy.tunnels) == 1
        # predict's port-forward path (probe now), then keep-alive requests on one tunnel
        res = ops.probe_now(client, ns, name, forwarder=PortForwarder.for_client(client),
                            timeout=10)
        assert (res.ok, res.status, res.via) == (True, 200, "port-forward")
        assert len(proxy.tunnels) == 2
        with PodHTTP(ns, name, 8080, forwarder=PortForwarder(kc), timeout=10) as conn:
            assert conn.request("GET", "/one").json() == {"ready": True, "path": "/one"}
            assert conn.request("GET", "/two").json()["path"] == "/two"
        assert proxy.tunnels == [server] * 4  # PortForwarder(kc): its own client, one tunnel
        # kubectl, the reference, goes through the same proxy with the same kubeconfig
        peer = cluster.kubectl_run("get", "--raw", "/version", kubeconfig=kc, check=False)
        assert peer.returncode == 0, peer.stderr
        assert len(proxy.tunnels) == 5
        proc, port = kubectl_port_forward(cluster, kc, ns, name)
        try:
            assert b'"path": "/peer"' in http_get(port, "/peer")
        finally:
            proc.kill()
            proc.communicate()
        assert len(proxy.tunnels) >= 6 and set(proxy.tunnels) == {server}
    finally:
        proxy.close()


def test_https_proxy_env_and_no_proxy_for_port_forward(cluster, pod, tmp_path, monkeypatch,
                                                       resolve_fake):  # noqa: F811
    """No proxy-url: HTTPS_PROXY (never used for loopback, so the server is named FAKE_NAME,
    resolved to 127.0.0.1 by the proxy and in this process); NO_PROXY bypasses it."""
    ns, name = pod
    port = urlsplit(cluster.server).port
    proxy = ConnectProxy("http", names=(FAKE_NAME,))
    try:
        kc = via_proxy(cluster, tmp_path / "kc", None, server=f"https://{FAKE_NAME}:{port}",
                       **{"tls-server-name": "kubernetes"})
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        client = KubeClient.from_kubeconfig(kc)
        res = ops.probe_now(client, ns, name, timeout=10)  # a tunnel from the client's creds
        assert (res.ok, res.status) == (True, 200)
        assert proxy.tunnels == [f"{FAKE_NAME}:{port}"] * 2  # the requests', the tunnel's
        monkeypatch.setenv("NO_PROXY", f"10.0.0.0/8,.fleet.test:{port}")
        direct = KubeClient.from_kubeconfig(kc)
        res = ops.probe_now(direct, ns, name, timeout=10)
        assert (res.ok, res.status) == (True, 200) and len(proxy.tunnels) == 2
    finally:
        proxy.close()


@pytest.mark.parametrize(("refuse", "credentials", "status"), [
    (None, "ops:secret", "407 Proxy Authentication Required"),
    ("403 Forbidden", None, "403 Forbidden"),
])
def test_a_refusing_proxy_is_one_clear_error(cluster, pod, ca, tmp_path, refuse, credentials,
                                             status):
    ns, name = pod
    proxy = ConnectProxy("https", tls=ca.server_context("proxy"), refuse=refuse,
                         credentials=credentials)
    try:
        kc = via_proxy(cluster, tmp_path / "kc", proxy, extra_ca=ca.pem)
        server = urlsplit(cluster.server).netloc
        want = (f"Unable to connect to the server: proxy {proxy.url} refused to tunnel to "
                f"{server}: {status}")
        with pytest.raises(ProxyRefused) as info:
            PortForwarder(kc).open(ns, name, 8080)
        assert info.value.message.startswith(want + " (")
        res = fleet(cluster, "predict", name, "-n", ns, "--example", kubeconfig=kc)
        assert res.returncode == 1
        assert res.stderr.startswith(want), res.stderr
        assert len(res.stderr.strip().splitlines()) == 1  # one line, no traceback
        peer = cluster.kubectl_run("get", "--raw", "/version", kubeconfig=kc, check=False)
        assert peer.returncode != 0 and status.split(" ", 1)[1] in peer.stderr
        assert proxy.tunnels == []
    finally:
        proxy.close()
