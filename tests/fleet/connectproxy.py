"""A small HTTP CONNECT proxy for tests (threads, 127.0.0.1 only): plain `http://` or
`https://` (TLS with a test CA's certificate), counting the tunnels it opened, and able to
refuse (407/403), to demand proxy credentials, and to resolve made-up host names to loopback.
Plus `TestCA`, which mints the CA and server certificates with `cryptography`."""

from __future__ import annotations

import base64
import datetime as dt
import ipaddress
import selectors
import socket
import socketserver
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class TestCA:
    """A CA (its own name, distinct from the cluster's) and the certificates it signs."""

    dir: Path
    name: str = "modelfleet-test-proxy-ca"
    _key: ec.EllipticCurvePrivateKey = field(init=False, repr=False)
    _cert: x509.Certificate = field(init=False, repr=False)

    __test__ = False  # not a test class

    def __post_init__(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.name)])
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(self._key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()),
                           critical=False)
            .sign(self._key, hashes.SHA256()))

    @property
    def pem(self) -> bytes:
        return self._cert.public_bytes(serialization.Encoding.PEM)

    def server_cert(self, name: str, *, ips: tuple[str, ...] = ("127.0.0.1",),
                    dns: tuple[str, ...] = ("localhost",)) -> tuple[str, str]:
        """(cert path, key path) of a server certificate for `ips` and `dns`."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        sans: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        sans += [x509.DNSName(d) for d in dns]
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self._cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256()))
        cert_path, key_path = self.dir / f"{name}.crt", self.dir / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        return str(cert_path), str(key_path)

    def server_context(self, name: str) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(*self.server_cert(name))
        return ctx


class ConnectProxy(socketserver.ThreadingTCPServer):
    """`kind` http or https (`tls`: the server context). `refuse`: answer every CONNECT with
    this status line instead; `credentials` ("user:password"): demand them (407 otherwise);
    `names`: made-up host names it resolves to 127.0.0.1. It dials loopback only."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, kind: str = "http", *, tls: ssl.SSLContext | None = None,
                 refuse: str | None = None, credentials: str | None = None,
                 names: tuple[str, ...] = ()) -> None:
        assert kind in ("http", "https") and (tls is not None) == (kind == "https")
        self.kind, self.tls, self.refuse, self.credentials = kind, tls, refuse, credentials
        self.names = {"127.0.0.1", "localhost", *names}
        self.tunnels: list[str] = []  # CONNECT targets it opened a tunnel to
        self.requests: list[str] = []  # every CONNECT target it was asked for
        self.auth_seen: list[str | None] = []
        self.tunnel_opened = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.kind}://127.0.0.1:{self.server_address[1]}"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(socketserver.BaseRequestHandler):
    server: ConnectProxy

    def handle(self) -> None:
        sock: socket.socket = self.request
        if self.server.tls is not None:
            try:
                sock = self.server.tls.wrap_socket(sock, server_side=True)
            except (ssl.SSLError, OSError):
                return  # a client that did not trust us: it says why
        f = sock.makefile("rb")
        method, target, _ = f.readline().decode().split(" ", 2)
        headers: dict[str, str] = {}
        while (line := f.readline()) not in (b"\r\n", b"\n", b""):
            k, _, v = line.decode().partition(":")
            headers[k.strip().lower()] = v.strip()
        assert method == "CONNECT", method
        self.server.requests.append(target)
        auth = headers.get("proxy-authorization")
        self.server.auth_seen.append(auth)
        want = self.server.credentials
        if want is not None and auth != "Basic " + base64.b64encode(want.encode()).decode():
            sock.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\n"
                         b"Proxy-Authenticate: Basic realm=\"test\"\r\nContent-Length: 0\r\n\r\n")
            return
        if self.server.refuse:
            sock.sendall(f"HTTP/1.1 {self.server.refuse}\r\nContent-Length: 0\r\n\r\n".encode())
            return
        host, port = target.rsplit(":", 1)
        if host.strip("[]") not in self.server.names:
            raise PermissionError(f"test proxy dials loopback only, not {host}")
        upstream = socket.create_connection(("127.0.0.1", int(port)))
        sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.server.tunnels.append(target)
        self.server.tunnel_opened.set()
        relay(sock, upstream)


def relay(a: socket.socket, b: socket.socket) -> None:
    """Copy bytes both ways between two sockets until either side closes (TLS-aware)."""
    sel = selectors.DefaultSelector()
    sel.register(a, selectors.EVENT_READ, b)
    sel.register(b, selectors.EVENT_READ, a)
    try:
        while True:
            for key, _ in sel.select(timeout=60):
                src: socket.socket = key.fileobj  # type: ignore[assignment]
                data = src.recv(65536)
                while data and isinstance(src, ssl.SSLSocket) and src.pending():
                    data += src.recv(src.pending())
                if not data:
                    return
                key.data.sendall(data)
    except OSError:
        return
    finally:
        sel.close()
        a.close()
        b.close()
