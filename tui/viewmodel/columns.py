"""Pure rendering of fleet records into table cells (no Textual import)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.text import Text

from fleet.model import (
    EPOCH,
    JobState,
    ModelDeployment,
    ProbeHealth,
    RetrainSchedule,
    RolloutState,
    TrainingJob,
)

MARK = "● "


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str
    width: int | None  # None: sized to content
    cell: Callable[[Any, datetime], str | Text]
    sort: Callable[[Any], Any]
    timed: bool = False  # the cell depends on the clock: re-rendered on the age timer


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


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


BAR_WIDTH = 8
STALE_PROGRESS_S = 300  # a running trainer silent this long shows how long ago it reported
_PHASE_STYLE = {"done": "green", "failed": "bold red", "training": "cyan"}


def progress_bar(fraction: float, width: int = BAR_WIDTH) -> str:
    filled = min(width, max(0, round(width * fraction)))
    return "█" * filled + "░" * (width - filled)


def _phase(j: TrainingJob, now: datetime) -> str | Text:
    p = j.progress
    if p is None or not p.phase:
        return ""
    text = Text(p.phase, style=_PHASE_STYLE.get(p.phase, ""))
    if j.state is JobState.RUNNING and p.updated is not None and p.phase not in ("done", "failed"):
        silent = (now - p.updated).total_seconds()
        if silent >= STALE_PROGRESS_S:
            text.append(f" ({human_age(p.updated, now)} ago)", style="yellow")
    return text


def _progress(j: TrainingJob, _now: datetime) -> str | Text:
    p = j.progress
    if p is None or not p.epoch_text:
        return ""
    frac = p.fraction
    if frac is None:
        return p.epoch_text
    style = {JobState.FAILED: "red", JobState.COMPLETE: "green"}.get(j.state, "cyan")
    return Text.assemble((progress_bar(frac), style), f" {p.epoch_text}")


def _progress_sort(j: TrainingJob) -> float:
    frac = j.progress.fraction if j.progress is not None else None
    return -1.0 if frac is None else frac


def _reason(j: TrainingJob, _now: datetime) -> str | Text:
    reason = j.reason  # the whole line: Enter on the row
    return _styled(_clip(reason, 48), "red") if reason else ""


JOB_COLUMNS: tuple[Column, ...] = (
    Column("namespace", "NAMESPACE", None, lambda j, n: j.namespace, lambda j: j.namespace),
    Column("name", "NAME", None, lambda j, n: j.name, lambda j: j.name),
    Column("kind", "KIND", 12, lambda j, n: j.kind, lambda j: j.kind),
    Column(
        "state",
        "STATE",
        9,
        lambda j, n: _styled(str(j.state), _JOB_STYLE.get(j.state, "")),
        lambda j: str(j.state),
    ),
    Column("phase", "PHASE", None, _phase,
           lambda j: j.progress.phase if j.progress is not None else "", timed=True),
    Column("progress", "PROGRESS", None, _progress, _progress_sort),
    Column("metric", "METRIC", None,
           lambda j, n: j.progress.metric_text if j.progress is not None else "",
           lambda j: (j.progress.metric, j.progress.value or 0) if j.progress else ("", 0)),
    Column("completions", "COMPLETIONS", 11, _completions, lambda j: j.succeeded),
    Column("active", "ACTIVE", 6, lambda j, n: str(j.active), lambda j: j.active),
    Column("failed", "FAILED", 6, lambda j, n: str(j.failed), lambda j: j.failed),
    Column("gpus", "GPUS", 4, lambda j, n: str(j.gpus), lambda j: j.gpus),
    Column("age", "AGE", 5, lambda j, n: human_age(j.created, n), lambda j: -j.created.timestamp()),
    Column("reason", "REASON", None, _reason, lambda j: j.reason),
)


# --- re-training schedules (CronJobs) ------------------------------------------------------------

_PROMOTION_STYLE = {"promoted": "green", "kept": "cyan", "rolled-back": "yellow",
                    "skipped": "dim", "failed": "bold red"}


def time_until(when: datetime, now: datetime) -> str:
    """`in 5m`; `now` just after it was due; `overdue 3m` when well past."""
    secs = (when - now).total_seconds()
    if secs < -60:
        return f"overdue {human_age(when, now)}"
    if secs <= 0:
        return "now"
    return "in " + human_age(now, when)


def _deployment(s: RetrainSchedule, _now: datetime) -> str:
    """The target Deployment; its namespace only when it is not the CronJob's."""
    key = s.deployment_key
    if key is None:
        return ""
    return key[1] if key[0] == s.namespace else f"{key[0]}/{key[1]}"


def _schedule(s: RetrainSchedule, _now: datetime) -> str:
    return f"{s.schedule} ({s.time_zone})" if s.time_zone else s.schedule


def _last_run(s: RetrainSchedule, now: datetime) -> str | Text:
    if s.last_schedule is None:
        return _styled("never", "dim")
    return f"{human_age(s.last_schedule, now)} ago"


def _next_run(s: RetrainSchedule, now: datetime) -> str | Text:
    if s.suspended:
        return _styled("suspended", "magenta")
    if s.next_run is None:
        return _styled("invalid schedule", "bold red") if s.schedule else ""
    text = time_until(s.next_run, now)
    return _styled(text, "yellow") if text.startswith("overdue") else text


