"""Credentials against the real local apiserver: exec plugins (a Python script) returning a
token or a client certificate signed by the cluster CA, expiry and 401 refreshes, missing and
failing plugins next to kubectl's own output, a rotated token file, impersonation allowed and
denied by RBAC, OIDC refresh, proxy-url (HTTP CONNECT and SOCKS5), tls-server-name.

Bearer tokens: the test cluster's apiserver sends a TokenReview for every bearer token it does
not know to a webhook on 127.0.0.1 (devcluster/cluster/components.py); this module serves that
webhook and decides which tokens are valid, and as whom. The OIDC refresh is client-side
(kubectl's `oidc` auth-provider only refreshes and sends the id-token), so the apiserver here
need not be configured for OIDC: the webhook accepts each id-token the fake issuer minted,
which proves the refreshed token is what reaches the server.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import socketserver
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from fleet import credentials as cr
from fleet.errors import CredentialError, Forbidden, Unauthorized, Unreachable
from fleet.kube import KubeClient
from tests.fixtures.cluster import TestCluster
from tests.fleet.clusterkit import fleet
from tests.fleet.connectproxy import relay
from tests.fleet.test_credentials import (
    FakeIssuer,
    exec_kubeconfig,
    jwt,
    plugin_calls,
    write_plugin,
)

pytestmark = pytest.mark.cluster

WHOAMI = "/apis/authentication.k8s.io/v1/selfsubjectreviews"


class TokenWebhook:
    """The apiserver's token authentication webhook (TokenReview v1), on 127.0.0.1."""

    def __init__(self, url: str) -> None:
        self.tokens: dict[str, dict[str, Any]] = {}
        self.seen: list[str] = []
        self.extra: Callable[[str], dict[str, Any] | None] = lambda _t: None
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                review = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                token = review["spec"]["token"]
                hook.seen.append(token)
                user = hook.tokens.get(token) or hook.extra(token)
                status: dict[str, Any] = {"authenticated": user is not None}
                if user is not None:
                    status["user"] = user
                    status["audiences"] = review["spec"].get("audiences") or []
                body = json.dumps({"apiVersion": "authentication.k8s.io/v1",
                                   "kind": "TokenReview", "status": status}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        u = urlsplit(url)
        self.httpd = ThreadingHTTPServer(("127.0.0.1", u.port or 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def allow(self, user: str, *groups: str) -> str:
        token = f"{user}-{uuid.uuid4().hex}"
        self.tokens[token] = {"username": user, "uid": user, "groups": list(groups)}
        return token

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def webhook(cluster: TestCluster) -> Iterator[TokenWebhook]:
    url = cluster.local.token_webhook_url()
    if url is None:
        pytest.skip("this cluster was started without the token webhook: restart it "
                    "(`fleet cluster down` then `up`), or unset MODELFLEET_TEST_CLUSTER_DIR")
    hook = TokenWebhook(url)
    yield hook
    hook.close()


def whoami(client: KubeClient) -> dict[str, Any]:
    review = client.post(WHOAMI, {"apiVersion": "authentication.k8s.io/v1",
                                  "kind": "SelfSubjectReview"})
    return review["status"]["userInfo"]


def kubectl_error(cluster: TestCluster, kubeconfig: str, *args: str) -> str:
    """kubectl's final error message (its stderr after the klog lines)."""
    proc = cluster.kubectl_run(*args, check=False, kubeconfig=kubeconfig)
    assert proc.returncode != 0
    err = proc.stderr
    for marker in ("Unable to connect to the server:", "Error from server", "error: "):
        at = err.rfind(marker)
        if at >= 0:
            return err[at:].rstrip("\n")
    return err.rstrip("\n")


@pytest.fixture(autouse=True)
def _no_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cr, "stdin_is_terminal", lambda: False)


def _plugin_client(tmp_path: Path, cluster: TestCluster, tokens: list[str] | None = None,
                   **kw: Any) -> tuple[KubeClient, Path, str]:
    d = tmp_path / "plugin"
    script = write_plugin(d, tokens)
    kc = exec_kubeconfig(tmp_path / "kc", cluster.server, str(script), plugin_dir=d,
                         ca=cluster.ca_cert, **kw)
    return KubeClient.from_kubeconfig(kc), d, kc


# --- exec: tokens -------------------------------------------------------------------------------

def test_exec_token_is_cached_until_expiry_then_refreshed(cluster, webhook, tmp_path):
    t1, t2 = webhook.allow("exec-alice", "team-a"), webhook.allow("exec-alice", "team-a")
    client, d, _ = _plugin_client(tmp_path, cluster, [t1, t2], env={"PLUGIN_EXPIRES": "3"})
    me = whoami(client)
    assert (me["username"], "team-a" in me["groups"]) == ("exec-alice", True)
    client.get("/version")
    whoami(client)
    assert len(plugin_calls(d)) == 1  # cached while valid
    time.sleep(3.2)
    whoami(client)
    assert len(plugin_calls(d)) == 2
    assert webhook.seen[-1] == t2 and t2 in webhook.seen and t1 in webhook.seen


def test_a_401_means_one_refresh_and_one_retry(cluster, webhook, tmp_path):
    good = webhook.allow("exec-bob")
    client, d, _ = _plugin_client(tmp_path / "a", cluster, ["revoked-1", good])
    assert whoami(client)["username"] == "exec-bob"
    assert len(plugin_calls(d)) == 2 and webhook.seen[-2:] == ["revoked-1", good]
    # A plugin whose every token is refused: exactly one refresh and one retry, then the 401.
    client, d, _ = _plugin_client(tmp_path / "b", cluster, ["no-1", "no-2", "no-3"])
    with pytest.raises(Unauthorized):
        client.get("/api/v1/namespaces/default/pods")
    assert len(plugin_calls(d)) == 2 and webhook.seen[-2:] == ["no-1", "no-2"]
    # A watch is a request like any other.
    good2 = webhook.allow("exec-bob")
    client, d, _ = _plugin_client(tmp_path / "c", cluster, ["revoked-2", good2])
    stream = client.stream(WHOAMI.replace("selfsubjectreviews", ""), read_timeout=10)
    stream.release_conn()
    assert len(plugin_calls(d)) == 2


def _issue_cert(cluster: TestCluster, cn: str, org: str) -> tuple[bytes, bytes]:
    ca_cert = x509.load_pem_x509_certificate(Path(cluster.ca_cert).read_bytes())
    ca_key = serialization.load_pem_private_key(Path(cluster.ca_key).read_bytes(), None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
                                     x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(hours=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)
            .sign(ca_key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


def test_exec_client_certificate_and_its_rotation(cluster, namespace, tmp_path):
    d = tmp_path / "plugin"
    script = write_plugin(d)
    cert, key = _issue_cert(cluster, "exec-cert-user", "exec-cert-group")
    (d / "cert.pem").write_bytes(cert)
    (d / "key.pem").write_bytes(key)
    cluster.kubectl_run("create", "rolebinding", "exec-cert-view", "--clusterrole=view",
                        "--user=exec-cert-user", "-n", namespace)
    kc = exec_kubeconfig(tmp_path / "kc", cluster.server, str(script), plugin_dir=d,
                         ca=cluster.ca_cert, env={"PLUGIN_EXPIRES": "2"})
    client = KubeClient.from_kubeconfig(kc)
    me = whoami(client)
    assert me["username"] == "exec-cert-user" and "exec-cert-group" in me["groups"]
    assert client.list_all(f"/api/v1/namespaces/{namespace}/pods")["items"] == []
    assert len(plugin_calls(d)) == 1
    # The plugin hands out a new certificate once the first expires: a new connection pool.
    cert2, key2 = _issue_cert(cluster, "exec-cert-user-2", "exec-cert-group")
    (d / "cert.pem").write_bytes(cert2)
    (d / "key.pem").write_bytes(key2)
    time.sleep(2.2)
    assert whoami(client)["username"] == "exec-cert-user-2"
    assert len(plugin_calls(d)) == 2


# --- exec: errors, next to kubectl ---------------------------------------------------------------

def test_missing_plugin_says_what_kubectl_says(cluster, tmp_path):
    kc = exec_kubeconfig(tmp_path / "kc", cluster.server, "gke-gcloud-auth-plugin-absent",
                         plugin_dir=tmp_path, ca=cluster.ca_cert,
                         extra_exec={"installHint": "Install gke-gcloud-auth-plugin with "
                                                    "gcloud components install."})
    with pytest.raises(CredentialError) as info:
        KubeClient.from_kubeconfig(kc).get("/api/v1/namespaces")
    assert info.value.message == kubectl_error(cluster, kc, "get", "namespaces")
    assert info.value.message.endswith("gcloud components install.")


def test_failing_plugin_shows_its_stderr(cluster, tmp_path):
    d = tmp_path / "plugin"
    script = write_plugin(d)
    kc = exec_kubeconfig(tmp_path / "kc", cluster.server, str(script), plugin_dir=d,
                         ca=cluster.ca_cert, env={"PLUGIN_FAIL": "token refresh failed: 403"})
    with pytest.raises(CredentialError) as info:
        KubeClient.from_kubeconfig(kc).get("/api/v1/namespaces")
    first, stderr = info.value.message.split("\n", 1)
    proc = cluster.kubectl_run("get", "namespaces", check=False, kubeconfig=kc)
    assert first == proc.stderr.rstrip("\n").rsplit("\n", 1)[-1]  # kubectl's last line
    assert stderr == "token refresh failed: 403" and stderr in proc.stderr  # kubectl passes it


# --- token files --------------------------------------------------------------------------------

def test_rotated_token_file(cluster, webhook, tmp_path):
    # The token fleet read at start has gone stale (the apiserver refuses it) and the kubelet
    # has written a new one: the 401 makes fleet re-read the file and retry once. (The
    # apiserver caches a token it accepted for 10 s, so the stale one was never accepted.)
    stale, b, c = f"stale-{uuid.uuid4().hex}", webhook.allow("file-b"), webhook.allow("file-c")
    tok = tmp_path / "token"
    tok.write_text(stale + "\n")
    kc = tmp_path / "kc"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": cluster.server,
                                               "certificate-authority": cluster.ca_cert}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"tokenFile": str(tok)}}]}))
    client = KubeClient.from_kubeconfig(str(kc))
    assert client.creds.token == stale
    tok.write_text(b)
    assert whoami(client)["username"] == "file-b"
    assert webhook.seen[-2:] == [stale, b]
    # Without a 401: re-read once the cached copy is a period old (a minute in kubectl).
    client.credentials.period, client.credentials.leeway = 1.0, 0.1
    tok.write_text(c)
    assert whoami(client)["username"] == "file-b"
    time.sleep(1.0)
    assert whoami(client)["username"] == "file-c"


