"""`fleet tui --as/--as-group/--as-uid`: the flags reach every backend the app builds (the
first one, a switched context, the `fleet` subprocesses of the sweep actions), against a
recording HTTP server; then against the real apiserver (RBAC on): impersonating a user bound
in one namespace shows exactly that namespace, and impersonation the kubeconfig's user may not
do is one clear error in the banner."""

from __future__ import annotations

import argparse
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from fleet.errors import Forbidden
from tui.backend import KubeBackend

SSR = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
DENIED = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Forbidden",
          "code": 403, "message": 'users "bob" is forbidden: User "alice" cannot impersonate '
                                  'resource "users" in API group "" at the cluster scope'}


class Recorder(ThreadingHTTPServer):
    """Answers the SelfSubjectReview (201, or `deny`'s 403) and records each request's
    impersonation headers."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self.deny = False
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Recorder

    def log_message(self, *a: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.seen.append((self.command, self.path, {
            "user": self.headers.get("Impersonate-User"),
            "groups": self.headers.get_all("Impersonate-Group") or [],
            "uid": self.headers.get("Impersonate-Uid")}))
        status, doc = (403, DENIED) if self.server.deny else (201, {"status": {}})
        body = json.dumps(doc).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.shutdown()
    server.server_close()


def _kubeconfig(path: Path, server: str) -> str:
    """Two contexts on the same server (the context switcher's case)."""
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "one",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "contexts": [{"name": n, "context": {"cluster": "c", "user": "u"}}
                     for n in ("one", "two")],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    return str(path)


def _parsed(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> argparse.Namespace:
    """`fleet ARGV` through fleet.cli.main, stopped where the TUI would start."""
    import tui.commands
    from fleet.cli import main

    got: list[argparse.Namespace] = []
    monkeypatch.setattr(tui.commands, "run", lambda args: got.append(args) or 0)
    assert main(argv) == 0
    return got[0]


def test_tui_flags_reach_every_backend_the_app_builds(tmp_path, recorder, monkeypatch):
    from tui import cli_actions
    from tui.commands import build_app

    kc = _kubeconfig(tmp_path / "kc", recorder.url)
    # bare `fleet` starts the TUI and takes the same flags
    for argv in (["tui"], []):
        args = _parsed(monkeypatch, [*argv, "--kubeconfig", kc, "-n", "ns1", "--as", "bob",
                                     "--as-group", "g1", "--as-group", "g2", "--as-uid", "7"])
        assert (args.as_user, args.as_groups, args.as_uid) == ("bob", ["g1", "g2"], "7")
    app = build_app(args)
    want = {"user": "bob", "groups": ["g1", "g2"], "uid": "7"}
    for context in (None, "two"):  # the first backend, then the context switcher's
        backend = app.backend_factory(context, ["ns1"])
        assert isinstance(backend, KubeBackend)
        backend.connect()
        assert backend.context == (context or "one")
        assert recorder.seen[-1] == ("POST", SSR, want)
        assert [v for k, v in backend.client.identity_headers(
            backend.client.credentials.current()) if k.startswith("Impersonate-")
        ] == ["bob", "7", "g1", "g2"]
        backend.stop()
    # the sweep actions' `fleet sweep …` subprocesses get the flags too
    ran: list[list[str]] = []
    monkeypatch.setattr(cli_actions, "run_cli", lambda cmd, *a, **kw: ran.append(list(cmd)))
    backend.run_cli(["sweep", "stop", "s", "-n", "ns1"])
    assert ran[0][3:] == ["sweep", "stop", "s", "-n", "ns1", "--as", "bob", "--as-group", "g1",
                          "--as-group", "g2", "--as-uid", "7", "--context", "two",
                          "--kubeconfig", kc]
    # without the flags: no identity check, no impersonation headers
    before = len(recorder.seen)
    plain = build_app(_parsed(monkeypatch, ["--kubeconfig", kc, "-n", "ns1"]))
    backend = plain.backend_factory(None, ["ns1"])
    backend.connect()
    assert backend.client.creds.impersonate is None and len(recorder.seen) == before
    assert backend.impersonation_args() == []


def test_denied_impersonation_is_one_clear_error(tmp_path, recorder, monkeypatch):
    from tui.commands import build_app

    recorder.deny = True
    kc = _kubeconfig(tmp_path / "kc", recorder.url)
    app = build_app(_parsed(monkeypatch, ["--kubeconfig", kc, "-n", "ns1", "--as", "bob"]))
    backend = app.backend_factory(None, ["ns1"])
    with pytest.raises(Forbidden) as info:
        backend.connect()
    assert info.value.message == (
        "impersonation refused (--as bob): the kubeconfig's user may not impersonate that "
        "identity; run without it, or ask for the RBAC verb impersonate. Error from server "
        "(Forbidden): " + DENIED["message"])
    assert len(recorder.seen) == 1 and backend.cache is None  # no watch was started


# --- against the real apiserver ------------------------------------------------------------

RBAC = "rbac.authorization.k8s.io/v1"


def _subject(user: str) -> dict[str, str]:
    return {"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}


@pytest.fixture
def one_namespace_user(cluster, namespace):  # noqa: ANN001, ANN201
    """A user with read in `namespace` only, CronJobs excepted (and `list namespaces`, so
    discovery may look everywhere), beside a model Deployment in a namespace it may not see."""
    from tests.fixtures.cluster import wait_for
    from tests.fleet.clusterkit import model_deployment
    from tests.fleet.test_scope_cluster import NO_CRONJOBS

    user, other = f"imp-tui-{namespace[-5:]}", f"{namespace}-other"
    read, lister = f"imp-tui-read-{namespace}", f"imp-tui-list-{namespace}"
    cluster.kubectl_run("create", "namespace", other)
    try:
        cluster.apply([
            {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": read},
             "rules": NO_CRONJOBS},
            {"apiVersion": RBAC, "kind": "ClusterRole", "metadata": {"name": lister},
             "rules": [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}]},
            {"apiVersion": RBAC, "kind": "ClusterRoleBinding", "metadata": {"name": lister},
             "roleRef": {"apiGroup": RBAC.split("/")[0], "kind": "ClusterRole",
                         "name": lister}, "subjects": [_subject(user)]},
            {"apiVersion": RBAC, "kind": "RoleBinding",
             "metadata": {"name": "imp-tui-read", "namespace": namespace},
             "roleRef": {"apiGroup": RBAC.split("/")[0], "kind": "ClusterRole", "name": read},
             "subjects": [_subject(user)]},
            model_deployment("seen", namespace, replicas=1),
            model_deployment("unseen", other, replicas=1),
        ])
        wait_for(lambda: cluster.kubectl_run("auth", "can-i", "list", "deployments", "-n",
                                             namespace, "--as", user, check=False
                                             ).stdout.strip() == "yes",
                 timeout=30, what="the RoleBinding in effect")
        yield user
    finally:
        cluster.kubectl_run("delete", "namespace", other, "--wait=false", check=False)
        cluster.kubectl_run("delete", "clusterrolebinding", lister, "--ignore-not-found",
                            check=False)
        cluster.kubectl_run("delete", "clusterrole", read, lister, "--ignore-not-found",
                            check=False)


@pytest.mark.cluster
@pytest.mark.asyncio
async def test_tui_as_a_user_of_one_namespace_sees_exactly_it(
        cluster, namespace, one_namespace_user, tmp_path, monkeypatch):
    from tests.tui.test_tui_cluster import SIZE, plain, until
    from tui.commands import build_app

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))  # no fleet config file
    monkeypatch.delenv("FLEET_CONFIG", raising=False)
    user = one_namespace_user
    app = build_app(_parsed(monkeypatch, ["--kubeconfig", cluster.kubeconfig, "--as", user]))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.connection is not None
                    and app.connection.value == "synced", what="synced")
        assert app.backend is not None and app.backend.namespaces == [namespace]
        assert {k for k in app.deployments.records} == {(namespace, "seen")}
        bar = plain(app.main.query_one("#context-bar").content)
        assert f"namespace: {namespace} (RBAC)" in bar, bar
        # the watches go out as the user: CronJobs, which the admin may list, are hidden
        perm = app.main.query_one("#perm-line")
        await until(pilot, lambda: f"cronjobs forbidden in {namespace} (RBAC)"
                    in str(perm.render()), what="the forbidden type on the perm line")
        # the context switcher keeps the identity (the same context, picked again)
        app.switch_scope(app.context_name, None)
        await until(pilot, lambda: app.backend is not None and app.connection is not None
                    and app.connection.value == "synced" and app.deployments.records,
                    what="synced again")
        assert {k for k in app.deployments.records} == {(namespace, "seen")}
        # the RBAC checks ask as the user too (read-only: no rollback, which the admin has)
        assert app.backend.can_i("rollback", namespace)[0] is False
    # without --as the same kubeconfig (cluster admin) sees the other namespace as well
    admin = build_app(_parsed(monkeypatch, ["--kubeconfig", cluster.kubeconfig]))
    async with admin.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: (f"{namespace}-other", "unseen") in admin.deployments.records,
                    what="the other namespace's deployment")
        assert admin.backend is not None and admin.backend.can_i("rollback", namespace)[0]


