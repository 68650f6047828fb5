"""What to watch (fleet/scope.py) against a fake API: every rule of `resolve_scope`, the
per-namespace view of forbidden types, and `fleet ls` narrowed by RBAC (in-memory API)."""

from __future__ import annotations

import argparse
import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from fleet import commands, scope
from fleet.errors import Forbidden, NotFound, Unreachable
from fleet.kube import collection_path
from fleet.scope import (
    NoWatchableNamespace,
    WatchScope,
    forbidden_by_namespace,
    forbidden_lines,
    parse_namespaces,
    resolve_scope,
)
from tests.fleet.fakeapi import FakeApi
from tests.fleet.objects import deployment

ALL = None  # the cluster-wide review


class FakeClient:
    """Answers access reviews for `list deployments.apps` from `allowed` (namespaces, None for
    all of them); lists `namespaces` (None: forbidden)."""

    def __init__(self, allowed: set[str | None] = frozenset(), namespaces: list[str] | None = None,
                 *, reviews: bool = True, review_error: Exception | None = None,
                 delay: float = 0.0) -> None:
        self.allowed = set(allowed)
        self.namespaces = namespaces
        self.reviews = reviews
        self.review_error = review_error
        self.delay = delay
        self.reviewed: list[str | None] = []
        self.probed: list[str | None] = []
        self.listed = 0
        self.in_flight = self.max_in_flight = 0
        self._lock = threading.Lock()

    def post(self, path: str, body: Any, query: Any = None) -> dict[str, Any]:
        assert path == "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
        attrs = body["spec"]["resourceAttributes"]
        assert (attrs["verb"], attrs["group"], attrs["resource"]) == ("list", "apps",
                                                                      "deployments")
        if self.review_error is not None:
            raise self.review_error
        if not self.reviews:
            raise Forbidden('Error from server (Forbidden): selfsubjectaccessreviews is '
                            'forbidden', status=403)
        ns = attrs["namespace"] or None
        with self._lock:
            self.reviewed.append(ns)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        time.sleep(self.delay)
        with self._lock:
            self.in_flight -= 1
        return {"status": {"allowed": ns in self.allowed}}

    def get(self, path: str, query: Any = None) -> dict[str, Any]:  # the LIST probe
        assert query["limit"] == 1
        parts = path.split("/")
        ns = parts[parts.index("namespaces") + 1] if "namespaces" in parts else None
        self.probed.append(ns)
        if ns not in self.allowed:
            raise Forbidden("Error from server (Forbidden): deployments.apps is forbidden",
                            status=403)
        return {"items": []}

    def list_all(self, path: str, query: Any = None) -> dict[str, Any]:
        assert path == "/api/v1/namespaces"
        self.listed += 1
        if self.namespaces is None:
            raise Forbidden('Error from server (Forbidden): namespaces is forbidden: User "u" '
                            'cannot list resource "namespaces"', status=403)
        return {"items": [{"metadata": {"name": n}} for n in self.namespaces]}


def _resolve(client: FakeClient, *, requested: list[str] | None = None, all_ns: bool = True,
             context: str | None = "default", configured: list[str] | None = None
             ) -> WatchScope:
    return resolve_scope(client, requested=requested, all_namespaces=all_ns,
                         context_namespace=context, configured=configured,
                         config_file="/home/u/.config/modelfleet/config.yaml")


# --- the rules ---------------------------------------------------------------------------------

def test_named_namespaces_are_watched_as_given_without_asking():
    client = FakeClient()
    s = _resolve(client, requested=["b", "a"])
    assert s == WatchScope(["b", "a"], "", False)
    assert not s.fallback and s.label() == "b, a"
    assert client.reviewed == [] and client.listed == 0


def test_without_all_namespaces_the_contexts_namespace_as_kubectl():
    client = FakeClient()
    assert _resolve(client, all_ns=False, context="team-x").namespaces == ["team-x"]
    assert _resolve(client, all_ns=False, context=None).namespaces == ["default"]
    assert client.reviewed == []


