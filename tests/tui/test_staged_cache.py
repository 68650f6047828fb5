"""Deployments-first start of the watch cache (tui/staged_cache.py) with stand-in reflectors."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

from tui.staged_cache import start_staged


class Reflector:
    def __init__(self, plural: str, log: list[str]) -> None:
        self.res = SimpleNamespace(plural=plural)
        self.synced = threading.Event()
        self._log = log

    def start(self) -> None:
        self._log.append(self.res.plural)


def fake_cache(log: list[str]) -> SimpleNamespace:
    refl = [Reflector(p, log) for p in ("deployments", "replicasets", "pods", "events")]
    return SimpleNamespace(_reflectors=refl, _notify_loop=lambda: None, _stop=threading.Event())


def wait(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_others_start_after_deployments_synced_and_rows_shown():
    log: list[str] = []
    cache = fake_cache(log)
    shown = threading.Event()
    start_staged(cache, shown)
    time.sleep(0.1)
    assert log == ["deployments"]
    cache._reflectors[0].synced.set()
    time.sleep(0.1)
    assert log == ["deployments"]  # still waiting for the app to show the rows
    shown.set()
    wait(lambda: len(log) == 4)
    assert log == ["deployments", "replicasets", "pods", "events"]


def test_stopped_cache_does_not_start_the_rest():
    log: list[str] = []
    cache = fake_cache(log)
    shown = threading.Event()
    start_staged(cache, shown)
    cache._stop.set()
    cache._reflectors[0].synced.set()
    shown.set()
    time.sleep(0.2)
    assert log == ["deployments"]


def test_falls_back_to_plain_start_without_internals():
    calls = []
    start_staged(SimpleNamespace(start=lambda: calls.append("start")))
    assert calls == ["start"]
