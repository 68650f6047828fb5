"""KubeClient over real TLS with a client certificate: kubeconfig → mTLS, pagination, watch
streaming (chunked), typed errors and `Unreachable`. A tiny HTTPS server on 127.0.0.1 stands in
for the API server; the real one is covered by the cluster tests."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleet import errors
from fleet.kube import KubeClient


def _cert(cn: str, issuer=None, *, ca=False, server=False):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = dt.datetime.now(dt.UTC)
    b = (x509.CertificateBuilder().subject_name(name)
         .issuer_name(issuer[0].subject if issuer else name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(1))
         .not_valid_after(now + dt.timedelta(1))
         .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if server:
        b = b.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    cert = b.sign(issuer[1] if issuer else key, hashes.SHA256())
    return cert, key


def _pem(cert, key) -> tuple[bytes, bytes]:
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    users: list[str] = []
    release = threading.Event()  # the last watch event is sent only after the client saw one

    def log_message(self, *a):  # quiet
        pass

    def _send(self, code: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # noqa: N802
        cert = self.connection.getpeercert()
        self.users.append(dict(x[0] for x in cert["subject"])["commonName"])
        url = urlsplit(self.path)
        q = {k: v[0] for k, v in parse_qs(url.query).items()}
        if q.get("watch") == "1":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            if q.get("fieldSelector") == "corrupt":
                line = b"\xff\xfe{not json\n"
                self.wfile.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(line), line))
                return
            for i in range(3):
                if i == 2:
                    self.release.wait(5)
                line = json.dumps({"type": "MODIFIED", "object": {"metadata": {
                    "name": f"d{i}", "resourceVersion": str(10 + i)}}}).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            return
        if url.path.endswith("/deployments") and "limit" in q:
            start = int(q.get("continue", "0"))
            items = [{"metadata": {"name": f"d{i}"}} for i in range(start, min(start + 2, 5))]
            meta = {"resourceVersion": "7"}
            if start + 2 < 5:
                meta["continue"] = str(start + 2)
            return self._send(200, {"kind": "DeploymentList", "metadata": meta, "items": items})
        self._send(404, {"kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404,
                         "message": 'deployments.apps "nope" not found'})


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    d: Path = tmp_path_factory.mktemp("tls")
    ca = _cert("test-ca", ca=True)
    srv = _cert("apiserver", ca, server=True)
    cli = _cert("alice", ca)
    ca_pem = _pem(*ca)[0]
    (d / "srv.crt").write_bytes(b"".join(_pem(*srv)[:1]))
    (d / "srv.key").write_bytes(_pem(*srv)[1])
    (d / "ca.crt").write_bytes(ca_pem)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(d / "ca.crt"))
    ctx.verify_mode = ssl.CERT_REQUIRED
    ctx.load_cert_chain(d / "srv.crt", d / "srv.key")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.socket = ctx.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    cert_pem, key_pem = _pem(*cli)
    (d / "alice.crt").write_bytes(cert_pem)
    (d / "alice.key").write_bytes(key_pem)
    kc = d / "kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "t",
        "clusters": [{"name": "c", "cluster": {
            "server": f"https://127.0.0.1:{httpd.server_address[1]}",
            "certificate-authority": "ca.crt"}}],
        "users": [{"name": "alice", "user": {"client-certificate": "alice.crt",
                                             "client-key": "alice.key"}}],
        "contexts": [{"name": "t", "context": {"cluster": "c", "user": "alice",
                                               "namespace": "ml"}}],
    }))
    yield str(kc), httpd
    httpd.shutdown()


def test_mtls_pagination_and_not_found(server):
    kc, _ = server
    client = KubeClient.from_kubeconfig(kc)
    assert client.namespace == "ml"
    doc = client.list_all("/apis/apps/v1/namespaces/ml/deployments", limit=2)
    assert [i["metadata"]["name"] for i in doc["items"]] == [f"d{i}" for i in range(5)]
    assert Handler.users[-1] == "alice"
    with pytest.raises(errors.NotFound) as info:
        client.get("/apis/apps/v1/namespaces/ml/deployments/nope")
    assert info.value.message == 'Error from server (NotFound): deployments.apps "nope" not found'


def test_watch_streams_events_as_they_arrive(server):
    kc, _ = server
    client = KubeClient.from_kubeconfig(kc)
    stream = client.watch("/apis/apps/v1/namespaces/ml/deployments", {"resourceVersion": "7"})
    Handler.release.clear()
    t0 = time.monotonic()
    names = []
    for ev in stream:
        names.append(ev["object"]["metadata"]["name"])
        Handler.release.set()  # only now does the server send the last event
    assert names == ["d0", "d1", "d2"]
    assert time.monotonic() - t0 < 4  # events arrived one by one, not after the 5 s fallback


def test_unreachable_is_typed(server, tmp_path):
    kc, _ = server
    text = Path(kc).read_text()
    port = yaml.safe_load(text)["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1]
    dead = tmp_path / "k"
    dead.write_text(text.replace(f":{port}", ":1").replace("ca.crt", str(Path(kc).parent /
                                                                           "ca.crt"))
                    .replace("alice.crt", str(Path(kc).parent / "alice.crt"))
                    .replace("alice.key", str(Path(kc).parent / "alice.key")))
    client = KubeClient.from_kubeconfig(str(dead))
    with pytest.raises(errors.Unreachable, match="The connection to the server 127.0.0.1:1 was "
                                                 "refused - did you specify the right host or "
                                                 "port?"):
        client.get("/version")


def test_torn_watch_stream_is_a_lost_connection(server):
    kc, _ = server
    stream = KubeClient.from_kubeconfig(kc).watch("/apis/apps/v1/namespaces/ml/deployments",
                                                  {"fieldSelector": "corrupt"})
    with pytest.raises(errors.Unreachable, match="watch stream corrupted"):
        list(stream)