# --- impersonation ------------------------------------------------------------------------------

def test_impersonation_allowed_and_denied(cluster, namespace, tmp_path):
    alice, bob = f"imp-alice-{namespace}", f"imp-bob-{namespace}"
    group = f"imp-team-{namespace}"
    cluster.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": {"name": f"impersonate-{namespace}"},
         "rules": [{"apiGroups": [""], "resources": ["users"], "verbs": ["impersonate"],
                    "resourceNames": [bob]},
                   {"apiGroups": [""], "resources": ["groups"], "verbs": ["impersonate"],
                    "resourceNames": [group]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": {"name": f"impersonate-{namespace}"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": f"impersonate-{namespace}"},
         "subjects": [{"kind": "User", "name": alice, "apiGroup": "rbac.authorization.k8s.io"}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "bob-view", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": "view"},
         "subjects": [{"kind": "User", "name": bob, "apiGroup": "rbac.authorization.k8s.io"}]},
    ])
    kc = cluster.user_kubeconfig(alice, tmp_path / "alice.kubeconfig")
    pods = f"/api/v1/namespaces/{namespace}/pods"
    with pytest.raises(Forbidden):  # alice herself may not list pods
        KubeClient.from_kubeconfig(kc).get(pods)
    as_bob = KubeClient.from_kubeconfig(kc, as_user=bob, as_groups=[group])
    assert as_bob.get(pods)["items"] == []
    me = whoami(as_bob)
    assert me["username"] == bob and group in me["groups"]
    with pytest.raises(Forbidden) as info:
        KubeClient.from_kubeconfig(kc, as_user="imp-carol").get(pods)
    assert info.value.message == kubectl_error(cluster, kc, "get", "pods", "-n", namespace,
                                               "--as", "imp-carol")
    assert f'User "{alice}" cannot impersonate resource "users"' in info.value.message
    with pytest.raises(Forbidden) as info:
        KubeClient.from_kubeconfig(kc, as_user=bob, as_groups=["system:masters"]).get(pods)
    assert info.value.message == kubectl_error(cluster, kc, "get", "pods", "-n", namespace,
                                               "--as", bob, "--as-group", "system:masters")
    # A tunnel impersonates like the client it comes from: bob (view) may not port-forward.
    from fleet.portforward import PortForwarder

    with pytest.raises(Forbidden) as info:
        PortForwarder.for_client(as_bob).open(namespace, "nosuch", 8080)
    assert f'User "{bob}" cannot' in info.value.message, info.value.message
    assert "pods/portforward" in info.value.message
    # The CLI flags.
    ok = fleet(cluster, "ls", "-n", namespace, "--as", bob, kubeconfig=kc)
    assert ok.returncode == 0, ok.stderr
    denied = fleet(cluster, "ls", "-n", namespace, "--as", "imp-carol", kubeconfig=kc)
    assert denied.returncode == 1
    assert 'cannot impersonate resource "users"' in denied.stderr


