"""Proxies without the cluster: Go's `NO_PROXY` rules, and `KubeClient`'s requests and `dial`
(port-forward's connection) through a real CONNECT proxy (tests/fleet/connectproxy.py, http
and https) in front of a local TLS server standing in for the API server; refusals (407, 403),
proxy credentials, an untrusted https proxy, `HTTPS_PROXY` with `NO_PROXY`."""

from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.errors import Unreachable
from fleet.kube import KubeClient
from fleet.proxy import ProxyRefused, env_proxy, use_proxy
from tests.fleet.connectproxy import ConnectProxy, TestCA
from tests.waiting import eventually

PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy")
FAKE_NAME = "api.fleet.test"  # resolved to 127.0.0.1 by the proxy, and by `resolve_fake`


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARS:  # `make test` exports no_proxy
        monkeypatch.delenv(name, raising=False)


# --- NO_PROXY: golang.org/x/net/http/httpproxy's rules -----------------------------------------

@pytest.mark.parametrize(("host", "port", "no_proxy", "proxied"), [
    ("api.example.com", 443, "", True),
    ("127.0.0.1", 443, "", False), ("::1", 443, "", False), ("localhost", 443, "", False),
    ("127.0.0.2", 443, "", False),  # all of 127/8 is loopback
    ("api.example.com", 443, "*", False),
    ("api.example.com", 443, "example.com", False),  # a domain covers its subdomains
    ("example.com", 443, "example.com", False),
    ("example.com", 443, ".example.com", True),  # a leading dot: subdomains only
    ("api.example.com", 443, ".example.com", False),
    ("api.example.com", 443, "*.example.com", False),
    ("badexample.com", 443, "example.com", True),  # a suffix, not a label: proxied
    ("api.example.com", 443, "example.com:6443", True),  # another port
    ("api.example.com", 6443, "example.com:6443", False),
    ("10.1.2.3", 443, "10.0.0.0/8", False),  # CIDR (kubectl's NewProxierWithNoProxyCIDR)
    ("10.1.2.3", 443, "192.168.0.0/16, 10.1.2.0/24", False),
    ("11.1.2.3", 443, "10.0.0.0/8", True),
    ("10.1.2.3", 443, "10.1.2.3", False), ("10.1.2.3", 443, "10.1.2.3:443", False),
    ("10.1.2.3", 6443, "10.1.2.3:443", True),
    ("fd00::1", 443, "fd00::/8", False), ("fd00::1", 443, "[fd00::1]:443", False),
    ("fd00::1", 443, "fd00::1", False),
    ("api.example.com", 443, "10.0.0.0/8", True),  # a CIDR never matches a name
    ("API.Example.COM", 443, " Example.com ", False),  # case and spaces
    ("api.example.com", 443, ":443", True),  # malformed entries are ignored
])
def test_no_proxy_rules_are_gos(host: str, port: int, no_proxy: str, proxied: bool) -> None:
    assert use_proxy(host, port, no_proxy) is proxied


