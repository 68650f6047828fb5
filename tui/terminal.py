"""The terminal for interactive exec plugins: the app suspends itself while one runs.

`fleet.credentials` runs an exec plugin with the terminal (interactiveMode Always) through the
runner installed with `set_terminal_runner`, from whichever thread needs the credential: an API
worker of the app, a watch thread of the cache. Textual's `App.suspend()` must run on the UI
thread, so the runner hands the plugin run to it (`call_from_thread`) and waits for the result;
meanwhile the UI thread makes no API call (the app does all of them in workers), so the
provider's lock, held while the plugin runs, cannot deadlock it.

IfAvailable plugins (every v1beta1 plugin that names no mode) run without the terminal, so the
screen is not suspended at each of their refreshes; without a terminal on stdin an Always
plugin fails at once with kubectl's message, which the app shows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from fleet.credentials import UNREACHABLE, set_terminal_runner
from fleet.errors import CredentialError

T = TypeVar("T")


class TerminalRunner:
    """`runner(fn)`: run `fn()` (the plugin) on the app's UI thread inside `App.suspend()`."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.runs = 0  # plugin runs it suspended the app for (tests, diagnostics)

    def __call__(self, fn: Callable[[], T]) -> T:
        app = self.app
        if not app.is_running:
            raise _no_terminal("the terminal UI is not running")
        if getattr(app, "_thread_id", None) == threading.get_ident():
            return self._suspended(fn)  # already on the UI thread
        try:
            return app.call_from_thread(self._suspended, fn)  # type: ignore[no-any-return]
        except RuntimeError as exc:  # the app is not running (any more)
            raise _no_terminal(str(exc)) from exc

    def _suspended(self, fn: Callable[[], T]) -> T:
        from textual.app import SuspendNotSupported

        try:
            with self.app.suspend():
                self.runs += 1
                return fn()
        except SuspendNotSupported as exc:
            raise _no_terminal(f"the terminal UI cannot give up the terminal: {exc}") from exc


def _no_terminal(why: str) -> CredentialError:
    return CredentialError(f"{UNREACHABLE}getting credentials: exec plugin cannot support "
                           f"interactive mode: {why}")


def install(app: Any) -> Callable[[], None]:
    """Install the app's runner; returns what puts the previous one back (at unmount)."""
    runner = TerminalRunner(app)
    previous = set_terminal_runner(runner, if_available=False)
    app.terminal_runner = runner

    def restore() -> None:
        set_terminal_runner(previous)

    return restore