# --- OIDC ---------------------------------------------------------------------------------------

def test_oidc_refresh_reaches_the_apiserver(cluster, webhook, tmp_path):
    issuer = FakeIssuer()

    def kubeconfig(id_token: str, refresh_token: str) -> str:
        kc = tmp_path / "kc"
        kc.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "c",
            "clusters": [{"name": "c", "cluster": {"server": cluster.server,
                                                   "certificate-authority": cluster.ca_cert}}],
            "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
            "users": [{"name": "u", "user": {"auth-provider": {"name": "oidc", "config": {
                "idp-issuer-url": issuer.url, "client-id": "fleet", "client-secret": "s",
                "id-token": id_token, "refresh-token": refresh_token}}}}]}))
        return str(kc)

    def saved() -> dict[str, str]:
        doc = yaml.safe_load((tmp_path / "kc").read_text())
        return doc["users"][0]["user"]["auth-provider"]["config"]

    try:
        webhook.extra = lambda t: ({"username": "oidc-user", "groups": ["oidc"]}
                                   if t in issuer.issued else None)
        # An expired id-token: refreshed before the first request, which carries the new one.
        expired = jwt({"sub": "oidc-user", "exp": int(time.time()) - 5})
        client = KubeClient.from_kubeconfig(kubeconfig(expired, "rt-1"))
        assert whoami(client)["username"] == "oidc-user"
        assert len(issuer.grants) == 1 and webhook.seen[-1] == issuer.issued[0]
        assert expired not in webhook.seen
        assert (saved()["id-token"], saved()["refresh-token"]) == (issuer.issued[0], "rt-2")
        # An id-token that looks valid but that the server refuses (a session the issuer
        # ended): the 401 brings one refresh and one retry.
        ended = jwt({"sub": "oidc-user", "exp": int(time.time()) + 3600})
        client = KubeClient.from_kubeconfig(kubeconfig(ended, "rt-2"))
        assert whoami(client)["username"] == "oidc-user"
        assert len(issuer.grants) == 2 and webhook.seen[-2:] == [ended, issuer.issued[1]]
        assert saved()["id-token"] == issuer.issued[1]
    finally:
        webhook.extra = lambda _t: None
        issuer.close()