def test_env_proxy_names_and_scheme(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://lower.corp:3128")
    assert env_proxy("https", "api.example.com") == "http://lower.corp:3128"
    monkeypatch.setenv("HTTPS_PROXY", "upper.corp:3128")  # Go reads the upper-case name first
    assert env_proxy("https", "api.example.com") == "http://upper.corp:3128"
    assert env_proxy("http", "api.example.com") is None  # HTTP_PROXY is for http:// servers
    monkeypatch.setenv("HTTP_PROXY", "https://plain.corp")
    assert env_proxy("http", "api.example.com") == "https://plain.corp"
    monkeypatch.setenv("no_proxy", "example.com")
    assert env_proxy("https", "api.example.com") is None
    monkeypatch.setenv("NO_PROXY", "other.com")  # upper case first here too
    assert env_proxy("https", "api.example.com") == "http://upper.corp:3128"


# --- through a real proxy ----------------------------------------------------------------------

class _Api(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        body = json.dumps({"path": self.path, "auth": self.headers.get("Authorization"),
                           "user": self.headers.get("Impersonate-User")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def api(ca: TestCA) -> Iterator[int]:
    """A TLS server for 127.0.0.1, localhost and FAKE_NAME signed by `ca`; yields its port."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(*ca.server_cert("api", dns=("localhost", FAKE_NAME)))
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1]
    httpd.shutdown()
    httpd.server_close()


def kubeconfig(path: Path, server: str, ca_pem: bytes, **cluster: Any) -> str:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {
            "server": server, "certificate-authority-data": base64.b64encode(ca_pem).decode(),
            **cluster}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "tok", "as": "bob"}}]}))
    return str(path)


def raw_get(sock: socket.socket, path: str) -> bytes:
    """One HTTP/1.1 GET over an upgraded-connection socket from `dial`."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: api\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _relays() -> int:
    return sum(t.name == "fleet-proxy-relay" for t in threading.enumerate())


@pytest.mark.parametrize("kind", ["http", "https"])
def test_requests_and_dial_through_a_connect_proxy(tmp_path, ca, api, kind):
    proxy = ConnectProxy(kind, tls=ca.server_context("proxy") if kind == "https" else None)
    try:
        kc = kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{api}", ca.pem,
                        **{"proxy-url": proxy.url})
        client = KubeClient.from_kubeconfig(kc)
        assert client.get("/version") == {"path": "/version", "auth": "Bearer tok",
                                           "user": "bob"}
        assert proxy.tunnels == [f"127.0.0.1:{api}"]  # requests keep their connection
        auth = client.credentials.current()
        relays = _relays()
        sock = client.dial(auth, timeout=5)
        # a real TLS socket to the API server: what port-forward's reader selects on
        assert isinstance(sock, ssl.SSLSocket)
        assert sock.getpeercert()["subject"] == ((("commonName", "api"),),)
        assert proxy.tunnels == [f"127.0.0.1:{api}"] * 2
        assert _relays() == relays + (kind == "https")  # TLS in TLS: one relay thread
        assert raw_get(sock, "/pf").split(b"\r\n", 1)[0] == b"HTTP/1.1 200 OK"
        sock.close()
        # the relay ends with the tunnel (here: the server closed it after the response)
        assert eventually(lambda: _relays() == relays)
        client.close()
    finally:
        proxy.close()


def test_proxy_credentials_from_proxy_url(tmp_path, ca, api):
    proxy = ConnectProxy("http", credentials="ops:p w@x")
    try:
        url = proxy.url.replace("http://", "http://ops:p%20w%40x@")
        kc = kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{api}", ca.pem,
                        **{"proxy-url": url})
        client = KubeClient.from_kubeconfig(kc)
        assert client.get("/version")["path"] == "/version"
        client.dial(client.credentials.current(), timeout=5).close()
        want = "Basic " + base64.b64encode(b"ops:p w@x").decode()
        assert proxy.auth_seen == [want, want] and len(proxy.tunnels) == 2
    finally:
        proxy.close()


@pytest.mark.parametrize(("refuse", "credentials", "hint"), [
    (None, "ops:secret", "(the proxy wants credentials: put them in the kubeconfig's "
                         "proxy-url, http://USER:PASSWORD@HOST:PORT)"),
    ("403 Forbidden", None, "(the proxy does not allow this destination)"),
])
@pytest.mark.parametrize("kind", ["http", "https"])
def test_a_refusing_proxy_is_named_with_its_status(tmp_path, ca, api, kind, refuse,
                                                   credentials, hint):
    proxy = ConnectProxy(kind, tls=ca.server_context("proxy") if kind == "https" else None,
                         refuse=refuse, credentials=credentials)
    try:
        kc = kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{api}", ca.pem,
                        **{"proxy-url": proxy.url})
        status = refuse or "407 Proxy Authentication Required"
        want = (f"Unable to connect to the server: proxy {proxy.url} refused to tunnel to "
                f"127.0.0.1:{api}: {status} {hint}")
        client = KubeClient.from_kubeconfig(kc)
        with pytest.raises(ProxyRefused) as info:
            client.dial(client.credentials.current(), timeout=5)
        assert info.value.message == want
        with pytest.raises(ProxyRefused) as info:  # plain requests say the same
            client.get("/version")
        assert info.value.message == want
        assert proxy.tunnels == [] and len(proxy.requests) == 2
    finally:
        proxy.close()


def test_wrong_proxy_credentials_say_so(tmp_path, ca, api):
    proxy = ConnectProxy("http", credentials="ops:secret")
    try:
        kc = kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{api}", ca.pem,
                        **{"proxy-url": proxy.url.replace("http://", "http://ops:wrong@")})
        client = KubeClient.from_kubeconfig(kc)
        with pytest.raises(ProxyRefused, match=r"^Unable to connect to the server: proxy "
                           rf"http://127\.0\.0\.1:\d+ refused to tunnel to 127\.0\.0\.1:{api}: "
                           r"407 Proxy Authentication Required \(the proxy refused the user "
                           r"and password of proxy-url\)$"):
            client.dial(client.credentials.current(), timeout=5)
    finally:
        proxy.close()