def _promotion(s: RetrainSchedule, now: datetime) -> str | Text:
    p = s.last_promotion
    if p is None or not p.result:
        return _styled("none yet", "dim") if p is None else ""
    text = Text(p.result, style=_PROMOTION_STYLE.get(p.result, ""))
    if p.time is not None:
        text.append(f" {human_age(p.time, now)} ago")
    return text


def _promotion_detail(s: RetrainSchedule, _now: datetime) -> str:
    p = s.last_promotion
    return _clip(p.detail, 80) if p is not None else ""


SCHEDULE_COLUMNS: tuple[Column, ...] = (
    Column("namespace", "NAMESPACE", None, lambda s, n: s.namespace, lambda s: s.namespace),
    Column("name", "NAME", None, lambda s, n: s.name, lambda s: s.name),
    Column("model", "MODEL", None, lambda s, n: s.model, lambda s: s.model),
    Column("deployment", "DEPLOYMENT", None, _deployment, lambda s: s.deployment_key or ("", "")),
    Column("schedule", "SCHEDULE", None, _schedule, lambda s: s.schedule),
    Column("active", "ACTIVE", 6, lambda s, n: str(s.active), lambda s: s.active),
    Column("last_run", "LAST RUN", 9, _last_run,
           lambda s: -(s.last_schedule or EPOCH).timestamp(), timed=True),
    Column("next_run", "NEXT RUN", 11, _next_run,
           lambda s: s.next_run.timestamp() if s.next_run else float("inf"), timed=True),
    Column("promotion", "LAST PROMOTION", None, _promotion,
           lambda s: s.last_promotion.result if s.last_promotion else "", timed=True),
    Column("detail", "DETAIL", None, _promotion_detail,
           lambda s: s.last_promotion.detail if s.last_promotion else ""),
)


def _when(t: datetime | None, now: datetime) -> str:
    if t is None:
        return "-"
    stamp = t.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    rel = time_until(t, now) if t > now else f"{human_age(t, now)} ago"
    return f"{stamp} ({rel})"


def job_summary(j: TrainingJob, now: datetime | None = None) -> str:
    """Everything the trainer reported, untruncated (Enter on a job row)."""
    now = now or utcnow()
    lines = [f"state {j.state}, {j.succeeded}/{j.completions or 1} completed, "
             f"{j.active} active, {j.failed} failed"]
    p = j.progress
    if p is None:
        lines.append("no progress reported (annotation modelfleet.io/progress)")
    else:
        facts = [f"phase {p.phase or '?'}"]
        if p.epoch_text:
            facts.append(f"epoch {p.epoch_text}")
        if p.value is not None:
            facts.append(f"{p.metric or 'metric'} {p.value:g}")
        if p.loss is not None:
            facts.append(f"loss {p.loss:g}")
        lines.append(", ".join(facts))
        if p.updated is not None:
            lines.append(f"reported {_when(p.updated, now)}")
        if p.message:
            lines.append(p.message)
        if p.model_uri:
            lines.append(f"published {p.model_uri}")
    if j.reason:
        lines.append(f"failed: {j.reason}")
    return "\n".join(lines)


def schedule_summary(s: RetrainSchedule, now: datetime | None = None) -> str:
    """The schedule and the last promotion, untruncated (Enter on a schedule row)."""
    now = now or utcnow()
    lines = [f"model {s.model} → deployment {s.deployment or '?'}",
             f"schedule {_schedule(s, now) or '-'}"
             + (" (suspended)" if s.suspended else ""),
             f"last run {_when(s.last_schedule, now)}; last success "
             f"{_when(s.last_successful, now)}",
             f"next run {_when(s.next_run, now) if s.next_run else as_text(_next_run(s, now))}"]
    if s.active:
        lines.append(f"{s.active} job(s) running now")
    p = s.last_promotion
    if p is None:
        lines.append("no promotion yet (annotation modelfleet.io/last-promotion)")
    else:
        lines.append(f"last promotion: {p.result or '?'} {_when(p.time, now)}"
                     + (f" by job {p.job}" if p.job else ""))
        if p.detail:
            lines.append(p.detail)
        if p.model_uri:
            lines.append(p.model_uri)
    return "\n".join(lines)


def as_text(value: str | Text) -> Text:
    return value if isinstance(value, Text) else Text(value)


def as_cell(value: str | Text) -> str | Text:
    """A cell value for the table. A plain string stays a string: the table makes a Rich
    `Text` of it only when its row is drawn. A string with "[" becomes Text, so that it is
    never read as markup (a change-cause like "release [canary]")."""
    if isinstance(value, Text) or "[" not in value:
        return value
    return Text(value)


def render_row(
    columns: tuple[Column, ...], record: Any, now: datetime, marked: bool = False
) -> tuple[str | Text, ...]:
    """Cells for one record; a marked row gets a bullet before its name."""
    cells = [as_cell(col.cell(record, now)) for col in columns]
    if marked:
        idx = next(i for i, c in enumerate(columns) if c.key == "name")
        name = cells[idx]
        cells[idx] = Text(MARK + (name.plain if isinstance(name, Text) else name), style="bold")
    return tuple(cells)


def utcnow() -> datetime:
    return datetime.now(UTC)