# --- proxy-url, tls-server-name, insecure-skip-tls-verify -------------------------------------

def _loopback(host: str) -> str:
    if host not in ("127.0.0.1", "localhost"):
        raise PermissionError(f"test proxy dials loopback only, not {host}")
    return "127.0.0.1"


class Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.targets: list[str] = []
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.kind}://127.0.0.1:{self.server_address[1]}"


class ProxyHandler(socketserver.BaseRequestHandler):
    server: Proxy

    def handle(self) -> None:
        sock: socket.socket = self.request
        if self.server.kind == "http":
            f = sock.makefile("rb")
            method, target, _ = f.readline().decode().split(" ", 2)
            while f.readline() not in (b"\r\n", b"\n", b""):
                pass
            host, port = target.rsplit(":", 1)
            assert method == "CONNECT"
            upstream = socket.create_connection((_loopback(host), int(port)))
            sock.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        else:
            assert sock.recv(2)[0] == 5
            sock.recv(16)
            sock.sendall(b"\x05\x00")
            _, cmd, _, atyp = sock.recv(4)
            if atyp == 3:
                host = sock.recv(sock.recv(1)[0]).decode()
            else:
                host = socket.inet_ntoa(sock.recv(4))
            port = int.from_bytes(sock.recv(2), "big")
            upstream = socket.create_connection((_loopback(host), port))
            sock.sendall(b"\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00")
        self.server.targets.append(f"{host}:{port}")
        relay(sock, upstream)


