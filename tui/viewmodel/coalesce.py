"""Merge watch changes arriving on the cache thread into one pending batch.

The cache thread calls `push`; the first push after a drain calls `notify` (which posts
one message to the UI). Until the UI drains, further changes merge by key, so the UI's
queue holds at most one pending batch however fast the watch runs (back-pressure).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleet.events import FleetChange, Key
from fleet.model import ConnectionState


def _rv(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def _newer_or_equal(new: Any, old: Any) -> bool:
    a, b = _rv(getattr(new, "resource_version", "")), _rv(getattr(old, "resource_version", ""))
    return a is None or b is None or a >= b


@dataclass
class Batch:
    """Everything that changed since the previous drain."""

    deployments: dict[Key, Any] = field(default_factory=dict)
    deployments_deleted: set[Key] = field(default_factory=set)
    jobs: dict[Key, Any] = field(default_factory=dict)
    jobs_deleted: set[Key] = field(default_factory=set)
    schedules: dict[Key, Any] = field(default_factory=dict)
    schedules_deleted: set[Key] = field(default_factory=set)
    connection: ConnectionState | None = None
    error: str | None = None
    events: int = 0


class ChangeBuffer:
    def __init__(self, notify: Callable[[], object]) -> None:
        self._notify = notify
        self._lock = threading.Lock()
        self._batch = Batch()
        self._notified = False

    @staticmethod
    def _merge(up: dict[Key, Any], gone: set[Key], upserts: list[Any], deletes: list[Key]) -> None:
        for rec in upserts:
            old = up.get(rec.key)
            if old is None or _newer_or_equal(rec, old):
                up[rec.key] = rec
            gone.discard(rec.key)
        for key in deletes:
            up.pop(key, None)
            gone.add(key)

    def push(self, change: FleetChange) -> None:
        """Called from any thread; never blocks on the UI."""
        with self._lock:
            b = self._batch
            self._merge(b.deployments, b.deployments_deleted, change.deployments_upserted,
                        change.deployments_deleted)
            self._merge(b.jobs, b.jobs_deleted, change.jobs_upserted, change.jobs_deleted)
            self._merge(b.schedules, b.schedules_deleted, change.schedules_upserted,
                        change.schedules_deleted)
            if change.connection is not None:
                b.connection = change.connection
            if change.error is not None:
                b.error = change.error
            b.events += 1
            if self._notified:
                return
            self._notified = True
        self._notify()

    def drain(self) -> Batch:
        with self._lock:
            batch, self._batch = self._batch, Batch()
            self._notified = False
        return batch
