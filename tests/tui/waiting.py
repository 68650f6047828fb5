"""Await app conditions instead of sleeping: the tests run as fast as the app allows."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from textual.worker import WorkerState

_ACTIVE = (WorkerState.PENDING, WorkerState.RUNNING)


def busy(app) -> str:
    """What the app is still doing ('' when settled)."""
    if app.backend is None and app.connection_error is None:
        return "connecting"
    if app.buffer._notified or app.apply_throttle.armed:
        return "changes not applied yet"
    if any(w.state in _ACTIVE for w in app.workers):
        return "workers running"
    if getattr(app.screen, "_reload_armed", False):
        return "detail reload pending"
    return ""


async def until(pilot, predicate: Callable[[], object], what: str = "condition",
                timeout: float = 10.0) -> None:
    """Let the app run until `predicate()` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause()
        await asyncio.sleep(0)


async def settle(pilot, timeout: float = 10.0) -> None:
    """Until the app is connected, has applied every change, and no worker or reload is
    pending, twice in a row (a finished worker may have posted one more message)."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    quiet = 0
    while quiet < 2:
        await pilot.pause()
        await app.workers.wait_for_complete()
        state = busy(app)
        quiet = 0 if state else quiet + 1
        if state and time.monotonic() > deadline:
            raise AssertionError(f"app did not settle within {timeout}s: {state}")
