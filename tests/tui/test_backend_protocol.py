"""The fake the app and snapshot tests run on, and KubeBackend, are both a `tui.backend.Backend`
(the Protocol the app and its screens call; `mypy tests/tui/test_backend_protocol.py` checks
the method signatures, isinstance the members)."""

from __future__ import annotations

from tests.tui.fakes import FakeBackend, deployment
from tui.backend import Backend, KubeBackend


def test_fake_backend_is_a_backend() -> None:
    backend: Backend = FakeBackend([deployment(1)])
    assert isinstance(backend, Backend)


def test_kube_backend_is_a_backend() -> None:
    backend: Backend = KubeBackend(context="ctx", namespaces=["ns1"])
    assert isinstance(backend, Backend)
    assert backend.scope is None  # resolved on connect
