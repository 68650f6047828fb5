"""Port-forward through fleet's own client path, without a cluster: a TLS server on 127.0.0.1
that speaks the apiserver's port-forward websocket (`v4.channel.k8s.io`) answers the tunnel's
HTTP requests itself. It checks what the tunnel sends: the exec plugin's token (refreshed after
a 401), the client's impersonation headers, the CA and tls-server-name of the kubeconfig."""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import json
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleet import credentials as cr
from fleet import errors
from fleet.kube import KubeClient
from fleet.portforward import PodHTTP, PortForwarder
from tests.fleet.test_credentials import plugin_calls, write_plugin

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455
SERVER_NAME = "kube.test"  # the only name in the server certificate (no IP address)


def _tls(tmp: Path) -> tuple[ssl.SSLContext, str]:
    """A server context whose certificate names only SERVER_NAME; the CA file's path."""
    now = dt.datetime.now(dt.UTC)

    def build(name: x509.Name, issuer: x509.Name, public: Any, signer: Any, ca: bool,
              san: x509.GeneralName | None = None) -> x509.Certificate:
        b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
             .public_key(public).serial_number(x509.random_serial_number())
             .not_valid_before(now - dt.timedelta(1)).not_valid_after(now + dt.timedelta(1))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san is not None:
            b = b.add_extension(x509.SubjectAlternativeName([san]), critical=False)
        return b.sign(signer, hashes.SHA256())

    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pf-test-ca")])
    ca = build(ca_name, ca_name, ca_key.public_key(), ca_key, True)
    leaf = build(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)]), ca_name,
                 key.public_key(), ca_key, False, x509.DNSName(SERVER_NAME))
    pem = serialization.Encoding.PEM
    (tmp / "ca.crt").write_bytes(ca.public_bytes(pem))
    (tmp / "server.pem").write_bytes(
        leaf.public_bytes(pem) + key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(str(tmp / "server.pem"))
    return ctx, str(tmp / "ca.crt")


def _frame(payload: bytes) -> bytes:
    """A binary server frame (unmasked)."""
    n = len(payload)
    head = bytes([0x82, n]) if n < 126 else bytes([0x82, 126]) + n.to_bytes(2, "big")
    return head + payload


def _read_exact(f: Any, n: int) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise EOFError
    return data


def _read_frame(f: Any) -> tuple[int, bytes]:
    b0, b1 = _read_exact(f, 2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(_read_exact(f, 2), "big")
    elif n == 127:
        n = int.from_bytes(_read_exact(f, 8), "big")
    mask = _read_exact(f, 4) if b1 & 0x80 else b"\0\0\0\0"
    data = bytes(c ^ mask[i % 4] for i, c in enumerate(_read_exact(f, n)))
    return b0 & 0x0F, data


class FakePortForwardApi:
    """Port-forward only: `GET /api/v1/namespaces/NS/pods/POD/portforward?ports=P` with a token
    from `tokens` is upgraded; every HTTP request through the tunnel is answered with JSON
    naming its path. Others: 401, or `status` (e.g. 403) when set."""

    def __init__(self, ctx: ssl.SSLContext) -> None:
        self.tokens: set[str] = set()
        self.status: tuple[int, dict[str, Any]] | None = None
        self.handshakes: list[list[tuple[str, str]]] = []  # each upgrade's request headers
        api = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with contextlib.suppress(EOFError, OSError):  # ssl.SSLError is an OSError
                    api._serve(self.rfile, self.wfile)

        class Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def get_request(self) -> tuple[socket.socket, Any]:
                sock, addr = super().get_request()
                return ctx.wrap_socket(sock, server_side=True), addr

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _reply(self, w: Any, code: int, reason: str, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        w.write(f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
        w.flush()

    def _serve(self, r: Any, w: Any) -> None:
        request = r.readline().decode().split()
        headers: list[tuple[str, str]] = []
        while (line := r.readline().decode().rstrip("\r\n")):
            k, _, v = line.partition(":")
            headers.append((k.strip(), v.strip()))
        self.handshakes.append(headers)
        h = {k.lower(): v for k, v in headers}
        port = int(request[1].split("ports=")[1])
        if h.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            self._reply(w, 401, "Unauthorized", {"kind": "Status", "reason": "Unauthorized",
                                                 "message": "Unauthorized"})
            return
        if self.status is not None:
            code, body = self.status
            self._reply(w, code, body.get("reason", ""), body)
            return
        accept = base64.b64encode(hashlib.sha1(  # noqa: S324 - RFC 6455's hash
            (h["sec-websocket-key"] + WS_GUID).encode()).digest()).decode()
        w.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                 "Sec-WebSocket-Protocol: v4.channel.k8s.io\r\n\r\n").encode())
        port_bytes = port.to_bytes(2, "little")
        w.write(_frame(b"\0" + port_bytes) + _frame(b"\1" + port_bytes))
        w.flush()
        buf = b""
        while True:
            opcode, data = _read_frame(r)
            if opcode == 8:  # close
                return
            if opcode != 2 or not data or data[0] != 0:
                continue
            buf += data[1:]
            while b"\r\n\r\n" in buf:
                head, buf = buf.split(b"\r\n\r\n", 1)
                path = head.split(b" ")[1].decode()
                body = json.dumps({"path": path, "port": port}).encode()
                resp = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
                w.write(_frame(b"\0" + resp))
                w.flush()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[FakePortForwardApi, str]]:
    ctx, ca = _tls(tmp_path)
    server = FakePortForwardApi(ctx)
    yield server, ca
    server.close()


@pytest.fixture(autouse=True)
def _no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cr, "stdin_is_terminal", lambda: False)


