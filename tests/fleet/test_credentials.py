"""Credentials kubectl accepts, without a cluster: exec plugins (a real Python script run as a
subprocess), OIDC refresh against a fake issuer on 127.0.0.1, rotated token files, removed
auth providers, impersonation and proxy-url validation. The cluster tests
(test_credentials_cluster.py) run the same plugins against the real apiserver."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
import yaml

from fleet import credentials as cr
from fleet.errors import ConfigError, CredentialError
from fleet.kubeconfig import REMOVED_AUTH_PROVIDERS, load_credentials

# The exec plugin of these tests. It appends one line per run to $PLUGIN_DIR/calls (its
# KUBERNETES_EXEC_INFO, argv and one env var), then answers with the next token of
# $PLUGIN_DIR/tokens (the last one forever), or with $PLUGIN_DIR/cert.pem + key.pem,
# expiring $PLUGIN_EXPIRES seconds from now. $PLUGIN_FAIL: print it to stderr and exit 3.
PLUGIN = '''#!{python}
import datetime, json, os, sys
d = os.environ["PLUGIN_DIR"]
info = json.loads(os.environ.get("KUBERNETES_EXEC_INFO", "null"))
with open(os.path.join(d, "calls"), "a") as fh:
    fh.write(json.dumps({{"info": info, "argv": sys.argv[1:],
                         "env": os.environ.get("PLUGIN_GREETING")}}) + "\\n")
if os.environ.get("PLUGIN_FAIL"):
    print(os.environ["PLUGIN_FAIL"], file=sys.stderr)
    sys.exit(3)
n = sum(1 for _ in open(os.path.join(d, "calls")))
status = {{}}
if os.path.exists(os.path.join(d, "cert.pem")):
    status["clientCertificateData"] = open(os.path.join(d, "cert.pem")).read()
    status["clientKeyData"] = open(os.path.join(d, "key.pem")).read()
else:
    tokens = open(os.path.join(d, "tokens")).read().split()
    status["token"] = tokens[min(n, len(tokens)) - 1]
if os.environ.get("PLUGIN_EXPIRES"):
    exp = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
        seconds=float(os.environ["PLUGIN_EXPIRES"]))
    status["expirationTimestamp"] = exp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
print(json.dumps({{"apiVersion": os.environ.get("PLUGIN_API",
                                              "client.authentication.k8s.io/v1"),
                  "kind": "ExecCredential", "status": status}}))
'''


def write_plugin(d: Path, tokens: list[str] | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    script = d / "plugin.py"
    script.write_text(PLUGIN.format(python=sys.executable))
    script.chmod(0o755)
    (d / "tokens").write_text("\n".join(tokens or ["tok-1"]) + "\n")
    return script


def plugin_calls(d: Path) -> list[dict[str, Any]]:
    f = d / "calls"
    return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []


def exec_kubeconfig(path: Path, server: str, command: str, *, plugin_dir: Path,
                    api: str = "client.authentication.k8s.io/v1", mode: str | None = "Never",
                    env: dict[str, str] | None = None, ca: str | None = None,
                    extra_exec: dict[str, Any] | None = None,
                    cluster_extra: dict[str, Any] | None = None) -> str:
    ex: dict[str, Any] = {"apiVersion": api, "command": command,
                          "env": [{"name": "PLUGIN_DIR", "value": str(plugin_dir)},
                                  *({"name": k, "value": v} for k, v in (env or {}).items())]}
    if mode:
        ex["interactiveMode"] = mode
    ex.update(extra_exec or {})
    cluster: dict[str, Any] = {"server": server}
    if ca:
        cluster["certificate-authority"] = ca
    else:
        cluster["insecure-skip-tls-verify"] = True
    cluster.update(cluster_extra or {})
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": cluster}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"exec": ex}}],
    }))
    return str(path)


@pytest.fixture(autouse=True)
def _terminal_defaults(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(cr, "stdin_is_terminal", lambda: False)
    yield
    cr.set_terminal_runner(None)
    cr.set_stdin_unavailable(False)


def _provider(kc: str) -> cr.ExecCredentials:
    p = load_credentials(kc).provider
    assert isinstance(p, cr.ExecCredentials)
    return p


# --- exec plugins -------------------------------------------------------------------------------

def test_token_plugin_is_cached_until_expiry_then_run_again(tmp_path: Path) -> None:
    d = tmp_path / "p"
    script = write_plugin(d, ["tok-1", "tok-2"])
    kc = exec_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", str(script), plugin_dir=d,
                         env={"PLUGIN_EXPIRES": "1.5", "PLUGIN_GREETING": "hi"},
                         extra_exec={"args": ["--region", "eu"]})
    p = _provider(kc)
    first = p.current()
    assert first.authorization == "Bearer tok-1"
    assert p.current() is first and len(plugin_calls(d)) == 1  # cached
    time.sleep(1.7)
    assert p.current().authorization == "Bearer tok-2"
    calls = plugin_calls(d)
    assert len(calls) == 2
    assert calls[0]["argv"] == ["--region", "eu"] and calls[0]["env"] == "hi"
    assert calls[0]["info"] == {"kind": "ExecCredential",
                                "apiVersion": "client.authentication.k8s.io/v1",
                                "spec": {"interactive": False}}  # no provideClusterInfo


def test_refresh_after_401_runs_the_plugin_once_per_stale_credential(tmp_path: Path) -> None:
    d = tmp_path / "p"
    script = write_plugin(d, ["bad", "good"])
    p = _provider(exec_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", str(script),
                                  plugin_dir=d))
    stale = p.current()
    fresh = p.refresh(stale)
    assert fresh is not None and fresh.authorization == "Bearer good"
    # A second request that also got a 401 with the old token: no second run, retry with new.
    assert p.refresh(stale) is fresh and len(plugin_calls(d)) == 2
    # The plugin returns the same token again: nothing new to retry with.
    assert p.refresh(fresh) is None and len(plugin_calls(d)) == 3


def test_v1beta1_plugin_with_cluster_info_and_relative_command(tmp_path: Path) -> None:
    d = tmp_path / "p"
    write_plugin(d)
    (tmp_path / "ca.crt").write_bytes(b"CA-PEM")
    kc = exec_kubeconfig(
        tmp_path / "kc", "https://127.0.0.1:1", "./p/plugin.py", plugin_dir=d,
        api="client.authentication.k8s.io/v1beta1", mode=None, ca="ca.crt",
        env={"PLUGIN_API": "client.authentication.k8s.io/v1beta1"},
        extra_exec={"provideClusterInfo": True},
        cluster_extra={"tls-server-name": "kubernetes", "extensions": [
            {"name": "client.authentication.k8s.io/exec", "extension": {"audience": "k8s"}}]})
    p = _provider(kc)
    assert p.config.command == str(tmp_path / "p" / "plugin.py")  # against the kubeconfig
    assert p.config.interactive_mode == "IfAvailable"  # v1beta1 default
    assert p.current().authorization == "Bearer tok-1"
    spec = plugin_calls(d)[0]["info"]["spec"]
    assert spec == {"interactive": False, "cluster": {
        "server": "https://127.0.0.1:1", "tls-server-name": "kubernetes",
        "certificate-authority-data": base64.b64encode(b"CA-PEM").decode(),
        "config": {"audience": "k8s"}}}


def test_missing_plugin_prints_kubectls_message_with_the_install_hint(tmp_path: Path) -> None:
    kc = exec_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", "aws-nope", plugin_dir=tmp_path,
                         extra_exec={"installHint": "\x1b[1mbrew install awscli\x1b[0m"})
    with pytest.raises(CredentialError) as info:
        _provider(kc).current()
    assert info.value.message == (
        "Unable to connect to the server: getting credentials: exec: executable aws-nope not "
        "found\n\nIt looks like you are trying to use a client-go credential plugin that is not "
        "installed.\n\nTo learn more about this feature, consult the documentation available "
        "at:\n      https://kubernetes.io/docs/reference/access-authn-authz/authentication/"
        "#client-go-credential-plugins\n\nbrew install awscli")


def test_failing_plugin_shows_its_stderr_and_is_not_rerun_at_once(tmp_path: Path) -> None:
    d = tmp_path / "p"
    script = write_plugin(d)
    kc = exec_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", str(script), plugin_dir=d,
                         env={"PLUGIN_FAIL": "error: SSO session expired, run aws sso login"})
    p = _provider(kc)
    for _ in range(3):  # every watch of a TUI asks at once: one run, the same answer
        with pytest.raises(CredentialError) as info:
            p.current()
    assert info.value.message == (
        f"Unable to connect to the server: getting credentials: exec: executable {script} "
        "failed with exit code 3\nerror: SSO session expired, run aws sso login")
    assert len(plugin_calls(d)) == 1
    p.reset()
    with pytest.raises(CredentialError):
        p.current()
    assert len(plugin_calls(d)) == 2


@pytest.mark.parametrize(("out", "message"), [
    ("not json", "decoding stdout: "),
    ('{"apiVersion": "client.authentication.k8s.io/v1beta1", "kind": "ExecCredential"}',
     "exec plugin is configured to use API version client.authentication.k8s.io/v1, plugin "
     "returned version client.authentication.k8s.io/v1beta1"),
    ('{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential"}',
     "exec plugin didn't return a status field"),
    ('{"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", '
     '"status": {"clientCertificateData": "x"}}',
     "exec plugin returned only certificate or key, not both"),
])
def test_malformed_plugin_output(tmp_path: Path, out: str, message: str) -> None:
    script = tmp_path / "plugin.sh"
    script.write_text(f"#!/bin/sh\ncat <<'EOF'\n{out}\nEOF\n")
    script.chmod(0o755)
    kc = exec_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", str(script), plugin_dir=tmp_path)
    with pytest.raises(CredentialError, match="getting credentials: " + message[:40]):
        _provider(kc).current()


def test_interactive_modes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    d = tmp_path / "p"
    script = write_plugin(d)
    always = _provider(exec_kubeconfig(tmp_path / "a", "https://127.0.0.1:1", str(script),
                                       plugin_dir=d, mode="Always"))
    with pytest.raises(CredentialError) as info:
        always.current()
    assert info.value.message == ("Unable to connect to the server: getting credentials: exec "
                                  "plugin cannot support interactive mode: standard input is "
                                  "not a terminal")
    assert plugin_calls(d) == []  # never started

    # With a terminal, the plugin runs inside the runner a TUI installs (to suspend itself).
    monkeypatch.setattr(cr, "stdin_is_terminal", lambda: True)
    ran: list[str] = []

    def runner(fn):
        ran.append(threading.current_thread().name)
        return fn()

    cr.set_terminal_runner(runner)
    always.reset()
    assert always.current().authorization == "Bearer tok-1"
    assert len(ran) == 1 and plugin_calls(d)[-1]["info"]["spec"]["interactive"] is True

    never = _provider(exec_kubeconfig(tmp_path / "n", "https://127.0.0.1:1", str(script),
                                      plugin_dir=d, mode="Never"))
    never.current()
    assert len(ran) == 1 and plugin_calls(d)[-1]["info"]["spec"]["interactive"] is False

    # A TUI that suspends only for plugins that need the terminal.
    if_available = _provider(exec_kubeconfig(tmp_path / "i", "https://127.0.0.1:1", str(script),
                                             plugin_dir=d, mode="IfAvailable"))
    if_available.current()
    assert len(ran) == 2 and plugin_calls(d)[-1]["info"]["spec"]["interactive"] is True
    cr.set_terminal_runner(runner, if_available=False)
    if_available.reset()
    if_available.current()
    assert len(ran) == 2 and plugin_calls(d)[-1]["info"]["spec"]["interactive"] is False
    always.reset()
    always.current()
    assert len(ran) == 3
    cr.set_terminal_runner(runner)

    # A TUI may instead declare stdin unavailable: IfAvailable runs without the terminal,
    # Always fails with the reason.
    cr.set_stdin_unavailable(True, "fleet's TUI owns the terminal")
    if_available.reset()
    if_available.current()
    assert len(ran) == 3 and plugin_calls(d)[-1]["info"]["spec"]["interactive"] is False
    always.reset()
    with pytest.raises(CredentialError, match="standard input is unavailable: fleet's TUI owns"):
        always.current()


@pytest.mark.parametrize(("exec_", "message"), [
    ({"apiVersion": "client.authentication.k8s.io/v1", "command": "x"},
     "interactiveMode must be specified for u to use exec authentication plugin"),
    ({"apiVersion": "client.authentication.k8s.io/v1alpha1", "command": "x"},
     'exec plugin: invalid apiVersion "client.authentication.k8s.io/v1alpha1"'),
    ({"apiVersion": "client.authentication.k8s.io/v1", "command": "x", "interactiveMode": "No"},
     'invalid interactiveMode for u: "No"'),
    ({"command": "x", "interactiveMode": "Never"},
     "apiVersion must be specified for u to use exec authentication plugin"),
])
def test_exec_config_validation_like_kubectl(tmp_path: Path, exec_: dict, message: str) -> None:
    kc = tmp_path / "kc"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"exec": exec_}}]}))
    with pytest.raises(ConfigError) as info:
        load_credentials(str(kc))
    assert info.value.message == message


def test_static_credentials_win_over_exec(tmp_path: Path) -> None:
    kc = exec_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", "never-run", plugin_dir=tmp_path)
    doc = yaml.safe_load(Path(kc).read_text())
    doc["users"][0]["user"]["token"] = "static"
    Path(kc).write_text(yaml.safe_dump(doc))
    creds = load_credentials(kc)
    assert creds.auth_kind == "static"
    assert creds.provider.current().authorization == "Bearer static"


# --- auth providers -----------------------------------------------------------------------------

def _user_kubeconfig(path: Path, user: dict[str, Any], cluster: dict | None = None) -> str:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": cluster or {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": user}]}))
    return str(path)


@pytest.mark.parametrize("name", ["gcp", "azure"])
def test_removed_auth_providers_get_kubectls_message(tmp_path: Path, name: str) -> None:
    kc = _user_kubeconfig(tmp_path / "kc", {"auth-provider": {"name": name}})
    with pytest.raises(ConfigError) as info:
        load_credentials(kc)
    assert info.value.message == REMOVED_AUTH_PROVIDERS[name]
    assert info.value.message.startswith(f"The {name} auth plugin has been removed.\nPlease use")


def test_unknown_auth_provider_and_incomplete_oidc(tmp_path: Path) -> None:
    kc = _user_kubeconfig(tmp_path / "kc", {"auth-provider": {"name": "keystone"}})
    with pytest.raises(ConfigError, match='^no Auth Provider found for name "keystone"$'):
        load_credentials(kc)
    kc = _user_kubeconfig(tmp_path / "kc", {"auth-provider": {
        "name": "oidc", "config": {"idp-issuer-url": "https://127.0.0.1:1"}}})
    with pytest.raises(ConfigError, match="^Must provide client-id$"):
        load_credentials(kc)


def jwt(claims: dict[str, Any]) -> str:
    def b64(d: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(d).encode()).decode().rstrip("=")
    return f"{b64({'alg': 'none'})}.{b64(claims)}.c2ln"


class FakeIssuer:
    """A tiny OIDC issuer on 127.0.0.1: discovery and the refresh-token grant."""

    def __init__(self) -> None:
        self.grants: list[dict[str, Any]] = []
        self.refresh_tokens = {"rt-1"}
        self.rotate = True
        self.issued: list[str] = []
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _json(self, code: int, doc: dict) -> None:
                body = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):  # noqa: N802
                if self.path == "/.well-known/openid-configuration":
                    return self._json(200, {"issuer": issuer.url,
                                            "token_endpoint": f"{issuer.url}/token"})
                self._json(404, {})

            def do_POST(self):  # noqa: N802
                n = int(self.headers.get("Content-Length", "0"))
                form = {k: v[0] for k, v in parse_qs(self.rfile.read(n).decode()).items()}
                issuer.grants.append({"form": form, "auth": self.headers.get("Authorization")})
                rt = form.get("refresh_token")
                if form.get("grant_type") != "refresh_token" or rt not in issuer.refresh_tokens:
                    return self._json(400, {"error": "invalid_grant",
                                            "error_description": "Token is not active"})
                token = jwt({"iss": issuer.url, "sub": "oidc-user",
                             "exp": int(time.time()) + 3600, "n": len(issuer.issued)})
                issuer.issued.append(token)
                doc: dict[str, Any] = {"access_token": "at", "token_type": "Bearer",
                                       "expires_in": 3600, "id_token": token}
                if issuer.rotate:
                    new_rt = f"rt-{len(issuer.grants) + 1}"
                    issuer.refresh_tokens = {new_rt}
                    doc["refresh_token"] = new_rt
                self._json(200, doc)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def issuer() -> Iterator[FakeIssuer]:
    i = FakeIssuer()
    yield i
    i.close()


def oidc_user(issuer_url: str, id_token: str | None, refresh_token: str | None) -> dict:
    cfg = {"idp-issuer-url": issuer_url, "client-id": "fleet", "client-secret": "s3cret"}
    if id_token:
        cfg["id-token"] = id_token
    if refresh_token:
        cfg["refresh-token"] = refresh_token
    return {"auth-provider": {"name": "oidc", "config": cfg}}


def test_oidc_refresh_writes_the_new_tokens_to_the_file_that_defined_the_user(
        tmp_path: Path, issuer: FakeIssuer, monkeypatch: pytest.MonkeyPatch) -> None:
    expired = jwt({"sub": "oidc-user", "exp": int(time.time()) - 60})
    # Two files: the user lives in the second one, the context in the first.
    first = tmp_path / "a"
    first.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:1"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    second = tmp_path / "b"
    second.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "preferences": {"colors": True},
        "users": [{"name": "other", "user": {"token": "x"}},
                  {"name": "u", "user": oidc_user(issuer.url, expired, "rt-1")}]}))
    monkeypatch.setenv("KUBECONFIG", f"{first}:{second}")
    creds = load_credentials()
    assert creds.auth_kind == "oidc"
    auth = creds.provider.current()
    assert auth.authorization == f"Bearer {issuer.issued[0]}"
    grant = issuer.grants[0]
    assert grant["form"] == {"grant_type": "refresh_token", "refresh_token": "rt-1"}
    assert grant["auth"] == "Basic " + base64.b64encode(b"fleet:s3cret").decode()
    saved = yaml.safe_load(second.read_text())
    cfg = saved["users"][1]["user"]["auth-provider"]["config"]
    assert (cfg["id-token"], cfg["refresh-token"]) == (issuer.issued[0], "rt-2")
    assert saved["users"][0] == {"name": "other", "user": {"token": "x"}}
    assert saved["preferences"] == {"colors": True}
    assert "users" not in yaml.safe_load(first.read_text())
    assert not Path(f"{second}.lock").exists()
    # The valid id-token is used until it nears expiry: no second grant.
    assert creds.provider.current() is auth and len(issuer.grants) == 1
    # A 401 anyway (a revoked session): one refresh with the rotated refresh token.
    fresh = creds.provider.refresh(auth)
    assert fresh is not None and fresh.authorization == f"Bearer {issuer.issued[1]}"
    assert issuer.grants[1]["form"]["refresh_token"] == "rt-2"
    # The next process starts from the file and needs no refresh.
    assert load_credentials().provider.current().authorization == fresh.authorization


def test_oidc_errors_like_kubectl(tmp_path: Path, issuer: FakeIssuer) -> None:
    expired = jwt({"exp": int(time.time()) - 60})
    kc = _user_kubeconfig(tmp_path / "kc", oidc_user(issuer.url, expired, None))
    with pytest.raises(CredentialError) as info:
        load_credentials(kc).provider.current()
    assert info.value.message == ("Unable to connect to the server: No valid id-token, and "
                                  "cannot refresh without refresh-token")
    kc = _user_kubeconfig(tmp_path / "kc", oidc_user(issuer.url, expired, "revoked"))
    with pytest.raises(CredentialError) as info:
        load_credentials(kc).provider.current()
    assert info.value.message == ('Unable to connect to the server: failed to refresh token: '
                                  'oauth2: "invalid_grant" "Token is not active"')
    kc = _user_kubeconfig(tmp_path / "kc", oidc_user(issuer.url, "not-a-jwt", "rt-1"))
    with pytest.raises(CredentialError, match="ID Token is not a valid JWT"):
        load_credentials(kc).provider.current()


# --- token files, impersonation, proxies ------------------------------------------------------

def test_token_file_is_reread_when_it_rotates(tmp_path: Path) -> None:
    tok = tmp_path / "token"
    tok.write_text("tok-a\n")
    kc = _user_kubeconfig(tmp_path / "kc", {"tokenFile": "token"})  # relative to the file
    creds = load_credentials(kc)
    p = creds.provider
    assert isinstance(p, cr.TokenFileCredentials) and creds.token == "tok-a"
    p.period = 0.4
    p.leeway = 0.1
    a = p.current()
    assert a.authorization == "Bearer tok-a"
    tok.write_text("tok-b\n")
    assert p.current() is a  # within the period: the cached copy
    time.sleep(0.4)
    b = p.current()
    assert b.authorization == "Bearer tok-b"
    # After a 401: re-read at once; an unchanged file means nothing new to retry with.
    tok.write_text("tok-c")
    p.period = 3600
    c = p.refresh(b)
    assert c is not None and c.authorization == "Bearer tok-c"
    assert p.refresh(c) is None
    # An empty or vanished file (mid-rotation): keep the last good token.
    tok.write_text("")
    p.reset()
    assert p.current().authorization == "Bearer tok-c"


def test_impersonation_from_kubeconfig_and_flags(tmp_path: Path) -> None:
    kc = _user_kubeconfig(tmp_path / "kc", {"token": "t", "as": "bob", "as-groups": ["g1"],
                                            "as-user-extra": {"scopes": ["a", "b"]}})
    imp = load_credentials(kc).impersonate
    assert (imp.user, imp.groups, imp.extra) == ("bob", ("g1",), (("scopes", ("a", "b")),))
    imp = load_credentials(kc, as_user="carol", as_groups=["x", "y"]).impersonate
    assert (imp.user, imp.groups) == ("carol", ("x", "y"))
    kc = _user_kubeconfig(tmp_path / "kc", {"token": "t"})
    assert load_credentials(kc).impersonate is None
    with pytest.raises(ConfigError, match="^requesting uid, groups or user-extra for u without "
                                          "impersonating a user$"):
        load_credentials(kc, as_groups=["x"])


class _WhoAmI(BaseHTTPRequestHandler):
    """Answers every GET with the impersonation headers it got."""

    def log_message(self, *a: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        body = json.dumps({"user": self.headers.get("Impersonate-User"),
                           "groups": self.headers.get_all("Impersonate-Group") or [],
                           "uid": self.headers.get("Impersonate-Uid"),
                           "auth": self.headers.get("Authorization")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def whoami_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _WhoAmI)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_as_flags_are_arguments_of_the_client_the_command_builds(tmp_path: Path,
                                                                 whoami_server: str) -> None:
    from fleet import commands
    from fleet.cli import build_parser

    kc = _user_kubeconfig(tmp_path / "kc", {"token": "t"}, {"server": whoami_server})
    args = build_parser().parse_args(["ls", "--kubeconfig", kc, "--as", "bob", "--as-group", "a",
                                      "--as-group", "b", "--as-uid", "42"])
    assert (args.as_user, args.as_groups, args.as_uid) == ("bob", ["a", "b"], "42")
    bob = commands._client(args)
    assert bob.get("/version") == {"user": "bob", "groups": ["a", "b"], "uid": "42",
                                   "auth": "Bearer t"}
    # a later command line without the flags: no impersonation, and bob's client unchanged
    plain = commands._client(build_parser().parse_args(["ls", "--kubeconfig", kc]))
    assert plain.creds.impersonate is None
    assert plain.get("/version")["user"] is None and bob.get("/version")["user"] == "bob"
    # the commands outside fleet.commands take them too
    for argv in (["logs", "m", "--as", "carol"], ["predict", "m", "--example", "--as", "carol"],
                 ["deploy", "m", "--model-uri", "hdfs:///m", "--as", "carol"],
                 ["retrain", "m", "--as", "carol"], ["sweep", "ls", "--as", "carol"]):
        parsed = build_parser().parse_args([*argv, "--kubeconfig", kc])
        assert commands._client(parsed).creds.impersonate.user == "carol", argv
    with pytest.raises(ConfigError, match="without impersonating a user"):
        commands._client(build_parser().parse_args(["ls", "--kubeconfig", kc,
                                                    "--as-group", "x"]))


def test_two_clients_with_different_impersonation_do_not_affect_each_other(
        tmp_path: Path, whoami_server: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from fleet.kube import KubeClient

    kc = _user_kubeconfig(tmp_path / "kc", {"token": "t", "as": "from-kubeconfig",
                                            "as-groups": ["kc-group"]},
                          {"server": whoami_server})
    clients = {
        "bob": KubeClient.from_kubeconfig(kc, as_user="bob", as_groups=["team-a"]),
        "carol": KubeClient.from_kubeconfig(kc, as_user="carol"),
        "kubeconfig": KubeClient.from_kubeconfig(kc),
    }
    want = {"bob": ("bob", ["team-a"]), "carol": ("carol", ["kc-group"]),
            "kubeconfig": ("from-kubeconfig", ["kc-group"])}

    def ask(name: str) -> tuple[str, tuple[str, list[str]]]:
        doc = clients[name].get("/version")
        return name, (doc["user"], doc["groups"])

    with ThreadPoolExecutor(max_workers=6) as pool:
        answers = list(pool.map(ask, [n for _ in range(20) for n in clients]))
    assert len(answers) == 60
    assert all(got == want[name] for name, got in answers), answers
    # headers of a port-forward handshake come from the same place
    assert clients["carol"].identity_headers(cr.bearer("x")) == [
        ("Authorization", "Bearer x"), ("Impersonate-User", "carol"),
        ("Impersonate-Group", "kc-group")]


@pytest.mark.parametrize(("url", "ok"), [("socks5://127.0.0.1:1080", True),
                                         ("http://127.0.0.1:3128", True),
                                         ("ftp://127.0.0.1:1", False)])
def test_proxy_url_schemes(tmp_path: Path, url: str, ok: bool) -> None:
    kc = _user_kubeconfig(tmp_path / "kc", {"token": "t"},
                          {"server": "https://127.0.0.1:1", "proxy-url": url})
    if ok:
        assert load_credentials(kc).proxy_url == url
    else:
        with pytest.raises(ConfigError) as info:
            load_credentials(kc)
        assert info.value.message == (f"invalid 'proxy-url' \"{url}\" for cluster \"c\": "
                                      "unsupported scheme \"ftp\", must be http, https, or "
                                      "socks5")


def test_insecure_with_a_ca_is_refused_like_kubectl(tmp_path: Path) -> None:
    kc = _user_kubeconfig(tmp_path / "kc", {"token": "t"}, {
        "server": "https://127.0.0.1:1", "insecure-skip-tls-verify": True,
        "certificate-authority-data": base64.b64encode(b"CA").decode()})
    with pytest.raises(ConfigError, match="^specifying a root certificates file with the "
                                          "insecure flag is not allowed$"):
        load_credentials(kc)


def test_env_proxy_never_for_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    from fleet.kube import env_proxy

    for lower in ("https_proxy", "no_proxy"):  # `make test` exports no_proxy; lower case wins
        monkeypatch.delenv(lower, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "internal.corp")
    assert env_proxy("https", "127.0.0.1") is None and env_proxy("https", "localhost") is None
    assert env_proxy("https", "api.internal.corp") is None
    assert env_proxy("https", "api.example.com") == "http://proxy.corp:3128"
