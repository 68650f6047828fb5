"""Credential providers: what `KubeClient` sends as the user, asked again for every request.

A provider's `current()` returns an `Auth` (an `Authorization` header value and/or a client
certificate); after a 401, `refresh(stale)` returns fresh credentials to retry with once, or
`None` when there is nothing new to try. Every provider is thread-safe and shared by all the
requests and watches of a client, so a long TUI session keeps working while tokens rotate.

kubectl's (client-go's) semantics, provider by provider:

- `StaticCredentials`: `token`, `username`/`password`, `client-certificate`/`client-key`.
- `TokenFileCredentials`: `tokenFile` (and the in-cluster service-account token): re-read
  when the cached copy is older than `period - leeway` (60 s - 10 s, client-go's
  `NewCachedFileTokenSource`) and after a 401; a failed re-read keeps the previous token.
- `ExecCredentials`: `exec` plugins (`client.authentication.k8s.io/v1` and `v1beta1`): the
  credential is cached until `expirationTimestamp` and the plugin run again after a 401;
  `KUBERNETES_EXEC_INFO` carries `spec.interactive` and, with `provideClusterInfo`,
  `spec.cluster`; `interactiveMode` Never/IfAvailable/Always decides whether the plugin gets
  the terminal. A missing plugin raises kubectl's message with the `installHint`; a failing one
  raises with its stderr.
- `OIDCCredentials`: the `oidc` auth-provider: the `id-token` is used until 10 s before its
  `exp`, then refreshed with the `refresh-token` at the issuer's token endpoint; the new
  tokens are written back to the kubeconfig file that defined the user, as kubectl does.

Terminal hand-off. A plugin that runs interactively (interactiveMode Always, or IfAvailable
with a terminal on stdin) reads the terminal and writes its prompts to stderr. A full-screen
program must give the terminal up meanwhile: it installs a runner with
`set_terminal_runner(runner)`; the provider then calls `runner(run_plugin)` and uses its
return value. The runner may be called from any thread (watches run in threads); a Textual
app would do `lambda fn: app.call_from_thread(_suspended, fn)` with `_suspended` running
`fn()` inside `with app.suspend():`; with `if_available=False` only plugins that need the
terminal (Always) suspend it. The runner is called with that provider's lock held: the
thread it waits for (a TUI's event loop) must not itself make requests with the same client
meanwhile. `set_stdin_unavailable(True, why)` instead makes
IfAvailable plugins run without the terminal and Always plugins fail with `why`
(client-go's `StdinUnavailable`).
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from fleet.errors import ConfigError, CredentialError

log = logging.getLogger(__name__)
T = TypeVar("T")

EXEC_INFO_ENV = "KUBERNETES_EXEC_INFO"
EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")
# client-go's installHintVerboseHelp (plugin/pkg/client/auth/exec/exec.go), verbatim.
INSTALL_HINT_HELP = """

It looks like you are trying to use a client-go credential plugin that is not installed.

To learn more about this feature, consult the documentation available at:
      https://kubernetes.io/docs/reference/access-authn-authz/authentication/#client-go-credential-plugins"""
UNREACHABLE = "Unable to connect to the server: "
STDERR_LINES = 20  # of a failing plugin's stderr, in the error message


@dataclass(frozen=True, slots=True, eq=False)
class Auth:
    """One set of credentials. Compared by identity: `refresh(stale)` names the one that got
    the 401."""

    authorization: str | None = None
    cert_pem: bytes | None = None
    key_pem: bytes | None = None

    def same_as(self, other: Auth | None) -> bool:
        return other is not None and (self.authorization, self.cert_pem, self.key_pem) == (
            other.authorization, other.cert_pem, other.key_pem)


def bearer(token: str | None, cert: bytes | None = None, key: bytes | None = None) -> Auth:
    return Auth(f"Bearer {token}" if token else None, cert, key)


