"""The TUI gives an interactive exec plugin the terminal (tui/terminal.py).

The backend's connect builds a real `KubeClient` from an exec-plugin kubeconfig and asks its
credential provider, in the app's connect worker as `KubeBackend` does; the plugin is the real
script of tests/fleet/test_credentials.py. Only the suspension itself is faked where noted:
the headless test driver cannot suspend (one test checks what happens then)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet import credentials as cr
from fleet.model import ConnectionState
from tests.fleet.test_credentials import exec_kubeconfig, plugin_calls, write_plugin
from tests.tui.fakes import NOW, FakeBackend, deployment
from tests.tui.waiting import until
from tui.app import FleetApp
from tui.terminal import TerminalRunner

pytestmark = pytest.mark.asyncio
SIZE = (160, 40)


class PluginBackend(FakeBackend):
    """A fake fleet whose connect needs a credential from an exec plugin."""

    def __init__(self, kubeconfig: str) -> None:
        super().__init__([deployment(1)])
        self.kubeconfig_path = kubeconfig
        self.auth: cr.Auth | None = None
        self.connect_thread = 0

    def connect(self) -> None:
        from fleet.kube import KubeClient

        self.connect_thread = threading.get_ident()
        self.auth = KubeClient.from_kubeconfig(self.kubeconfig_path).credentials.current()


@pytest.fixture(autouse=True)
def _terminal_state() -> Iterator[None]:
    yield
    cr.set_terminal_runner(None)
    cr.set_stdin_unavailable(False)


def _setup(tmp_path: Path, mode: str) -> tuple[PluginBackend, Path]:
    d = tmp_path / "plugin"
    script = write_plugin(d, ["tok-1"])
    kc = exec_kubeconfig(tmp_path / "kc", "https://127.0.0.1:1", str(script), plugin_dir=d,
                         mode=mode)
    return PluginBackend(kc), d


def _app(backend: PluginBackend) -> FleetApp:
    return FleetApp(lambda ctx, ns: backend, age_refresh_s=0, clock=lambda: NOW)


def _fake_suspend(app: FleetApp, entered: list[int]) -> None:
    @contextlib.contextmanager
    def suspend() -> Iterator[None]:
        entered.append(threading.get_ident())
        yield

    app.suspend = suspend  # type: ignore[method-assign]


def _synced(app: FleetApp) -> bool:
    return app.connection is ConnectionState.SYNCED


def _failed(app: FleetApp) -> bool:
    return app.connection_error is not None


async def test_an_always_plugin_runs_while_the_app_is_suspended(tmp_path, monkeypatch):
    monkeypatch.setattr(cr, "stdin_is_terminal", lambda: True)
    backend, d = _setup(tmp_path, "Always")
    app = _app(backend)
    entered: list[int] = []
    _fake_suspend(app, entered)
    async with app.run_test(size=SIZE) as pilot:
        ui_thread = threading.get_ident()
        assert isinstance(cr._terminal.runner, TerminalRunner)  # installed at mount
        assert cr._terminal.runner.app is app and not cr._terminal.if_available
        await until(pilot, lambda: _synced(app), what="synced", timeout=20)
        assert app.connection_error is None
        assert backend.auth is not None and backend.auth.authorization == "Bearer tok-1"
        # the plugin ran on the UI thread, inside suspend(), for the connect worker
        assert entered == [ui_thread] and backend.connect_thread != ui_thread
        assert app.terminal_runner.runs == 1
        calls = plugin_calls(d)
        assert len(calls) == 1 and calls[0]["info"]["spec"]["interactive"] is True
    assert cr._terminal.runner is None  # put back at unmount


async def test_if_available_plugins_do_not_suspend_the_app(tmp_path, monkeypatch):
    monkeypatch.setattr(cr, "stdin_is_terminal", lambda: True)
    backend, d = _setup(tmp_path, "IfAvailable")
    app = _app(backend)
    entered: list[int] = []
    _fake_suspend(app, entered)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: _synced(app), what="synced", timeout=20)
        assert app.connection_error is None and backend.auth is not None
        assert entered == [] and app.terminal_runner.runs == 0
        assert plugin_calls(d)[0]["info"]["spec"]["interactive"] is False


async def test_without_a_terminal_an_always_plugin_fails_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(cr, "stdin_is_terminal", lambda: False)
    backend, d = _setup(tmp_path, "Always")
    app = _app(backend)
    entered: list[int] = []
    _fake_suspend(app, entered)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: _failed(app), what="the connection error", timeout=10)
        assert "standard input is not a terminal" in (app.connection_error or "")
        assert entered == [] and plugin_calls(d) == []
    # IfAvailable without a terminal: runs without it, nothing waits for the UI
    backend, d = _setup(tmp_path / "b", "IfAvailable")
    app = _app(backend)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: _synced(app), what="synced", timeout=20)
        assert app.connection_error is None and app.terminal_runner.runs == 0
        assert plugin_calls(d)[0]["info"]["spec"]["interactive"] is False


async def test_a_driver_that_cannot_suspend_gives_an_error_not_a_hang(tmp_path, monkeypatch):
    monkeypatch.setattr(cr, "stdin_is_terminal", lambda: True)
    backend, d = _setup(tmp_path, "Always")
    app = _app(backend)  # the headless driver's real suspend(): SuspendNotSupported
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: _failed(app), what="the connection error", timeout=20)
        assert "cannot give up the terminal" in (app.connection_error or "")
        assert plugin_calls(d) == []


async def test_the_runner_of_an_app_that_is_not_running_refuses(tmp_path):
    runner = TerminalRunner(_app(PluginBackend(str(tmp_path / "kc"))))
    with pytest.raises(cr.CredentialError, match="the terminal UI is not running"):
        runner(lambda: "never")
