"""Pure rendering of fleet records into table cells (no Textual import)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from fleet.model import JobState, ModelDeployment, ProbeHealth, RolloutState, TrainingJob

MARK = "● "


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int | None  # None: sized to content
    cell: Callable[[Any, datetime], str | Text]
    sort: Callable[[Any], Any]


def human_age(created: datetime, now: datetime) -> str:
    """kubectl-style age: 45s, 12m, 3h, 5d, 2y."""
    secs = max(0, int((now - created).total_seconds()))
    if secs < 120:
        return f"{secs}s"
    mins = secs // 60
    if mins < 120:
        return f"{mins}m"
    hours = mins // 60
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    return f"{days}d" if days < 730 else f"{days // 365}y"


_ROLLOUT_STYLE = {
    RolloutState.STALLED: "bold red",
    RolloutState.PROGRESSING: "yellow",
    RolloutState.PAUSED: "magenta",
    RolloutState.COMPLETE: "green",
}
_PROBE_STYLE = {
    ProbeHealth.CRASHLOOP: "bold red",
    ProbeHealth.UNREADY: "yellow",
    ProbeHealth.PENDING: "cyan",
    ProbeHealth.OK: "green",
    ProbeHealth.NONE: "dim",
}
_JOB_STYLE = {
    JobState.FAILED: "bold red",
    JobState.PENDING: "yellow",
    JobState.RUNNING: "cyan",
    JobState.COMPLETE: "green",
    JobState.SUSPENDED: "magenta",
}


def _styled(value: str, style: str) -> Text:
    return Text(value, style=style)


def _ready(d: ModelDeployment, _now: datetime) -> str | Text:
    text = f"{d.ready}/{d.desired}"
    return _styled(text, "yellow") if d.ready < d.desired else text


def _probes(d: ModelDeployment, _now: datetime) -> Text:
    label = str(d.probe_health)
    if d.probe_health is ProbeHealth.CRASHLOOP and d.restarts:
        label = f"crashloop({d.restarts})"
    elif d.probe_health is ProbeHealth.UNREADY and d.unready_pods:
        label = f"unready({d.unready_pods})"
    return _styled(label, _PROBE_STYLE.get(d.probe_health, ""))


def _rollout(d: ModelDeployment, _now: datetime) -> Text:
    return _styled(str(d.rollout_state), _ROLLOUT_STYLE.get(d.rollout_state, ""))


def _cause(d: ModelDeployment, _now: datetime) -> str:
    cause = d.change_cause.replace("\n", " ")
    return cause if len(cause) <= 48 else cause[:47] + "…"


DEPLOYMENT_COLUMNS: tuple[Column, ...] = (
    Column("namespace", "NAMESPACE", None, lambda d, n: d.namespace, lambda d: d.namespace),
    Column("name", "NAME", None, lambda d, n: d.name, lambda d: d.name),
    Column("model", "MODEL", None, lambda d, n: d.model, lambda d: d.model),
    Column("version", "VERSION", None, lambda d, n: d.version, lambda d: d.version),
    Column("revision", "REV", 4, lambda d, n: str(d.revision), lambda d: d.revision),
    Column("ready", "READY", 7, _ready, lambda d: (d.ready - d.desired, d.desired)),
    Column("updated", "UP-TO-DATE", 10, lambda d, n: str(d.updated), lambda d: d.updated),
    Column("available", "AVAILABLE", 9, lambda d, n: str(d.available), lambda d: d.available),
    Column("rollout", "ROLLOUT", 11, _rollout, lambda d: str(d.rollout_state)),
    Column("probes", "PROBES", 13, _probes, lambda d: str(d.probe_health)),
    Column("age", "AGE", 5, lambda d, n: human_age(d.created, n), lambda d: -d.created.timestamp()),
    Column("cause", "CHANGE-CAUSE", None, _cause, lambda d: d.change_cause),
)


def _completions(j: TrainingJob, _now: datetime) -> str:
    total = "-" if j.completions is None else str(j.completions)
    return f"{j.succeeded}/{total}"


JOB_COLUMNS: tuple[Column, ...] = (
    Column("namespace", "NAMESPACE", None, lambda j, n: j.namespace, lambda j: j.namespace),
    Column("name", "NAME", None, lambda j, n: j.name, lambda j: j.name),
    Column("kind", "KIND", 12, lambda j, n: j.kind, lambda j: j.kind),
    Column("completions", "COMPLETIONS", 11, _completions, lambda j: j.succeeded),
    Column("active", "ACTIVE", 6, lambda j, n: str(j.active), lambda j: j.active),
    Column("succeeded", "SUCCEEDED", 9, lambda j, n: str(j.succeeded), lambda j: j.succeeded),
    Column("failed", "FAILED", 6, lambda j, n: str(j.failed), lambda j: j.failed),
    Column("gpus", "GPUS", 4, lambda j, n: str(j.gpus), lambda j: j.gpus),
    Column(
        "state",
        "STATE",
        9,
        lambda j, n: _styled(str(j.state), _JOB_STYLE.get(j.state, "")),
        lambda j: str(j.state),
    ),
    Column("age", "AGE", 5, lambda j, n: human_age(j.created, n), lambda j: -j.created.timestamp()),
)


def as_text(value: str | Text) -> Text:
    return value if isinstance(value, Text) else Text(value)


def render_row(
    columns: tuple[Column, ...], record: Any, now: datetime, marked: bool = False
) -> tuple[str | Text, ...]:
    """Cells for one record; a marked row gets a bullet before its name."""
    # Plain strings become Text: DataTable would parse str cells as markup (slow, and wrong
    # for a change-cause containing "[...]").
    cells = [as_text(col.cell(record, now)) for col in columns]
    if marked:
        idx = next(i for i, c in enumerate(columns) if c.key == "name")
        cells[idx] = Text(MARK + cells[idx].plain, style="bold")
    return tuple(cells)


def utcnow() -> datetime:
    return datetime.now(UTC)
