"""Kubeconfig resolution like kubectl: `--kubeconfig`, else `KUBECONFIG`, else ~/.kube/config.

With several `KUBECONFIG` files, the first file to define a cluster/user/context name wins, and
`current-context` comes from the first file that sets it (client-go `clientcmd` merge rules).
Relative certificate, token-file and exec-command paths resolve against the file that named
them. The user's credentials become a provider (fleet.credentials) that `KubeClient` asks on
every request: static token/basic/certificate, a re-read `tokenFile`, an `exec` plugin or the
`oidc` auth-provider; validation and precedence follow clientcmd, messages are kubectl's.
"""

from __future__ import annotations

import base64
import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fleet.errors import ConfigError

# client-go's messages for the auth-provider plugins it removed (plugin/pkg/client/auth/gcp,
# azure stubs), verbatim.
REMOVED_AUTH_PROVIDERS = {
    "gcp": 'The gcp auth plugin has been removed.\nPlease use the "gke-gcloud-auth-plugin" '
           "kubectl/client-go credential plugin instead.\nSee https://cloud.google.com/blog/"
           "products/containers-kubernetes/kubectl-auth-changes-in-gke for further details",
    "azure": "The azure auth plugin has been removed.\nPlease use the https://github.com/Azure/"
             "kubelogin kubectl/client-go credential plugin instead.\nSee https://kubernetes.io/"
             "docs/reference/access-authn-authz/authentication/#client-go-credential-plugins "
             "for further details",
}
PROXY_SCHEMES = ("http", "https", "socks5")


@dataclass(frozen=True, slots=True)
class Impersonation:
    """`--as`/`--as-group` (kubeconfig `as`, `as-groups`, `as-uid`, `as-user-extra`)."""

    user: str
    groups: tuple[str, ...] = ()
    uid: str | None = None
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class Credentials:
    """Everything needed to open a TLS connection to one API server as one user.

    `provider` (fleet.credentials) is what `KubeClient` asks for every request; the static
    fields stay for display and for clients built from hand-made `Credentials`.
    """

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
    proxy_url: str | None = None
    impersonate: Impersonation | None = None
    token_file: str | None = None
    auth_kind: str = "static"  # static | tokenFile | exec | oidc | none
    provider: Any = field(default=None, compare=False, repr=False)


def kubeconfig_paths(explicit: str | None = None) -> list[Path]:
    """The files kubectl would read, in precedence order."""
    if explicit:
        return [Path(explicit).expanduser()]
    env = os.environ.get("KUBECONFIG", "")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path.home() / ".kube" / "config"]


def _named(items: list[dict[str, Any]] | None, key: str, path: Path, into: dict) -> None:
    for item in items or []:
        name = item.get("name") if isinstance(item, dict) else None
        if name is not None and name not in into:
            into[name] = (item.get(key) or {}, path)


def _resolve(path: str, base: Path) -> Path:
    p = Path(path).expanduser()
    return p if p.is_absolute() else Path(os.path.abspath(base / p))


def _read_bytes(data: str | None, path: str | None, base: Path) -> bytes | None:
    if data:
        return base64.b64decode(data)
    if path:
        try:
            return _resolve(path, base).read_bytes()
        except OSError as exc:
            raise ConfigError(f"error loading config: {exc}") from exc
    return None


