"""`KubeClient` and the unit tests' `FakeApi` are the `fleet.api_client` roles the ops, the cache
and scopes ask for: every member present (runtime_checkable isinstance) and every method callable
the way the Protocol declares (parameter names, kinds and optional ones, compared here). The
types are mypy's job: `fleet/api_client.py` checks `KubeClient` in `make lint`, and
`mypy tests/fleet/test_api_client.py` checks the typed assignments below for the fakes."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest

from fleet import api_client
from fleet.api_client import ApiClient, WatchEvents
from fleet.cache import Client as CacheClient
from fleet.kube import KubeClient, WatchStream
from fleet.kubeconfig import Credentials
from fleet.scope import ScopeClient
from tests.fleet.fakeapi import FakeApi, FakeWatch

P = inspect.Parameter
POSITIONAL = (P.POSITIONAL_ONLY, P.POSITIONAL_OR_KEYWORD)
ROLES: list[type] = [obj for obj in vars(api_client).values()
                     if isinstance(obj, type) and getattr(obj, "_is_protocol", False)
                     and obj.__module__ == api_client.__name__] + [CacheClient, ScopeClient]
CLIENT_ROLES = [r for r in ROLES if r is not WatchEvents]


def members(protocol: type) -> dict[str, Any]:
    """The methods and properties `protocol` declares, its base protocols' included."""
    out: dict[str, Any] = {}
    for base in reversed(protocol.__mro__):
        if not getattr(base, "_is_protocol", False) or base.__module__ == "typing":
            continue
        for name, value in vars(base).items():
            if (not name.startswith("_") or name == "__iter__") and (
                    callable(value) or isinstance(value, property)):
                out[name] = value
    return out


def call_problems(impl: Callable[..., Any], declared: Callable[..., Any]) -> list[str]:
    """Why a call written against `declared` could fail on `impl` (empty: none)."""
    want = list(inspect.signature(declared).parameters.values())[1:]  # without self
    have = list(inspect.signature(impl).parameters.values())
    if have and have[0].name == "self":
        have = have[1:]
    var_kw = any(p.kind is P.VAR_KEYWORD for p in have)
    var_pos = any(p.kind is P.VAR_POSITIONAL for p in have)
    positional = [p for p in have if p.kind in POSITIONAL]
    by_name = {p.name: p for p in have if p.kind in (P.POSITIONAL_OR_KEYWORD, P.KEYWORD_ONLY)}
    problems, used = [], set()
    for i, w in enumerate(p for p in want if p.kind in POSITIONAL):
        h = positional[i] if i < len(positional) else None
        if h is None:
            if not var_pos:
                problems.append(f"no positional parameter {i} ({w.name})")
            continue
        used.add(h.name)
        if h.name != w.name:
            problems.append(f"parameter {i} is {h.name!r}, the protocol's {w.name!r}")
        if w.default is not P.empty and h.default is P.empty:
            problems.append(f"{w.name} is optional in the protocol, required here")
    for w in (p for p in want if p.kind is P.KEYWORD_ONLY):
        h = by_name.get(w.name)
        if h is None:
            if not var_kw:
                problems.append(f"no keyword parameter {w.name}")
            continue
        used.add(h.name)
        if w.default is not P.empty and h.default is P.empty:
            problems.append(f"{w.name} is optional in the protocol, required here")
    problems += [f"{h.name} is required here, unknown to the protocol" for h in have
                 if h.name not in used and h.default is P.empty
                 and h.kind not in (P.VAR_POSITIONAL, P.VAR_KEYWORD)]
    return problems


def conformance(obj: object, protocol: type) -> list[str]:
    problems = [] if isinstance(obj, protocol) else [f"not a {protocol.__name__} (isinstance)"]
    for name, declared in members(protocol).items():
        impl = getattr(type(obj), name, None)
        if isinstance(declared, property):
            if not hasattr(obj, name):
                problems.append(f"{name}: missing")
        elif impl is None:
            problems.append(f"{name}(): missing")
        else:
            problems += [f"{name}(): {p}" for p in call_problems(impl, declared)]
    return problems


def kube_client() -> KubeClient:
    """A client that never connects: building one opens no connection."""
    return KubeClient(Credentials(server="http://127.0.0.1:1", context="ctx", namespace="ns1",
                                  user="u"))


def test_the_roles_are_found() -> None:
    names = {r.__name__ for r in ROLES}
    assert {"Reader", "Patcher", "Writer", "Pager", "Watcher", "ApiClient", "LogReader",
            "Deployer", "Client", "ScopeClient"} <= names
    assert set(members(api_client.Writer)) == {"get", "list_all", "patch", "put"}


@pytest.mark.parametrize("role", CLIENT_ROLES, ids=lambda r: r.__name__)
def test_kube_client_is_every_role(role: type) -> None:
    assert conformance(kube_client(), role) == []


@pytest.mark.parametrize("role", [r for r in CLIENT_ROLES if r in ApiClient.__mro__]
                         + [CacheClient, ScopeClient], ids=lambda r: r.__name__)
def test_fake_api_is_an_api_client(role: type) -> None:
    api: ApiClient = FakeApi()
    assert conformance(api, role) == []


def test_their_watches_are_watch_events() -> None:
    api = FakeApi()
    watch: WatchEvents = api.watch("/api/v1/pods")
    assert isinstance(watch, FakeWatch) and conformance(watch, WatchEvents) == []
    assert conformance(WatchStream.__new__(WatchStream), WatchEvents) == []


def test_the_check_finds_a_wrong_signature() -> None:
    """A fake whose methods drifted from the protocol is reported, not accepted."""

    class Drifted:
        namespace = "ns1"

        def get(self, name: str) -> dict[str, Any]:  # renamed, and no query
            return {}

        def list_all(self, path: str, query: Any, extra: int) -> dict[str, Any]:
            return {}

    problems = conformance(Drifted(), api_client.Reader)
    assert "get(): parameter 0 is 'name', the protocol's 'path'" in problems
    assert "get(): no positional parameter 1 (query)" in problems
    assert "list_all(): query is optional in the protocol, required here" in problems
    assert "list_all(): extra is required here, unknown to the protocol" in problems
    assert conformance(Drifted(), api_client.Watcher) == [
        "not a Watcher (isinstance)", "watch(): missing"]