def test_cluster_wide_rights_keep_the_cluster_wide_watch_with_one_review():
    client = FakeClient({ALL}, ["a", "b"])
    s = _resolve(client)
    assert s == WatchScope(None, "", True) and s.label() == "all" and not s.fallback
    assert client.reviewed == [ALL] and client.listed == 0


@pytest.mark.parametrize("error", [Unreachable("Unable to connect to the server: timeout"),
                                   NotFound("Error from server (NotFound): nope", status=404)])
def test_an_unanswered_review_keeps_the_cluster_wide_watch(error):
    # API away: the cache reports that itself; no review API and no LIST either: unknown
    client = FakeClient(review_error=error)
    if isinstance(error, NotFound):
        client.allowed = {ALL}  # the LIST probe answers
    assert _resolve(client) == WatchScope(None, "", True)


def test_denied_everywhere_but_discovered_by_access_review():
    client = FakeClient({"team-a", "team-b"}, ["kube-system", "team-b", "team-a", "other"])
    s = _resolve(client, context="default")
    assert s.namespaces == ["team-a", "team-b"] and not s.cluster_wide and s.fallback
    assert s.reason == ("cannot list deployments in all namespaces (RBAC); watching team-a, "
                        "team-b (discovered by access review) (no access to default (the "
                        "context's namespace))")
    assert s.label() == "team-a, team-b (RBAC)"
    assert sorted(client.reviewed, key=str) == sorted(
        [ALL, "default", "kube-system", "team-b", "team-a", "other"], key=str)


def test_without_list_namespaces_the_config_file_and_the_contexts_namespace_are_used():
    client = FakeClient({"team-c", "team-a", "team-b"})  # namespaces: forbidden
    s = _resolve(client, context="team-c", configured=["team-b", "team-a"])
    assert s.namespaces == ["team-a", "team-b", "team-c"]
    assert s.reason == ("cannot list deployments in all namespaces (RBAC); watching team-b, "
                        "team-a (config file), team-c (the context's namespace) (cannot list "
                        "namespaces to discover others)")
    assert client.listed == 1


def test_sources_are_named_once_each_first_source_wins():
    client = FakeClient({"a", "b", "c"}, ["a", "b", "c"])
    s = _resolve(client, context="b", configured=["a"])
    assert s.reason.endswith("watching a (config file), b (the context's namespace), c "
                             "(discovered by access review)")


def test_a_configured_namespace_without_access_is_said_and_left_out():
    client = FakeClient({"team-a"})
    s = _resolve(client, context="default", configured=["team-a", "team-z"])
    assert s.namespaces == ["team-a"]
    assert ("(no access to team-z (config file), default (the context's namespace); cannot "
            "list namespaces to discover others)") in s.reason


def test_nothing_to_watch_says_what_was_denied_and_what_to_do():
    client = FakeClient(set())
    with pytest.raises(NoWatchableNamespace) as info:
        _resolve(client, context="default")
    msg = info.value.message
    assert msg.startswith("cannot list deployments in all namespaces (RBAC), and no namespace "
                          "to watch instead was found (no access to default (the context's "
                          "namespace); cannot list namespaces to discover others)")
    assert "-n NAMESPACE[,NAMESPACE...]" in msg
    assert "`namespaces:` in /home/u/.config/modelfleet/config.yaml" in msg
    assert isinstance(info.value, Forbidden) and info.value.status == 403


def test_nothing_discovered_either(monkeypatch):
    client = FakeClient(set(), ["x", "y"])
    with pytest.raises(NoWatchableNamespace, match=r"found \(no namespace allows it\)"):
        _resolve(client, context=None)


def test_where_reviews_are_not_allowed_a_list_of_one_decides():
    client = FakeClient({"team-a"}, ["team-a", "team-b"], reviews=False)
    s = _resolve(client, context=None)
    assert s.namespaces == ["team-a"]
    assert sorted(client.probed, key=str) == sorted([ALL, "team-a", "team-b"], key=str)