def load_credentials(
    path: str | None = None, context: str | None = None, namespace: str | None = None, *,
    as_user: str | None = None, as_groups: Sequence[str] | None = None,
    as_uid: str | None = None,
) -> Credentials:
    """Resolve the kubeconfig(s) to one context's credentials, or raise `ConfigError`.

    `as_user`/`as_groups`/`as_uid` are kubectl's `--as`, `--as-group`, `--as-uid` (they
    override the user's `as`, `as-groups`, `as-uid`).
    """
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
        try:
            doc = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"error loading config file \"{p}\": {exc}") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"error loading config file \"{p}\": not a kubeconfig")
        _named(doc.get("clusters"), "cluster", p, clusters)
        _named(doc.get("users"), "user", p, users)
        _named(doc.get("contexts"), "context", p, contexts)
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
    cluster, cfile = clusters[cluster_name]
    user, ufile = users.get(user_name, ({}, None))
    cbase = cfile.parent
    ubase = ufile.parent if ufile is not None else Path(".")
    server = cluster.get("server")
    if not server:
        raise ConfigError("invalid configuration: no server found for cluster " f'"{cluster_name}"')
    server = server.rstrip("/")

    proxy_url = cluster.get("proxy-url") or None
    if proxy_url:
        scheme = urlsplit(proxy_url).scheme
        if scheme not in PROXY_SCHEMES:
            raise ConfigError(f"invalid 'proxy-url' \"{proxy_url}\" for cluster "
                              f"\"{cluster_name}\": unsupported scheme \"{scheme}\", must be "
                              "http, https, or socks5")
    ca_pem = _read_bytes(cluster.get("certificate-authority-data"),
                         cluster.get("certificate-authority"), cbase)
    insecure = bool(cluster.get("insecure-skip-tls-verify"))
    if insecure and ca_pem:
        raise ConfigError("specifying a root certificates file with the insecure flag is not "
                          "allowed")

    _validate_user(user_name, user)
    impersonate = _impersonation(user_name, user, as_user, as_groups, as_uid)
    cert = _read_bytes(user.get("client-certificate-data"), user.get("client-certificate"), ubase)
    key = _read_bytes(user.get("client-key-data"), user.get("client-key"), ubase)
    token = user.get("token") or None
    token_file = str(_resolve(user["tokenFile"], ubase)) if user.get("tokenFile") else None
    if token_file and not token:
        raw = _read_bytes(None, token_file, ubase)
        token = raw.decode().strip() if raw else None
    username, password = user.get("username"), user.get("password")

    from fleet import credentials as cr

    static_auth = bool(token or token_file or username or password)
    # Both are built even when unused, so their configuration errors surface as in kubectl.
    oidc = (_auth_provider(user["auth-provider"], user_name, ufile)
            if user.get("auth-provider") else None)
    plugin = cr.ExecCredentials(_exec_config(
        user["exec"], ubase, cr.exec_cluster_info(
            server, ca_pem=ca_pem, tls_server_name=cluster.get("tls-server-name"),
            insecure=insecure, proxy_url=proxy_url,
            disable_compression=bool(cluster.get("disable-compression")),
            extensions=cluster.get("extensions")))) if user.get("exec") else None
    provider: cr.CredentialProvider
    if plugin is not None and not (static_auth or cert):
        # client-go's exec authenticator steps aside for any static credential.
        provider, kind = plugin, "exec"
    elif oidc is not None and not static_auth:
        # ...and a static Authorization header wins over the auth-provider's round tripper.
        provider, kind = oidc, "oidc"
    else:
        provider, kind = _static(token, token_file, username, password, cert, key)
    return Credentials(
        server=server,
        context=ctx_name,
        namespace=namespace or ctx.get("namespace") or "default",
        user=user_name,
        ca_pem=ca_pem,
        insecure=insecure,
        client_cert_pem=cert,
        client_key_pem=key,
        token=token,
        username=username,
        password=password,
        tls_server_name=cluster.get("tls-server-name"),
        proxy_url=proxy_url,
        impersonate=impersonate,
        token_file=token_file,
        auth_kind=kind,
        provider=provider,
    )