def _admin_kubeconfig(cluster: TestCluster, path: Path, server: str | None = None,
                      **cluster_fields: Any) -> str:
    doc = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    entry = doc["clusters"][0]["cluster"]
    if server:
        entry["server"] = server
    entry.update(cluster_fields)
    for k, v in cluster_fields.items():
        if v is None:
            del entry[k]
    path.write_text(yaml.safe_dump(doc))
    return str(path)


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_proxy_url(cluster, tmp_path, kind):
    proxy = Proxy(kind)
    try:
        port = urlsplit(cluster.server).port
        # The server named `localhost`: SOCKS5 passes the name on for the proxy to resolve.
        kc = _admin_kubeconfig(cluster, tmp_path / "kc", f"https://localhost:{port}",
                               **{"proxy-url": proxy.url})
        client = KubeClient.from_kubeconfig(kc)
        assert client.get("/version")["major"]
        assert client.list_all("/api/v1/namespaces")["items"]
        assert proxy.targets and set(proxy.targets) == {f"localhost:{port}"}
        client.close()
    finally:
        proxy.shutdown()
        proxy.server_close()
    with pytest.raises(Unreachable, match="^Unable to connect to the server: "):
        KubeClient.from_kubeconfig(kc).get("/version")  # the proxy is gone


def test_tls_server_name_and_insecure_skip_tls_verify(cluster, webhook, tmp_path):
    ok = _admin_kubeconfig(cluster, tmp_path / "ok", **{"tls-server-name": "kubernetes"})
    assert KubeClient.from_kubeconfig(ok).get("/version")["major"]
    bad = _admin_kubeconfig(cluster, tmp_path / "bad", **{"tls-server-name": "wrong.example"})
    with pytest.raises(Unreachable, match="wrong.example"):
        KubeClient.from_kubeconfig(bad).get("/version")
    token = webhook.allow("insecure-user")
    kc = tmp_path / "insecure"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": cluster.server,
                                               "insecure-skip-tls-verify": True}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": token}}]}))
    assert whoami(KubeClient.from_kubeconfig(str(kc)))["username"] == "insecure-user"


# --- port-forward: the same credentials path ------------------------------------------------

def test_port_forward_as_an_exec_plugin_user_through_a_proxy(cluster, webhook, namespace,
                                                             tmp_path):
    """The tunnel authenticates with the exec plugin's token (a 401 on the handshake runs the
    plugin again), dials through proxy-url (HTTP CONNECT and SOCKS5) with tls-server-name, and
    `probe_now` without a forwarder shares the client's credentials."""
    from fleet.ops import predict as ops
    from fleet.portforward import PodHTTP, PortForwarder
    from tests.fixtures.cluster import wait_for
    from tests.tui.test_tui_cluster import runner_dep

    user = f"pf-user-{namespace}"
    cluster.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "pf", "namespace": namespace},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                   {"apiGroups": [""], "resources": ["pods/portforward"],
                    "verbs": ["get", "create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "pf", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pf"},
         "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]},
        runner_dep("pf", namespace),
    ])

    def ready_pod() -> str | None:
        for p in cluster.get_json("pods", "-n", namespace, "-l", "app=pf")["items"]:
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for c in p["status"].get("conditions", [])):
                return p["metadata"]["name"]
        return None

    pod = wait_for(ready_pod, timeout=90, what="the runner pod Ready")
    wait_for(lambda: cluster.kubectl_run("auth", "can-i", "create", "pods", "--subresource",
                                         "portforward", "-n", namespace, "--as", user,
                                         check=False).stdout.strip() == "yes",
             timeout=30, what="the Role in effect")
    good = webhook.allow(user)
    revoked = f"revoked-{uuid.uuid4().hex}"
    for kind in ("http", "socks5"):
        proxy = Proxy(kind)
        try:
            d = tmp_path / kind
            script = write_plugin(d, [revoked, good])
            kc = exec_kubeconfig(tmp_path / f"{kind}.kc", cluster.server, str(script),
                                 plugin_dir=d, ca=cluster.ca_cert,
                                 cluster_extra={"proxy-url": proxy.url,
                                                "tls-server-name": "kubernetes"})
            fwd = PortForwarder(kc)  # its first request is the handshake: 401, then retry
            with PodHTTP(namespace, pod, 8080, forwarder=fwd, timeout=10) as conn:
                resp = conn.request("GET", "/ready")
                assert resp.status == 200 and resp.json() == {"ready": True, "path": "/ready"}
                assert conn.request("GET", "/again").json()["path"] == "/again"
            assert len(plugin_calls(d)) == 2
            assert webhook.seen.index(revoked) < len(webhook.seen) - 1
            assert proxy.targets and set(proxy.targets) == {urlsplit(cluster.server).netloc}
            client = KubeClient.from_kubeconfig(kc)
            res = ops.probe_now(client, namespace, pod)  # a tunnel with the client's token
            assert (res.ok, res.status, res.via) == (True, 200, "port-forward")
            assert len(plugin_calls(d)) == 3  # this client's own run; its tunnel shares it
        finally:
            proxy.shutdown()
            proxy.server_close()