def test_an_https_proxy_is_verified_like_the_api_server(tmp_path, ca, api):
    """Its certificate must chain to the kubeconfig's CA (client-go reuses the TLS config)."""
    other = TestCA(tmp_path / "other", name="someone-else")
    proxy = ConnectProxy("https", tls=other.server_context("proxy"))
    try:
        kc = kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{api}", ca.pem,
                        **{"proxy-url": proxy.url})
        client = KubeClient.from_kubeconfig(kc)
        with pytest.raises(Unreachable, match=r"^Unable to connect to the server: .*"
                                              r"CERTIFICATE_VERIFY_FAILED"):
            client.dial(client.credentials.current(), timeout=5)
        with pytest.raises(Unreachable, match=r"^Unable to connect to the server: proxy "
                                              r"https://127\.0\.0\.1:\d+: .*"
                                              r"CERTIFICATE_VERIFY_FAILED"):
            client.get("/version")
        assert proxy.requests == []
        # a bundle with both CAs: the proxy's and the server's certificates both verify
        kc = kubeconfig(tmp_path / "kc2", f"https://127.0.0.1:{api}", ca.pem + other.pem,
                        **{"proxy-url": proxy.url})
        client = KubeClient.from_kubeconfig(kc)
        assert client.get("/version")["path"] == "/version"
        assert raw_get(client.dial(client.credentials.current(), timeout=5), "/x")
        assert len(proxy.tunnels) == 2
    finally:
        proxy.close()


@pytest.fixture
def resolve_fake(monkeypatch: pytest.MonkeyPatch) -> None:
    """FAKE_NAME resolves to 127.0.0.1 in this process (no DNS query leaves the machine)."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kw: Any) -> Any:
        return real("127.0.0.1" if host == FAKE_NAME else host, *args, **kw)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_https_proxy_env_and_no_proxy(tmp_path, ca, api, monkeypatch, resolve_fake):
    """Without proxy-url, HTTPS_PROXY (never for loopback, so the server is named FAKE_NAME);
    NO_PROXY sends requests and port-forward's connection straight to the server."""
    proxy = ConnectProxy("http", names=(FAKE_NAME,))
    try:
        kc = kubeconfig(tmp_path / "kc", f"https://{FAKE_NAME}:{api}", ca.pem)
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        client = KubeClient.from_kubeconfig(kc)
        assert client.get("/version")["path"] == "/version"
        assert raw_get(client.dial(client.credentials.current(), timeout=5), "/x")
        assert proxy.tunnels == [f"{FAKE_NAME}:{api}"] * 2
        for no_proxy in (".fleet.test", "fleet.test", f"{FAKE_NAME}:{api}", "*"):
            monkeypatch.setenv("NO_PROXY", no_proxy)
            direct = KubeClient.from_kubeconfig(kc)
            assert direct.get("/version")["path"] == "/version"
            assert raw_get(direct.dial(direct.credentials.current(), timeout=5), "/x")
            assert len(proxy.tunnels) == 2, no_proxy
        monkeypatch.setenv("NO_PROXY", f"{FAKE_NAME}:1")  # another port: proxied
        again = KubeClient.from_kubeconfig(kc)
        assert again.get("/version")["path"] == "/version" and len(proxy.tunnels) == 3
        # a kubeconfig proxy-url is used as it is, NO_PROXY or not (client-go's ProxyURL)
        monkeypatch.setenv("NO_PROXY", "*")
        kc = kubeconfig(tmp_path / "kc2", f"https://{FAKE_NAME}:{api}", ca.pem,
                        **{"proxy-url": proxy.url})
        assert KubeClient.from_kubeconfig(kc).get("/version")["path"] == "/version"
        assert len(proxy.tunnels) == 4
    finally:
        proxy.close()


def test_a_proxy_that_is_not_there(tmp_path, ca, api):
    with socket.socket() as s:  # a port nobody listens on (bound, never listening)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        kc = kubeconfig(tmp_path / "kc", f"https://127.0.0.1:{api}", ca.pem,
                        **{"proxy-url": f"https://127.0.0.1:{port}"})
        client = KubeClient.from_kubeconfig(kc)
        with pytest.raises(Unreachable, match=r"^Unable to connect to the server: .*[Rr]efused"):
            client.dial(client.credentials.current(), timeout=5)
        with pytest.raises(Unreachable, match=rf"^Unable to connect to the server: proxy "
                                              rf"https://127\.0\.0\.1:{port}: "):
            client.get("/version")
