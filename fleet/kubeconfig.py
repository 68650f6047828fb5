"""Kubeconfig resolution like kubectl: `--kubeconfig`, else `KUBECONFIG`, else ~/.kube/config.

With several `KUBECONFIG` files, the first file to define a cluster/user/context name wins, and
`current-context` comes from the first file that sets it (client-go `clientcmd` merge rules).
Relative certificate paths resolve against the file that named them.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Credentials:
    """Everything needed to open a TLS connection to one API server as one user."""

    server: str
    context: str
    namespace: str
    user: str
    ca_pem: bytes | None = None
    insecure: bool = False
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None
    username: str | None = None
    password: str | None = None
    tls_server_name: str | None = None


def kubeconfig_paths(explicit: str | None = None) -> list[Path]:
    """The files kubectl would read, in precedence order."""
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _named(items: list[dict[str, Any]] | None, key: str, base: Path, into: dict) -> None:
    for item in items or []:
        name = item.get("name")
        if name is not None and name not in into:
            into[name] = (item.get(key) or {}, base)


def _read_bytes(data: str | None, path: str | None, base: Path) -> bytes | None:
    if data:
        return base64.b64decode(data)
    if path:
        p = Path(path).expanduser()
        if not p.is_absolute():
            p = base / p
        try:
            return p.read_bytes()
        except OSError as exc:
            raise ConfigError(f"error loading config: {exc}") from exc
    return None


def load_credentials(
    path: str | None = None, context: str | None = None, namespace: str | None = None
) -> Credentials:
    """Resolve the kubeconfig(s) to one context's credentials, or raise `ConfigError`."""
    import yaml  # local import keeps `fleet --help` fast

    clusters: dict[str, tuple[dict, Path]] = {}
    users: dict[str, tuple[dict, Path]] = {}
    contexts: dict[str, tuple[dict, Path]] = {}
    current: str | None = None
    paths = kubeconfig_paths(path)
    found = False
    for p in paths:
        try:
            text = p.read_text()
        except FileNotFoundError:
            if path:
                raise ConfigError(f"stat {p}: no such file or directory") from None
            continue
        except OSError as exc:
            raise ConfigError(f"error loading config file \"{p}\": {exc}") from exc
        found = True
        doc = yaml.safe_load(text) or {}
        if not isinstance(doc, dict):
            raise ConfigError(f"error loading config file \"{p}\": not a kubeconfig")
        base = p.parent
        _named(doc.get("clusters"), "cluster", base, clusters)
        _named(doc.get("users"), "user", base, users)
        _named(doc.get("contexts"), "context", base, contexts)
        if current is None and doc.get("current-context"):
            current = doc["current-context"]
    if not found:
        if not path and in_cluster_available():
            return in_cluster_credentials(namespace)
        raise ConfigError(
            "invalid configuration: no configuration has been provided, try setting "
            "KUBERNETES_MASTER environment variable"
        )
    ctx_name = context or current
    if not ctx_name:
        raise ConfigError("invalid configuration: no current context is set")
    if ctx_name not in contexts:
        raise ConfigError(f'context "{ctx_name}" does not exist')
    ctx, _ = contexts[ctx_name]
    cluster_name, user_name = ctx.get("cluster", ""), ctx.get("user", "")
    if cluster_name not in clusters:
        raise ConfigError(
            f'invalid configuration: context was not found for specified context: {ctx_name}'
            if not cluster_name
            else f'cluster "{cluster_name}" does not exist'
        )
    cluster, cbase = clusters[cluster_name]
    user, ubase = users.get(user_name, ({}, Path(".")))
    if user.get("exec") or user.get("auth-provider"):
        raise ConfigError(
            f'user "{user_name}": exec and auth-provider credentials are not supported by fleet; '
            "use a client certificate or token kubeconfig"
        )
    server = cluster.get("server")
    if not server:
        raise ConfigError("invalid configuration: no server found for cluster " f'"{cluster_name}"')
    token = user.get("token")
    if not token and user.get("tokenFile"):
        raw = _read_bytes(None, user["tokenFile"], ubase)
        token = raw.decode().strip() if raw else None
    return Credentials(
        server=server.rstrip("/"),
        context=ctx_name,
        namespace=namespace or ctx.get("namespace") or "default",
        user=user_name,
        ca_pem=_read_bytes(
            cluster.get("certificate-authority-data"), cluster.get("certificate-authority"), cbase
        ),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        client_cert_pem=_read_bytes(
            user.get("client-certificate-data"), user.get("client-certificate"), ubase
        ),
        client_key_pem=_read_bytes(user.get("client-key-data"), user.get("client-key"), ubase),
        token=token,
        username=user.get("username"),
        password=user.get("password"),
        tls_server_name=cluster.get("tls-server-name"),
    )


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_available() -> bool:
    """True inside a pod with a mounted service-account token (kubectl's in-cluster rule)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (
        SERVICE_ACCOUNT_DIR / "token").is_file()


def in_cluster_credentials(namespace: str | None = None) -> Credentials:
    """The pod's service account, like kubectl without a kubeconfig inside a pod.

    The `kubernetes` package's loader does the host/port/IPv6 and file checks. A bound token
    rotates (about hourly); long-lived callers build a new client, which re-reads the file.
    """
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    cfg = Configuration()
    try:
        InClusterConfigLoader(str(SERVICE_ACCOUNT_DIR / "token"),
                              str(SERVICE_ACCOUNT_DIR / "ca.crt")).load_and_set(cfg)
    except ConfigException as exc:
        raise ConfigError(f"in-cluster configuration: {exc}") from exc
    ns_file = SERVICE_ACCOUNT_DIR / "namespace"
    pod_ns = ns_file.read_text().strip() if ns_file.is_file() else "default"
    token = str((cfg.api_key or {}).get("BearerToken", ""))
    return Credentials(
        server=cfg.host.rstrip("/"), context="in-cluster", namespace=namespace or pod_ns,
        user="serviceaccount", ca_pem=Path(cfg.ssl_ca_cert).read_bytes() if cfg.ssl_ca_cert
        else None, token=token.removeprefix("bearer ").removeprefix("Bearer ").strip() or None)