def _validate_user(name: str, user: Mapping[str, Any]) -> None:
    """clientcmd's validateAuthInfo checks that matter here (one message, or kubectl's list)."""
    errs: list[str] = []
    methods = [m for m, on in (("token", bool(user.get("token") or user.get("tokenFile"))),
                               ("basicAuth", bool(user.get("username") or user.get("password"))))
               if on]
    if len(methods) > 1:
        errs.append(f"more than one authentication method found for {name}; found "
                    f"[{' '.join(methods)}], only one is allowed")
    ex = user.get("exec")
    if ex:
        if user.get("auth-provider"):
            errs.append(f"authProvider cannot be provided in combination with an exec plugin "
                        f"for {name}")
        if not ex.get("command"):
            errs.append(f"command must be specified for {name} to use exec authentication plugin")
        if not ex.get("apiVersion"):
            errs.append(f"apiVersion must be specified for {name} to use exec authentication "
                        "plugin")
        for env in ex.get("env") or []:
            if not (env or {}).get("name"):
                errs.append(f"env variable name must be specified for {name} to use exec "
                            "authentication plugin")
        mode = _interactive_mode(ex)
        if not mode:
            errs.append(f"interactiveMode must be specified for {name} to use exec "
                        "authentication plugin")
        elif mode not in ("Never", "IfAvailable", "Always"):
            errs.append(f'invalid interactiveMode for {name}: "{mode}"')
    if len(errs) == 1:
        raise ConfigError(errs[0])
    if errs:
        raise ConfigError(f"invalid configuration: [{', '.join(errs)}]")


def _interactive_mode(ex: Mapping[str, Any]) -> str:
    # clientcmd v1 defaulting: v1beta1 plugins that name no mode are IfAvailable.
    mode = ex.get("interactiveMode") or ""
    if not mode and ex.get("apiVersion") in ("client.authentication.k8s.io/v1beta1",
                                             "client.authentication.k8s.io/v1alpha1"):
        mode = "IfAvailable"
    return mode


def _exec_config(ex: Mapping[str, Any], base: Path,
                 cluster_info: dict[str, Any]) -> Any:
    from fleet.credentials import ExecConfig, clean_install_hint

    command = str(ex["command"])
    if os.sep in command:  # clientcmd resolves commands with a separator against the file
        command = os.path.normpath(str(_resolve(command, base)))
    return ExecConfig(
        command=command,
        api_version=str(ex.get("apiVersion", "")),
        args=tuple(str(a) for a in ex.get("args") or ()),
        env=tuple((str(e["name"]), str(e.get("value", ""))) for e in ex.get("env") or ()),
        install_hint=clean_install_hint(str(ex.get("installHint") or "")),
        provide_cluster_info=bool(ex.get("provideClusterInfo")),
        interactive_mode=_interactive_mode(ex),
        cluster=cluster_info,
    )


def _static(token: str | None, token_file: str | None, username: str | None,
            password: str | None, cert: bytes | None, key: bytes | None) -> tuple[Any, str]:
    from fleet import credentials as cr

    if token_file:
        return cr.TokenFileCredentials(token_file, fallback_token=token, cert_pem=cert,
                                       key_pem=key, initial_token=token), "tokenFile"
    if token:
        return cr.StaticCredentials(cr.bearer(token, cert, key)), "static"
    if username is not None or password is not None:
        raw = f"{username or ''}:{password or ''}".encode()
        return cr.StaticCredentials(cr.Auth("Basic " + base64.b64encode(raw).decode(), cert,
                                            key)), "static"
    return cr.StaticCredentials(cr.Auth(None, cert, key)), "static" if cert else "none"


def _auth_provider(ap: Mapping[str, Any], user_name: str, user_file: Path | None) -> Any:
    from fleet.credentials import OIDCCredentials

    name = ap.get("name", "")
    if name in REMOVED_AUTH_PROVIDERS:
        raise ConfigError(REMOVED_AUTH_PROVIDERS[name])
    if name != "oidc":
        raise ConfigError(f'no Auth Provider found for name "{name}"')
    cfg = {str(k): str(v) for k, v in (ap.get("config") or {}).items()}
    for required in ("idp-issuer-url", "client-id"):
        if not cfg.get(required):
            raise ConfigError(f"Must provide {required}")
    persist = (lambda new: persist_auth_provider(user_file, user_name, new)) if user_file \
        else None
    return OIDCCredentials(cfg, persist=persist)


