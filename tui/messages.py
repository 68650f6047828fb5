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

    answers: dict[tuple[str, str], tuple[bool | None, str]]  # None: the check failed


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


@dataclass
class DeployProgress(Message):
    """A line from `fleet.ops.deploy.deploy`: `kind` "message" (created, warnings) or
    "progress" (pods created/ready of N, the last event)."""

    key: tuple[str, str]
    kind: str
    line: str


@dataclass
class DeployFinished(Message):
    """The deploy worker is done: `result` (a `DeployResult`) or `error` (nothing written when
    it failed before applying)."""

    key: tuple[str, str]
    result: Any = None
    error: str | None = None


@dataclass
class DeployChecked(Message):
    """The form's pre-flight (RBAC + server-side dry run) answered: `result` or `error`."""

    spec: Any
    result: Any = None
    error: str | None = None


class LogsPending(Message):
    """The log worker buffered lines; the log view drains them (coalesced, bounded)."""


@dataclass
class LogStatus(Message):
    """The log worker's state: streaming, reconnecting, ended, or an error."""

    session: int
    text: str
    error: bool = False


@dataclass
class PodCheckFinished(Message):
    """Probe-now or the example prediction finished: the report to show."""

    title: str
    body: list[Any]
    ok: bool



@dataclass
class SweepLoaded(Message):
    """The sweep detail's worker read the trials ConfigMap and the worker pods. `rows` is None
    when the ConfigMap did not change; else `upserts`/`deletes` are the rows that changed
    against what the screen shows (computed off the UI thread)."""

    rows: dict[int, Any] | None = None
    upserts: list[Any] | None = None
    deletes: list[int] | None = None
    snapshot: Any = None  # the SweepTrials read
    model: Any = None  # the TableModel `rendered` was rendered for
    rendered: dict[int, Any] | None = None  # TableModel.prerender(upserts), off the UI thread
    best: Any = None  # tui.viewmodel.sweep_render.BestSeries
    pods: list[Any] | None = None
    error: str | None = None


@dataclass
class CliLine(Message):
    """One line a `fleet …` subprocess printed (stream "stdout" or "stderr")."""

    run: int
    stream: str
    line: str


@dataclass
class CliFinished(Message):
    """The `fleet …` subprocess ended: `result` (a `tui.cli_actions.CliResult`) or `error`
    (it could not be started)."""

    run: int
    result: Any = None
    error: str | None = None