@pytest.mark.cluster
@pytest.mark.asyncio
async def test_tui_denied_impersonation_says_so_once(cluster, namespace, one_namespace_user,
                                                    tmp_path, monkeypatch):
    from tests.tui.test_tui_cluster import SIZE, until
    from tests.tui.waiting import settle
    from tui.commands import build_app

    # the user may read its namespace but impersonate nobody
    kc = cluster.user_kubeconfig(one_namespace_user, tmp_path / "user.kubeconfig")
    app = build_app(_parsed(monkeypatch, ["--kubeconfig", kc, "--as", "imp-tui-somebody"]))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.connection_error is not None, what="the error")
        await settle(pilot)  # every worker done: whatever else the app would say is said
        errors = [n for n in app._notifications if n.severity == "error"]
        assert [n.title for n in errors] == ["cannot connect"]
        assert errors[0].message == app.connection_error
        assert app.connection_error.startswith(
            "impersonation refused (--as imp-tui-somebody): the kubeconfig's user may not "
            "impersonate that identity; run without it, or ask for the RBAC verb impersonate. "
            "Error from server (Forbidden): ")
        # the server's words (v1.37: `cannot impersonate-on:user-info:create resource …`)
        assert f'User "{one_namespace_user}" cannot impersonate' in app.connection_error
        assert app.backend is not None and app.backend.cache is None  # nothing watched
        assert not app.deployments.records