def test_discovery_reviews_run_concurrently_in_a_bounded_pool():
    names = [f"ns-{i:02d}" for i in range(40)]
    client = FakeClient(set(names[:3]), names, delay=0.02)
    t0 = time.monotonic()
    s = _resolve(client, context=None)
    assert s.namespaces == names[:3]
    assert 2 <= client.max_in_flight <= scope.REVIEW_WORKERS
    assert time.monotonic() - t0 < 40 * 0.02  # not one after the other


def test_a_huge_cluster_is_reviewed_up_to_a_bound(monkeypatch):
    monkeypatch.setattr(scope, "MAX_REVIEWED", 3)
    client = FakeClient({"a", "e"}, ["e", "d", "c", "b", "a"])
    s = _resolve(client, context=None)
    assert s.namespaces == ["a"]
    assert "reviewed only the first 3 of 5 namespaces" in s.reason
    assert len(client.reviewed) == 1 + 3


def test_parse_namespaces_splits_commas_and_repeats():
    assert parse_namespaces(None) is None
    assert parse_namespaces([]) is None
    assert parse_namespaces([" , "]) is None
    assert parse_namespaces(["a,b", "c", "b", " d ,"]) == ["a", "b", "c", "d"]


# --- forbidden types, per namespace ------------------------------------------------------------

def _reflector(plural: str, ns: str | None, forbidden: str = "") -> SimpleNamespace:
    return SimpleNamespace(res=SimpleNamespace(plural=plural, kind=plural.title()),
                           namespace=ns, forbidden=forbidden)


def test_forbidden_types_are_told_per_namespace_once():
    denied = 'Error from server (Forbidden): cronjobs.batch is forbidden: User "u" cannot list'
    cache = SimpleNamespace(_reflectors=[
        _reflector("deployments", "a"), _reflector("cronjobs", "a"),
        _reflector("deployments", "b"), _reflector("cronjobs", "b", denied),
        _reflector("jobs", "b", denied.replace("cronjobs", "jobs")),
        _reflector("horizontalpodautoscalers", "b",
                   "Error from server (NotFound): the server could not find the resource"),
        _reflector("pods", None, denied),
    ])
    assert forbidden_by_namespace(cache) == {"b": ["cronjobs", "jobs"], None: ["pods"]}
    assert forbidden_lines(cache) == ["cronjobs, jobs forbidden in b (RBAC)"]
    assert forbidden_lines(SimpleNamespace(_reflectors=[])) == []


# --- `fleet ls` narrowed by RBAC (in-memory API) ----------------------------------------------

def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(["ls", *argv])


def _two_namespaces() -> FakeApi:
    api = FakeApi()
    for ns, name in (("team-a", "ranker"), ("team-b", "tagger"), ("secret", "hidden")):
        dep = deployment(name)
        dep["metadata"]["namespace"] = ns
        api.lists[collection_path("apps/v1", "deployments", ns)] = [dep]
    api.lists["/api/v1/namespaces"] = [{"metadata": {"name": n}}
                                       for n in ("secret", "team-a", "team-b")]
    api.denied = lambda attrs: attrs["namespace"] not in ("team-a", "team-b")  # type: ignore
    return api


