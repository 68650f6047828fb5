"""Certificates and keys for the embedded cluster (generated once per state dir).

One CA signs the apiserver's serving certificate, kwok's kubelet-server certificate and
client certificates (the admin in `system:masters`, and any test user). The
service-account tokens are signed with a separate RSA key. A separate front-proxy CA signs
the client certificate the apiserver presents to aggregated API servers (metrics-server),
as kubeadm does: aggregated servers trust the request headers only from that CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)


@dataclass(frozen=True)
class Pki:
    dir: Path

    @property
    def ca_cert(self) -> Path:
        return self.dir / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.dir / "ca.key"

    def cert(self, name: str) -> Path:
        return self.dir / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.dir / f"{name}.key"

    @property
    def front_proxy_ca(self) -> Path:
        return self.dir / "front-proxy-ca.crt"

    @property
    def front_proxy_ca_key(self) -> Path:
        return self.dir / "front-proxy-ca.key"

    @property
    def sa_key(self) -> Path:
        return self.dir / "sa.key"

    @property
    def sa_pub(self) -> Path:
        return self.dir / "sa.pub"


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _load_ca(pki: Pki, front_proxy: bool = False
             ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert_path, key_path = ((pki.front_proxy_ca, pki.front_proxy_ca_key) if front_proxy
                           else (pki.ca_cert, pki.ca_key))
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return cert, key


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)


def create_ca(pki: Pki, front_proxy: bool = False) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cn = "modelfleet-front-proxy-ca" if front_proxy else "modelfleet-local-ca"
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY * 10)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    _write_key(pki.front_proxy_ca_key if front_proxy else pki.ca_key, key)
    (pki.front_proxy_ca if front_proxy else pki.ca_cert).write_bytes(
        cert.public_bytes(serialization.Encoding.PEM))


def issue(
    pki: Pki,
    name: str,
    common_name: str,
    *,
    organizations: tuple[str, ...] = (),
    server: bool = False,
    client: bool = False,
    front_proxy: bool = False,
    dns_names: tuple[str, ...] = (),
) -> tuple[Path, Path]:
    """Sign a leaf certificate with the cluster CA (or the front-proxy CA); returns (cert
    path, key path)."""
    ca_cert, ca_key = _load_ca(pki, front_proxy)
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    usages = []
    if server:
        usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    x509.DNSName("localhost"),
                    x509.DNSName("kubernetes"),
                    x509.DNSName("kubernetes.default.svc"),
                    x509.DNSName("kubernetes.default.svc.cluster.local"),
                    *(x509.DNSName(n) for n in dns_names),
                ]
            ),
            critical=False,
        )
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(pki.key(name), key)
    pki.cert(name).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return pki.cert(name), pki.key(name)


def create_service_account_keys(pki: Pki) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _write_key(pki.sa_key, key)
    pki.sa_pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def ensure(pki_dir: Path) -> Pki:
    """Create the CAs, serving, admin, kwok, metrics-server, front-proxy and service-account
    material if absent."""
    pki = Pki(pki_dir)
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki_dir.chmod(0o700)
    if not pki.ca_cert.exists():
        create_ca(pki)
    if not pki.cert("apiserver").exists():
        issue(pki, "apiserver", "kube-apiserver", server=True)
    if not pki.cert("admin").exists():
        issue(pki, "admin", "admin", organizations=("system:masters",), client=True)
    if not pki.cert("kwok").exists():
        issue(pki, "kwok", "kwok-kubelet", server=True, client=True)
    if not pki.front_proxy_ca.exists():
        create_ca(pki, front_proxy=True)
    if not pki.cert("front-proxy-client").exists():
        issue(pki, "front-proxy-client", "front-proxy-client", client=True, front_proxy=True)
    if not pki.cert("metrics-server").exists():
        # The aggregator verifies the name of the APIService's Service.
        issue(pki, "metrics-server", "metrics-server", server=True, client=True,
              dns_names=("metrics-server.kube-system.svc",))
    if not pki.sa_key.exists():
        create_service_account_keys(pki)
    return pki