class CredentialProvider:
    """Base class: `current()` for every request, `refresh(stale)` after a 401."""

    refreshable = False  # False: a 401 is final, no retry

    def current(self) -> Auth:
        raise NotImplementedError

    def refresh(self, stale: Auth) -> Auth | None:
        return None

    def reset(self) -> None:
        """Forget cached credentials and failures (e.g. a TUI's "log in again" action)."""


class StaticCredentials(CredentialProvider):
    def __init__(self, auth: Auth) -> None:
        self._auth = auth

    def current(self) -> Auth:
        return self._auth


# --- tokenFile ----------------------------------------------------------------------------------

class TokenFileCredentials(CredentialProvider):
    """client-go's `cachingTokenSource` over a `fileTokenSource`: a bound service-account token
    (rotated by the kubelet at 80 % of its lifetime) is picked up within a minute, or at once
    when the server answers 401."""

    refreshable = True
    period = 60.0
    leeway = 10.0

    def __init__(self, path: str, *, fallback_token: str | None = None,
                 cert_pem: bytes | None = None, key_pem: bytes | None = None,
                 initial_token: str | None = None) -> None:
        self.path = path
        self._fallback = fallback_token
        self._cert, self._key = cert_pem, key_pem
        self._lock = threading.Lock()
        self._auth: Auth | None = None
        self._read_at = 0.0
        if initial_token:
            self._store(initial_token)

    def _store(self, token: str) -> Auth:
        self._auth = bearer(token, self._cert, self._key)
        self._read_at = time.monotonic()
        return self._auth

    def _fresh(self) -> bool:
        return self._auth is not None and (
            time.monotonic() < self._read_at + self.period - self.leeway)

    def _read(self) -> str:
        with open(self.path, "rb") as fh:
            token = fh.read().decode(errors="replace").strip()
        if not token:
            raise ValueError(f'read empty token from file "{self.path}"')
        return token

    def _reload_locked(self) -> Auth:
        try:
            return self._store(self._read())
        except (OSError, ValueError) as exc:
            if self._auth is not None:
                log.warning("Unable to rotate token: %s", exc)
                return self._auth
            if self._fallback:
                return self._store(self._fallback)
            raise CredentialError(f"{UNREACHABLE}{_os_error(exc)}") from exc

    def current(self) -> Auth:
        auth = self._auth
        if auth is not None and self._fresh():
            return auth
        with self._lock:
            if self._fresh():
                assert self._auth is not None
                return self._auth
            return self._reload_locked()

    def refresh(self, stale: Auth) -> Auth | None:
        with self._lock:
            if self._auth is stale:
                self._reload_locked()
            fresh = self._auth
        return None if fresh is None or fresh.same_as(stale) else fresh

    def reset(self) -> None:
        with self._lock:
            self._read_at = 0.0