def _ls(monkeypatch, capsys, api: FakeApi, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("FLEET_CONFIG", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent-fleet-test")
    monkeypatch.setattr(commands, "_client", lambda args: api)
    rc = commands.cmd_ls(_args(*argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_ls_all_namespaces_falls_back_to_the_namespaces_the_user_can_read(monkeypatch, capsys):
    rc, out, err = _ls(monkeypatch, capsys, _two_namespaces(), "-A")
    assert rc == 0
    rows = [line.split()[:2] for line in out.splitlines()]
    assert rows == [["NAMESPACE", "NAME"], ["team-a", "ranker"], ["team-b", "tagger"]]
    assert err == ("cannot list deployments in all namespaces (RBAC); watching team-a, team-b "
                   "(discovered by access review) (no access to ns1 (the context's "
                   "namespace))\n")


def test_ls_with_cluster_wide_rights_is_unchanged(monkeypatch, capsys):
    api = _two_namespaces()
    api.denied = lambda attrs: False
    dep = deployment("everything")
    api.lists[collection_path("apps/v1", "deployments")] = [dep]
    rc, out, err = _ls(monkeypatch, capsys, api, "-A")
    assert rc == 0 and err == ""
    assert [line.split()[:2] for line in out.splitlines()] == [["NAMESPACE", "NAME"],
                                                                ["ns1", "everything"]]
    assert ("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews") in api.calls
    assert not any(p == "/api/v1/namespaces" for _, p in api.calls)


def test_ls_names_several_namespaces_with_commas_or_repeats(monkeypatch, capsys):
    for argv in (("-n", "team-a,team-b"), ("-n", "team-a", "-n", "team-b")):
        api = _two_namespaces()
        rc, out, err = _ls(monkeypatch, capsys, api, *argv)
        assert rc == 0 and err == ""
        assert [line.split()[:2] for line in out.splitlines()][1:] == [["team-a", "ranker"],
                                                                       ["team-b", "tagger"]]
        assert not any(m == "POST" for m, _ in api.calls)  # named: no review


def test_ls_one_namespace_keeps_its_table_and_empty_message(monkeypatch, capsys):
    rc, out, err = _ls(monkeypatch, capsys, _two_namespaces(), "-n", "team-a")
    assert rc == 0 and err == "" and out.split()[0] == "NAME"
    rc, out, err = _ls(monkeypatch, capsys, _two_namespaces(), "-n", "empty")
    assert (rc, out, err) == (0, "", "No resources found in empty namespace.\n")


def test_ls_says_a_forbidden_type_once_for_its_namespace(monkeypatch, capsys):
    api = _two_namespaces()
    real = api.list_pages
    hidden = collection_path("batch/v1", "cronjobs", "team-b")

    def list_pages(path, query=None):
        if path == hidden:
            raise Forbidden('Error from server (Forbidden): cronjobs.batch is forbidden: User '
                            '"u" cannot list resource "cronjobs"', status=403)
        return real(path, query)

    api.list_pages = list_pages
    rc, out, err = _ls(monkeypatch, capsys, api, "-A", "-o", "json")
    assert rc == 0
    assert [d["name"] for d in json.loads(out)] == ["ranker", "tagger"]
    lines = err.splitlines()
    assert lines[0].startswith("cannot list deployments in all namespaces (RBAC); watching")
    assert lines[1:] == ["warning: cronjobs forbidden in team-b (RBAC); shown without them"]


# --- `fleet undo-wave -A` and `fleet sweep ls -A` narrowed by RBAC (in-memory API) ------------

def _wave_api() -> FakeApi:
    """team-a and team-b readable, `secret` not, each with a deployment rolled out recently."""
    import copy

    from tests.fleet.objects import history_set

    api = FakeApi()
    for ns, name in (("team-a", "ranker"), ("team-b", "tagger"), ("secret", "hidden")):
        dep, rss = history_set()
        dep["metadata"].update(name=name, namespace=ns)
        api.lists[collection_path("apps/v1", "deployments", ns)] = [dep]
        api.lists[collection_path("apps/v1", "replicasets", ns)] = copy.deepcopy(rss)
    api.lists["/api/v1/namespaces"] = [{"metadata": {"name": n}}
                                       for n in ("secret", "team-a", "team-b")]
    api.denied = lambda attrs: attrs["namespace"] not in ("team-a", "team-b")  # type: ignore
    return api


def _undo_wave(monkeypatch, capsys, api: FakeApi, *argv: str) -> tuple[int, str, str]:
    monkeypatch.setenv("FLEET_CONFIG", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent-fleet-test")
    monkeypatch.setattr(commands, "_client", lambda args: api)
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers(dest="command"))
    # no --yes and no terminal: lists the candidates, then refuses (nothing is changed)
    monkeypatch.setattr("sys.stdin", SimpleNamespace(isatty=lambda: False))
    rc = commands.cmd_undo_wave(parser.parse_args(["undo-wave", "--since", "100000h", *argv]))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_undo_wave_all_namespaces_falls_back_to_the_namespaces_the_user_can_read(monkeypatch,
                                                                                capsys):
    api = _wave_api()
    rc, out, err = _undo_wave(monkeypatch, capsys, api, "-A")
    assert rc == 1  # refused without --yes
    rows = [line.split()[:2] for line in out.splitlines()[1:]]
    assert rows[0] == ["NAMESPACE", "NAME"]
    assert sorted(rows[1:]) == [["team-a", "ranker"], ["team-b", "tagger"]]
    lines = err.splitlines()
    assert lines[0] == ("cannot list deployments in all namespaces (RBAC); watching team-a, "
                        "team-b (discovered by access review) (no access to ns1 (the context's "
                        "namespace))")
    assert err.count("cannot list deployments in all namespaces") == 1
    assert lines[1:] == ["error: refusing to roll back without confirmation: pass --yes"]
    listed = [p for m, p in api.calls if m == "LIST"]
    assert collection_path("apps/v1", "deployments") not in listed  # never cluster-wide
    assert collection_path("apps/v1", "deployments", "secret") not in listed
    assert not [p for m, p in api.calls if m == "PATCH"]


def test_undo_wave_with_cluster_wide_rights_or_one_namespace_asks_nothing_new(monkeypatch,
                                                                             capsys):
    api = _wave_api()
    api.denied = lambda attrs: False
    rc, out, err = _undo_wave(monkeypatch, capsys, api, "-A")
    assert "RBAC" not in err and "No model deployment" in err  # cluster-wide list: empty
    assert ("LIST", collection_path("apps/v1", "deployments")) in api.calls
    api = _wave_api()
    api.namespace = "team-a"
    rc, out, err = _undo_wave(monkeypatch, capsys, api)  # no -A: the context's namespace
    assert not [m for m, _ in api.calls if m == "POST"]  # no access review
    assert "RBAC" not in err


def _sweep_job(ns: str, name: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": ns,
                         "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {}, "status": {}}


def test_sweep_ls_all_namespaces_falls_back_by_the_rights_on_jobs(monkeypatch, capsys):
    from tuning import sweep_commands

    api = FakeApi()
    for ns in ("team-a", "team-b", "secret"):
        api.objects[collection_path("batch/v1", "jobs", ns)] = {
            "items": [_sweep_job(ns, f"sweep-{ns}")]}
    api.lists["/api/v1/namespaces"] = [{"metadata": {"name": n}}
                                       for n in ("secret", "team-a", "team-b")]
    asked: list[tuple[str, str, str]] = []

    def denied(attrs: dict[str, Any]) -> bool:
        asked.append((attrs["group"], attrs["resource"], attrs["namespace"]))
        return attrs["namespace"] not in ("team-a", "team-b")

    api.denied = denied
    monkeypatch.setenv("FLEET_CONFIG", "")
    monkeypatch.setenv("XDG_CONFIG_HOME", "/nonexistent-fleet-test")
    monkeypatch.setattr(sweep_commands, "_client", lambda args: api)
    parser = argparse.ArgumentParser()
    sweep_commands.register(parser.add_subparsers(dest="command"))
    rc = sweep_commands.cmd_ls(parser.parse_args(["sweep", "ls", "-A"]))
    out, err = capsys.readouterr()
    assert rc == 0
    assert [line.split()[:2] for line in out.splitlines()] == [
        ["NAMESPACE", "NAME"], ["team-a", "sweep-team-a"], ["team-b", "sweep-team-b"]]
    assert err == ("cannot list jobs in all namespaces (RBAC); watching team-a, team-b "
                   "(discovered by access review) (no access to ns1 (the context's "
                   "namespace))\n")
    assert {(g, r) for g, r, _ in asked} == {("batch", "jobs")}
    assert ("GET", collection_path("batch/v1", "jobs")) not in api.calls
    # without -A: the context's namespace, no review
    asked.clear()
    api.namespace = "team-a"
    rc = sweep_commands.cmd_ls(parser.parse_args(["sweep", "ls", "-o", "json"]))
    out, err = capsys.readouterr()
    assert rc == 0 and err == "" and asked == []
    assert [r["name"] for r in json.loads(out)] == ["sweep-team-a"]
