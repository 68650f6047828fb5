"""Messages workers and the cache thread post to the UI (Textual `post_message` is thread-safe)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from textual.message import Message


class ChangesPending(Message):
    """The change buffer has data; the app drains it when it is ready (coalescing)."""


@dataclass
class BackendReady(Message):
    """The backend connected (or failed to), posted by the start-up worker."""

    error: str | None = None


@dataclass
class PermissionsChecked(Message):
    """RBAC answers: (namespace, action) -> (allowed, reason)."""

    answers: dict[tuple[str, str], tuple[bool, str]]


@dataclass
class ActionFinished(Message):
    """An action (single or bulk) finished; `results` holds per-target outcomes."""

    title: str
    results: list[Any]
    watch: list[tuple[str, str]]


@dataclass
class DetailLoaded(Message):
    """Data for the detail screen's tabs (history, pods, probes, events)."""

    part: str
    payload: Any
    error: str | None = None