def _os_error(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        name = f" {exc.filename}" if exc.filename else ""
        return f"open{name}: {exc.strerror.lower()}"
    return str(exc)


# --- the terminal, for interactive exec plugins ------------------------------------------------

@dataclass
class _Terminal:
    runner: Callable[[Callable[[], Any]], Any] | None = None
    if_available: bool = True  # IfAvailable plugins get the terminal too
    stdin_unavailable: bool = False
    unavailable_message: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


_terminal = _Terminal()


def set_terminal_runner(runner: Callable[[Callable[[], T]], T] | None, *,
                        if_available: bool = True) -> Callable[[Callable[[], Any]], Any] | None:
    """Install how an interactive exec plugin gets the terminal; returns the previous runner.

    `runner(fn)` must run `fn()` (which runs the plugin on this process's stdin/stderr) while
    the terminal is free, and return its result; `None` runs plugins directly (the CLI).
    `if_available=False`: only plugins that need the terminal (interactiveMode Always) get
    it; IfAvailable ones (every v1beta1 plugin that names no mode, e.g. `aws eks get-token`)
    run without, so a TUI is not suspended at each of their refreshes.
    """
    previous, _terminal.runner = _terminal.runner, runner
    _terminal.if_available = if_available if runner is not None else True
    return previous


def set_stdin_unavailable(unavailable: bool, message: str = "") -> None:
    """client-go's `StdinUnavailable`: no plugin gets the terminal; Always plugins then fail
    with `standard input is unavailable: MESSAGE`."""
    _terminal.stdin_unavailable = unavailable
    _terminal.unavailable_message = message


def stdin_is_terminal() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False


# --- exec plugins -------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExecConfig:
    """A user's `exec` stanza, validated and resolved like clientcmd does."""

    command: str
    api_version: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    install_hint: str = ""
    provide_cluster_info: bool = False
    interactive_mode: str = "IfAvailable"
    cluster: Mapping[str, Any] | None = None  # spec.cluster, with provideClusterInfo


_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[@-_]")


def clean_install_hint(hint: str) -> str:
    """client-go strips ANSI escape codes from installHint (a kubeconfig cannot paint the
    terminal)."""
    return _ANSI.sub("", hint or "")


@dataclass
class _Cached:
    auth: Auth
    expires: float | None  # epoch seconds, None: until a 401


class ExecCredentials(CredentialProvider):
    """Runs the exec plugin; caches its credential until `expirationTimestamp`."""

    refreshable = True
    failure_hold = 2.0  # seconds a failure is returned again without re-running the plugin
    interactive_failure_hold = 30.0  # one login prompt per half minute, not per watch retry

    def __init__(self, config: ExecConfig) -> None:
        if config.api_version not in EXEC_API_VERSIONS:
            raise ConfigError(f'exec plugin: invalid apiVersion "{config.api_version}"')
        self.config = config
        self.calls = 0  # plugin runs, for tests and diagnostics
        self._lock = threading.Lock()
        self._cached: _Cached | None = None
        self._failure: tuple[CredentialError, float] | None = None

    # -- provider API --
    def current(self) -> Auth:
        cached = self._cached
        if cached is not None and not _expired(cached):
            return cached.auth
        with self._lock:
            cached = self._cached
            if cached is not None and not _expired(cached):
                return cached.auth
            return self._run_locked()

    def refresh(self, stale: Auth) -> Auth | None:
        with self._lock:
            cached = self._cached
            if cached is None or cached.auth is stale:
                self._failure = None  # a 401 is news: run the plugin even right after a failure
                fresh = self._run_locked()
            else:
                fresh = cached.auth  # another request refreshed already
        return None if fresh.same_as(stale) else fresh

    def reset(self) -> None:
        with self._lock:
            self._cached = None
            self._failure = None

    # -- running the plugin --
    def _interactive(self) -> bool:
        mode = self.config.interactive_mode
        if mode == "Never":
            return False
        if mode == "IfAvailable":
            return (_terminal.if_available and not _terminal.stdin_unavailable
                    and stdin_is_terminal())
        if mode == "Always":
            if not stdin_is_terminal():
                raise self._error("exec plugin cannot support interactive mode: "
                                  "standard input is not a terminal")
            if _terminal.stdin_unavailable:
                why = _terminal.unavailable_message
                raise self._error("exec plugin cannot support interactive mode: standard input "
                                  f"is unavailable{': ' + why if why else ''}")
            return True
        raise self._error(f'exec plugin cannot support interactive mode: unknown '
                          f'interactiveMode: "{mode}"')

    @staticmethod
    def _error(text: str) -> CredentialError:
        return CredentialError(f"{UNREACHABLE}getting credentials: {text}")

    def _run_locked(self) -> Auth:
        if self._failure is not None:
            err, until = self._failure
            if time.monotonic() < until:
                raise err
            self._failure = None
        interactive = False
        try:
            interactive = self._interactive()
            auth, expires = self._execute(interactive)
        except CredentialError as exc:
            hold = self.interactive_failure_hold if interactive else self.failure_hold
            self._failure = (exc, time.monotonic() + hold)
            raise
        self._cached = _Cached(auth, expires)
        return auth

    def _execute(self, interactive: bool) -> tuple[Auth, float | None]:
        import subprocess  # only exec plugins run one; a cert/token kubeconfig skips the import

        cfg = self.config
        spec: dict[str, Any] = {"interactive": interactive}
        if cfg.provide_cluster_info and cfg.cluster is not None:
            spec["cluster"] = dict(cfg.cluster)
        info = {"kind": "ExecCredential", "apiVersion": cfg.api_version, "spec": spec}
        env = {**os.environ, **dict(cfg.env), EXEC_INFO_ENV: json.dumps(info)}
        # Go's exec.Command looks a bare name up in fleet's own PATH, not the plugin's env.
        exe = cfg.command if os.sep in cfg.command else shutil.which(cfg.command)
        if exe is None:
            raise self._not_found()
        argv = [exe, *cfg.args]

        def run() -> subprocess.CompletedProcess[bytes]:
            # Interactive: the terminal's stdin and stderr (prompts); else no stdin at all and
            # stderr captured, so a TUI's screen is not scribbled over and a failure can say why.
            return subprocess.run(
                argv, env=env, stdout=subprocess.PIPE,
                stdin=None if interactive else subprocess.DEVNULL,
                stderr=None if interactive else subprocess.PIPE, check=False)

        self.calls += 1
        try:
            if interactive:
                with _terminal.lock:  # one prompt at a time, whichever client asks
                    runner = _terminal.runner
                    proc = runner(run) if runner is not None else run()
            else:
                proc = run()
        except FileNotFoundError:
            raise self._not_found() from None
        except OSError as exc:
            raise self._error(f"exec: fork/exec {cfg.command}: "
                              f"{(exc.strerror or str(exc)).lower()}") from exc
        if proc.returncode != 0:
            code = proc.returncode if proc.returncode > 0 else -1
            text = f"exec: executable {cfg.command} failed with exit code {code}"
            stderr = (proc.stderr or b"").decode(errors="replace").strip()
            if stderr:
                text += "\n" + "\n".join(stderr.splitlines()[-STDERR_LINES:])
            raise self._error(text)
        return self._decode(proc.stdout or b"")

    def _not_found(self) -> CredentialError:
        text = f"exec: executable {self.config.command} not found" + INSTALL_HINT_HELP
        if self.config.install_hint:
            text += "\n\n" + self.config.install_hint
        return self._error(text)

    def _decode(self, stdout: bytes) -> tuple[Auth, float | None]:
        cfg = self.config
        try:
            doc = json.loads(stdout)
            if not isinstance(doc, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            raise self._error(f"decoding stdout: {exc}") from None
        got = doc.get("apiVersion", "")
        if got != cfg.api_version:
            raise self._error(f"exec plugin is configured to use API version {cfg.api_version}, "
                              f"plugin returned version {got or '(none)'}")
        if doc.get("kind") != "ExecCredential":
            raise self._error(f'decoding stdout: no kind "{doc.get("kind", "")}" is registered '
                              f'for version "{got}"')
        status = doc.get("status")
        if not isinstance(status, dict):
            raise self._error("exec plugin didn't return a status field")
        token = status.get("token") or ""
        cert = status.get("clientCertificateData") or ""
        key = status.get("clientKeyData") or ""
        if not (token or cert or key):
            raise self._error("exec plugin didn't return a token or cert/key pair")
        if bool(cert) != bool(key):
            raise self._error("exec plugin returned only certificate or key, not both")
        expires = None
        if status.get("expirationTimestamp"):
            try:
                expires = datetime.fromisoformat(str(status["expirationTimestamp"])).timestamp()
            except ValueError as exc:
                raise self._error(f"decoding stdout: {exc}") from None
        return bearer(token or None, cert.encode() or None, key.encode() or None), expires


def _expired(cached: _Cached) -> bool:
    return cached.expires is not None and time.time() > cached.expires


# --- OIDC auth-provider -------------------------------------------------------------------------

OIDC_EXPIRY_DELTA = 10.0  # client-go's expiryDelta: refresh 10 s before `exp`


def id_token_expiry(token: str) -> float:
    """The `exp` claim of a JWT (0 without one); raises ValueError for a non-JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("ID Token is not a valid JWT")
    payload = parts[1] + "=" * (-len(parts[1]) % 4)
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (ValueError, TypeError) as exc:
        raise ValueError(f"parsing claims: {exc}") from None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) else 0.0


class OIDCCredentials(CredentialProvider):
    """kubectl's `oidc` auth-provider (client-go plugin/pkg/client/auth/oidc)."""

    refreshable = True

    def __init__(self, config: Mapping[str, str], *,
                 persist: Callable[[dict[str, str]], None] | None = None) -> None:
        self._cfg = {str(k): str(v) for k, v in config.items()}
        self._persist = persist
        self._lock = threading.Lock()
        self._auth: Auth | None = None
        self._exp = 0.0
        self.refreshes = 0

    @property
    def config(self) -> dict[str, str]:
        return dict(self._cfg)

    def _valid(self) -> bool:
        return self._auth is not None and time.time() + OIDC_EXPIRY_DELTA < self._exp

    def current(self) -> Auth:
        auth = self._auth
        if auth is not None and self._valid():
            return auth
        with self._lock:
            if self._valid():
                assert self._auth is not None
                return self._auth
            token = self._cfg.get("id-token", "")
            if token:
                try:
                    exp = id_token_expiry(token)
                except ValueError as exc:
                    raise CredentialError(f"{UNREACHABLE}{exc}") from None
                if time.time() + OIDC_EXPIRY_DELTA < exp:
                    self._auth, self._exp = bearer(token), exp
                    return self._auth
            return self._refresh_locked()

    def refresh(self, stale: Auth) -> Auth | None:
        # Not kubectl (it never refreshes on a 401), but a 401 for an id-token we believed valid
        # (clock skew, a revoked session) is best answered by one refresh when we can.
        with self._lock:
            if self._auth is stale and self._cfg.get("refresh-token"):
                self._refresh_locked()
            fresh = self._auth
        return None if fresh is None or fresh.same_as(stale) else fresh

    def reset(self) -> None:
        with self._lock:
            self._auth, self._exp = None, 0.0

    def _refresh_locked(self) -> Auth:
        refresh_token = self._cfg.get("refresh-token", "")
        if not refresh_token:
            raise CredentialError(
                f"{UNREACHABLE}No valid id-token, and cannot refresh without refresh-token")
        try:
            tokens = oidc_refresh(self._cfg, refresh_token)
        except CredentialError:
            raise
        except Exception as exc:  # noqa: BLE001 - network/TLS errors, reported like kubectl
            raise CredentialError(f"{UNREACHABLE}failed to refresh token: {exc}") from exc
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise CredentialError(
                f"{UNREACHABLE}token response did not contain an id_token, either the scope "
                "\"openid\" wasn't requested upon login, or the provider doesn't support "
                "id_tokens as part of the refresh response")
        new_cfg = dict(self._cfg)
        new_refresh = tokens.get("refresh_token")
        if isinstance(new_refresh, str) and new_refresh and new_refresh != refresh_token:
            new_cfg["refresh-token"] = new_refresh
        new_cfg["id-token"] = id_token
        self.refreshes += 1
        # Keep the new tokens even if writing them back fails: the refresh token may have
        # been rotated by the issuer, and the old one may no longer work.
        self._cfg = new_cfg
        if self._persist is not None:
            try:
                self._persist(dict(new_cfg))
            except Exception as exc:  # noqa: BLE001
                log.warning("could not persist new tokens: %s", exc)
        try:
            exp = id_token_expiry(id_token)
        except ValueError as exc:
            raise CredentialError(f"{UNREACHABLE}{exc}") from None
        self._auth, self._exp = bearer(id_token), exp
        return self._auth


def _idp_ssl_context(cfg: Mapping[str, str]) -> Any:
    import ssl

    if cfg.get("idp-certificate-authority-data"):
        pem = base64.b64decode(cfg["idp-certificate-authority-data"]).decode()
        return ssl.create_default_context(cadata=pem)
    if cfg.get("idp-certificate-authority"):
        return ssl.create_default_context(cafile=cfg["idp-certificate-authority"])
    return ssl.create_default_context()  # the system roots, as client-go does


def oidc_refresh(cfg: Mapping[str, str], refresh_token: str) -> dict[str, Any]:
    """Discovery, then the refresh-token grant (golang.org/x/oauth2's auto-detected client
    authentication: HTTP Basic first, then the client credentials in the form)."""
    from urllib.parse import quote, urlencode

    import urllib3

    http = urllib3.PoolManager(ssl_context=_idp_ssl_context(cfg), retries=False,
                               timeout=urllib3.Timeout(connect=10.0, read=30.0))
    try:
        issuer = cfg.get("idp-issuer-url", "").rstrip("/")
        well_known = f"{issuer}/.well-known/openid-configuration"
        resp = http.request("GET", well_known)
        if resp.status != 200:
            body = resp.data[:80] + (b"..." if len(resp.data) > 80 else b"")
            raise CredentialError(f"{UNREACHABLE}oidc: failed to query metadata endpoint "
                                  f"{resp.status} {resp.reason}: {body.decode(errors='replace')!r}")
        try:
            token_url = json.loads(resp.data).get("token_endpoint")
        except ValueError as exc:
            raise CredentialError(f"{UNREACHABLE}oidc: failed to decode provider discovery "
                                  f"object: {exc}") from None
        if not token_url:
            raise CredentialError(f"{UNREACHABLE}oidc: discovery object doesn't contain a "
                                  "token_endpoint")
        client_id, secret = cfg.get("client-id", ""), cfg.get("client-secret", "")
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
        basic = base64.b64encode(
            f"{quote(client_id, safe='')}:{quote(secret, safe='')}".encode()).decode()
        attempts = [({"Authorization": f"Basic {basic}"}, form),
                    ({}, {**form, "client_id": client_id, "client_secret": secret})]
        last = None
        for headers, fields in attempts:
            last = http.request("POST", token_url, body=urlencode(fields), headers={
                **headers, "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json"})
            if 200 <= last.status < 300:
                break
        assert last is not None
        if not 200 <= last.status < 300:
            raise CredentialError(f"{UNREACHABLE}failed to refresh token: "
                                  f"{_oauth2_error(last.status, last.reason, last.data)}")
        try:
            doc = json.loads(last.data)
        except ValueError:
            from urllib.parse import parse_qsl

            doc = dict(parse_qsl(last.data.decode(errors="replace")))
        return doc if isinstance(doc, dict) else {}
    finally:
        http.clear()


def _oauth2_error(status: int, reason: str | None, body: bytes) -> str:
    """golang.org/x/oauth2's RetrieveError text."""
    with contextlib.suppress(ValueError, AttributeError):
        doc = json.loads(body)
        if doc.get("error"):
            parts = [f'"{doc["error"]}"']
            if doc.get("error_description"):
                parts.append(f'"{doc["error_description"]}"')
            return "oauth2: " + " ".join(parts)
    return (f"oauth2: cannot fetch token: {status} {reason or ''}".rstrip()
            + f"\nResponse: {body.decode(errors='replace')}")


def exec_cluster_info(server: str, *, ca_pem: bytes | None, tls_server_name: str | None,
                      insecure: bool, proxy_url: str | None,
                      disable_compression: bool = False,
                      extensions: Sequence[Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """`spec.cluster` of the ExecCredential (client.authentication.k8s.io Cluster, as
    client-go's `ConfigToExecCluster` fills it, JSON `omitempty` rules included)."""
    out: dict[str, Any] = {"server": server}
    if tls_server_name:
        out["tls-server-name"] = tls_server_name
    if insecure:
        out["insecure-skip-tls-verify"] = True
    if ca_pem:
        out["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    if proxy_url:
        out["proxy-url"] = proxy_url
    if disable_compression:
        out["disable-compression"] = True
    for ext in extensions or []:
        if isinstance(ext, Mapping) and ext.get("name") == "client.authentication.k8s.io/exec":
            out["config"] = ext.get("extension")
            break
    return out