def _kubeconfig(path: Path, server: str, ca: str, user: dict[str, Any]) -> str:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": server, "certificate-authority": ca,
                                               "tls-server-name": SERVER_NAME}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": user}]}))
    return str(path)


def _exec_user(d: Path, tokens: list[str]) -> dict[str, Any]:
    script = write_plugin(d, tokens)
    return {"exec": {"apiVersion": "client.authentication.k8s.io/v1", "command": str(script),
                     "interactiveMode": "Never",
                     "env": [{"name": "PLUGIN_DIR", "value": str(d)}]}}


def _auth_of(handshake: list[tuple[str, str]]) -> str:
    return next(v for k, v in handshake if k.lower() == "authorization")


def test_exec_plugin_token_reaches_the_tunnel_and_a_401_refreshes_it(api, tmp_path):
    server, ca = api
    server.tokens = {"good"}
    d = tmp_path / "plugin"
    kc = _kubeconfig(tmp_path / "kc", server.url, ca, _exec_user(d, ["stale", "good"]))
    fwd = PortForwarder(kc)  # the public interface: kubeconfig (and context)
    with PodHTTP("ns1", "pod-0", 8080, forwarder=fwd, timeout=10) as conn:
        resp = conn.request("GET", "/ready")
        assert (resp.status, resp.json()) == (200, {"path": "/ready", "port": 8080})
        assert conn.request("GET", "/again").json()["path"] == "/again"  # kept alive
    assert [_auth_of(h) for h in server.handshakes] == ["Bearer stale", "Bearer good"]
    assert len(plugin_calls(d)) == 2  # one refresh after the 401, then cached
    # a second tunnel: the cached token, no new plugin run
    with PodHTTP("ns1", "pod-0", 9090, forwarder=fwd, timeout=10) as conn:
        assert conn.request("GET", "/x").json() == {"path": "/x", "port": 9090}
    assert len(plugin_calls(d)) == 2 and _auth_of(server.handshakes[-1]) == "Bearer good"


def test_a_client_shares_its_credentials_and_impersonation_with_its_tunnels(api, tmp_path):
    server, ca = api
    server.tokens = {"t1"}
    d = tmp_path / "plugin"
    kc = _kubeconfig(tmp_path / "kc", server.url, ca, _exec_user(d, ["t1"]))
    client = KubeClient.from_kubeconfig(kc, as_user="bob", as_groups=["g1", "g2"])
    plain = KubeClient.from_kubeconfig(kc)
    fwd = PortForwarder.for_client(client)
    with PodHTTP("ns1", "pod-0", 8080, forwarder=fwd, timeout=10) as conn:
        assert conn.request("GET", "/").status == 200
    imp = [(k, v) for k, v in server.handshakes[-1] if k.startswith("Impersonate-")]
    assert imp == [("Impersonate-User", "bob"), ("Impersonate-Group", "g1"),
                   ("Impersonate-Group", "g2")]
    with PodHTTP("ns1", "pod-0", 8080, forwarder=PortForwarder.for_client(plain),
                 timeout=10) as conn:
        assert conn.request("GET", "/").status == 200
    assert not [k for k, _ in server.handshakes[-1] if k.startswith("Impersonate-")]


def test_refusals_are_typed_errors(api, tmp_path):
    server, ca = api
    server.tokens = {"t1"}
    kc = _kubeconfig(tmp_path / "kc", server.url, ca, {"token": "t1"})
    server.status = (403, {"kind": "Status", "reason": "Forbidden", "message":
                           'pods "p" is forbidden: User "u" cannot create resource '
                           '"pods/portforward" in API group "" in the namespace "ns"'})
    with pytest.raises(errors.Forbidden) as info:
        PortForwarder(kc).open("ns", "p", 8080)
    assert "pods/portforward in namespace ns" in info.value.message
    server.status = None
    bad = _kubeconfig(tmp_path / "bad", server.url, ca, {"token": "revoked"})
    with pytest.raises(errors.Unauthorized, match="You must be logged in"):
        PortForwarder(bad).open("ns", "p", 8080)
    assert len(server.handshakes) == 2  # a static token: no retry
    failing = tmp_path / "failing"
    user = _exec_user(failing, ["x"])
    user["exec"]["env"].append({"name": "PLUGIN_FAIL", "value": "no login"})
    with pytest.raises(errors.CredentialError, match="no login"):
        PortForwarder(_kubeconfig(tmp_path / "kc3", server.url, ca, user)).open("ns", "p", 1)


def test_the_kubeconfigs_ca_and_tls_server_name_are_used(api, tmp_path):
    server, ca = api
    server.tokens = {"t1"}
    doc = yaml.safe_load(Path(_kubeconfig(tmp_path / "kc", server.url, ca,
                                          {"token": "t1"})).read_text())
    del doc["clusters"][0]["cluster"]["tls-server-name"]  # the certificate names kube.test
    (tmp_path / "no-sni").write_text(yaml.safe_dump(doc))
    with pytest.raises(errors.Unreachable, match="certificate"):
        PortForwarder(str(tmp_path / "no-sni")).open("ns", "p", 8080)
    assert PortForwarder(str(tmp_path / "kc")).open("ns", "p", 8080).port == 8080


def test_an_absent_server_is_unreachable(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    kc = tmp_path / "kc"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": f"https://127.0.0.1:{port}",
                                               "insecure-skip-tls-verify": True}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    with pytest.raises(errors.Unreachable, match="refused"):
        PortForwarder(str(kc)).open("ns", "p", 8080)