def _impersonation(user_name: str, user: Mapping[str, Any], as_user: str | None,
                   as_groups: Sequence[str] | None, as_uid: str | None) -> Impersonation | None:
    who = as_user or user.get("as") or ""
    groups = tuple(as_groups or user.get("as-groups") or ())
    uid = as_uid or user.get("as-uid") or None
    extra_map = user.get("as-user-extra") or {}
    extra = tuple((str(k), tuple(str(v) for v in (vs or ()))) for k, vs in extra_map.items())
    if not who:
        if groups or uid or extra:
            raise ConfigError(f"requesting uid, groups or user-extra for {user_name} without "
                              "impersonating a user")
        return None
    return Impersonation(user=str(who), groups=tuple(str(g) for g in groups), uid=uid,
                         extra=extra)


def persist_auth_provider(path: Path, user_name: str, config: Mapping[str, str]) -> None:
    """Write an auth-provider's new config (OIDC id-token/refresh-token) into the kubeconfig
    file that defines the user, like clientcmd's persister: the file is read again, only that
    user's `auth-provider.config` changes, and `FILE.lock` keeps kubectl from writing at the
    same time (kubectl takes the same lock)."""
    import yaml

    lock = Path(f"{path}.lock")
    deadline = time.monotonic() + 5.0
    while True:
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            break
        except FileExistsError:
            if time.monotonic() > deadline:
                raise ConfigError(f"open {lock}: file exists") from None
            time.sleep(0.05)
    try:
        doc = yaml.safe_load(path.read_text()) or {}
        for item in doc.get("users") or []:
            if isinstance(item, dict) and item.get("name") == user_name:
                ap = (item.get("user") or {}).get("auth-provider")
                if isinstance(ap, dict):
                    ap["config"] = dict(config)
                    # in place (not rename): keeps the mode, the owner and a symlinked file
                    with open(path, "w") as fh:
                        yaml.safe_dump(doc, fh, default_flow_style=False, sort_keys=False)
                break
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            lock.unlink()


SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def in_cluster_available() -> bool:
    """True inside a pod with a mounted service-account token (kubectl's in-cluster rule)."""
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and (
        SERVICE_ACCOUNT_DIR / "token").is_file()


def in_cluster_credentials(namespace: str | None = None) -> Credentials:
    """The pod's service account, like kubectl without a kubeconfig inside a pod.

    The `kubernetes` package's loader does the host/port/IPv6 and file checks. The bound
    token rotates (about hourly): like client-go, the file is re-read every minute and after
    a 401 (`TokenFileCredentials`).
    """
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException
    from kubernetes.config.incluster_config import InClusterConfigLoader

    from fleet.credentials import TokenFileCredentials

    cfg = Configuration()
    token_path = str(SERVICE_ACCOUNT_DIR / "token")
    try:
        InClusterConfigLoader(token_path, str(SERVICE_ACCOUNT_DIR / "ca.crt")).load_and_set(cfg)
    except ConfigException as exc:
        raise ConfigError(f"in-cluster configuration: {exc}") from exc
    ns_file = SERVICE_ACCOUNT_DIR / "namespace"
    pod_ns = ns_file.read_text().strip() if ns_file.is_file() else "default"
    raw = str((cfg.api_key or {}).get("BearerToken", ""))
    token = raw.removeprefix("bearer ").removeprefix("Bearer ").strip() or None
    return Credentials(
        server=cfg.host.rstrip("/"), context="in-cluster", namespace=namespace or pod_ns,
        user="serviceaccount", ca_pem=Path(cfg.ssl_ca_cert).read_bytes() if cfg.ssl_ca_cert
        else None, token=token, token_file=token_path, auth_kind="tokenFile",
        provider=TokenFileCredentials(token_path, fallback_token=token, initial_token=token))
