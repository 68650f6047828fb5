"""Pure rendering for sweeps: the sweeps view's columns, the trials table, plot series,
importance bars and summary lines (no Textual import, so it is cheap to test).

The trials table's columns depend on the sweep (one per search-space parameter), so they are
built per sweep by `trial_columns`. Plot series are computed off the UI thread (the detail's
worker) and are plain tuples, so "did anything change" is one comparison.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from rich.text import Text

from fleet.model import GPU_RESOURCE, PodSummary, SweepSummary, SweepTrial, TrainingJob
from tui.viewmodel.columns import Column, _clip, human_age, progress_bar

STATE_STYLE = {"running": "cyan", "pending": "yellow", "stopped": "magenta",
               "aborted": "bold red", "failed": "bold red", "complete": "green"}
TRIAL_STYLE = {"complete": "green", "running": "cyan", "pruned": "yellow", "fail": "bold red",
               "waiting": "dim", "unknown": "dim"}
TRIAL_ORDER = {"running": 0, "waiting": 1, "complete": 2, "pruned": 3, "fail": 4, "unknown": 5}
PROMOTION_STYLE = {"promoted": "green", "bootstrapped": "green", "kept": "cyan",
                   "rolled-back": "yellow", "lost": "yellow", "skipped": "dim",
                   "failed": "bold red"}
_EMPTY = SweepSummary()


def summary_of(j: TrainingJob) -> SweepSummary:
    return j.sweep or _EMPTY


def number(v: float | None, digits: int = 4) -> str:
    if v is None:
        return "-"
    return f"{v:.{digits}f}" if v == 0 or 1e-3 <= abs(v) < 1e5 else f"{v:.{digits - 1}e}"


def best_text(s: SweepSummary) -> str:
    """`0.9712 (#41)` like `fleet sweep ls`; `-` before the first complete trial."""
    if s.best_value is None:
        return "-"
    return f"{number(s.best_value)} (#{s.best_trial})" if s.best_trial is not None \
        else number(s.best_value)


# --- the sweeps view ------------------------------------------------------------------------

def _state(j: TrainingJob, _now: datetime) -> Text:
    state = j.sweep_state
    return Text(state, style=STATE_STYLE.get(state, ""))


def _trials(j: TrainingJob, _now: datetime) -> str | Text:
    s = summary_of(j)
    total = s.max_trials
    if not total:
        return f"{s.done}/?" if s.done else ""
    style = "green" if s.done >= total else "cyan"
    return Text.assemble((progress_bar(s.done / total), style), f" {s.done}/{total}")


def _trials_sort(j: TrainingJob) -> tuple:
    s = summary_of(j)
    return (s.done / s.max_trials if s.max_trials else -1.0, s.done)


_NODES = re.compile(r"0/(\d+) nodes are available")
_NO_GPU = re.compile(r"(\d+) Insufficient nvidia\.com/gpu")


def scheduler_gist(message: str) -> str:
    """The GPU part of a FailedScheduling message, which lists taints and other reasons
    first: `0/4 nodes are available: 1 node(s) had untolerated taint(s), 3 Insufficient
    nvidia.com/gpu.` → `Insufficient nvidia.com/gpu on 3 of 4 nodes`."""
    gpu = _NO_GPU.search(message)
    if gpu is None:
        return message
    nodes = _NODES.search(message)
    return f"Insufficient {GPU_RESOURCE} on {gpu.group(1)}" + (
        f" of {nodes.group(1)} nodes" if nodes else " nodes")


def pods_text(j: TrainingJob) -> Text:
    """`3 running`, `2 running, 2 pending`, `1 running, 3 GPU-starved` (red)."""
    out = Text(f"{j.running_pods} running")
    waiting = max(j.pending, j.unschedulable)
    if j.gpu_starved:
        out.append(f", {waiting} GPU-starved", style="bold red")
    elif j.unschedulable:
        out.append(f", {waiting} unschedulable", style="yellow")
    elif waiting:
        out.append(f", {waiting} pending", style="yellow")
    return out


def _reason(j: TrainingJob, _now: datetime) -> str | Text:
    s = summary_of(j)
    state = j.sweep_state
    if s.reason and state in ("aborted", "failed", "stopped"):
        return Text(_clip(s.reason, 60), style="red" if state != "stopped" else "magenta")
    if j.failure and state == "failed":
        return Text(_clip(j.failure, 60), style="red")
    if j.gpu_starved:
        return Text(_clip(scheduler_gist(j.pending_reason), 60), style="red")
    p = s.promotion
    if p is not None and p.result:
        return Text.assemble((p.result, PROMOTION_STYLE.get(p.result, "")),
                             f" {_clip(p.detail, 50)}" if p.detail else "")
    return _clip(s.reason, 60)


def _count(field: str):
    """A trial count; `-` while the workers have published nothing."""
    return Column(field, field.upper(), max(6, len(field)),
                  lambda j, n: str(getattr(j.sweep, field)) if j.sweep and j.sweep.state
                  else "-",
                  lambda j: getattr(summary_of(j), field))


SWEEP_COLUMNS: tuple[Column, ...] = (
    Column("namespace", "NAMESPACE", None, lambda j, n: j.namespace, lambda j: j.namespace),
    Column("name", "NAME", None, lambda j, n: j.name, lambda j: j.name),
    Column("state", "STATE", 9, _state, lambda j: j.sweep_state),
    Column("trials", "TRIALS", 16, _trials, _trials_sort),
    _count("complete"),
    _count("running"),
    _count("pruned"),
    _count("failed"),
    Column("best", "BEST", None, lambda j, n: best_text(summary_of(j)),
           lambda j: (summary_of(j).best_value is None, summary_of(j).best_value or 0.0)),
    Column("pods", "PODS", None, lambda j, n: pods_text(j),
           lambda j: (j.unschedulable or j.pending, j.running_pods)),
    Column("age", "AGE", 5, lambda j, n: human_age(j.created, n),
           lambda j: -j.created.timestamp()),
    Column("reason", "REASON", None, _reason, lambda j: summary_of(j).reason),
)


def summary_text(j: TrainingJob, now: datetime, pods: Sequence[PodSummary] | None = None
                 ) -> Text:
    """The detail's header: state, trial counts, best, pods (with the scheduler's message),
    promotion."""
    if pods and not j.unschedulable:  # the detail's fresh pod list knows more than the Job
        from fleet.derive import unschedulable

        count, why = unschedulable(pods)
        if count:
            j = replace(j, unschedulable=count, pending_reason=why)
    s = summary_of(j)
    state = j.sweep_state
    out = Text.assemble(("sweep ", "dim"), (f"{j.namespace}/{j.name}", "bold"), "  ",
                        (state, STATE_STYLE.get(state, "")),
                        (f"  {s.reason}" if s.reason else "",
                         "red" if state in ("aborted", "failed") else "dim"),
                        ("   age ", "dim"), human_age(j.created, now))
    out.append("\ntrials ", style="dim")
    out.append_text(Text.assemble(
        (f"{s.complete} complete", "green"), " · ", (f"{s.running} running", "cyan"), " · ",
        (f"{s.pruned} pruned", "yellow"), " · ", (f"{s.failed} failed", "red"),
        f" · {s.waiting} waiting of {s.max_trials or '?'}"))
    arrow = "↑" if s.maximize else "↓"
    out.append("   best ", style="dim")
    out.append(f"{s.metric or 'value'} {arrow} ")
    out.append(best_text(s), style="bold green" if s.best_value is not None else "dim")
    out.append("\npods ", style="dim")
    out.append_text(pods_text(j))
    reason = j.pending_reason or next((why for p in pods or () if (why := waiting_for(p))), "")
    if reason and (j.pending or j.unschedulable or any(p.phase == "Pending" for p in pods or ())):
        out.append(f" ({_clip(reason, 90)})", style="red" if j.gpu_starved else "yellow")
    if s.parallelism:
        out.append(f"   parallelism {s.parallelism}", style="dim")
        if s.gpus:
            out.append(f" × {s.gpus} GPU", style="dim")
    p = s.promotion
    if p is not None and p.result:
        out.append("\npromotion ", style="dim")
        out.append(p.result, style=PROMOTION_STYLE.get(p.result, ""))
        if p.detail:
            out.append(f": {_clip(p.detail, 120)}")
    elif s.deployment:
        out.append(f"   promotes into {s.deployment}", style="dim")
    return out


# --- the trials table ------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class TrialRow:
    """A trial as the table shows it: whether it is the sweep's best is part of the row, so a
    new best re-renders exactly the two rows whose star moved."""

    trial: SweepTrial
    best: bool = False

    @property
    def key(self) -> int:
        return self.trial.n


def param_text(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _sortable(v: object) -> tuple:
    """Numbers before strings before unset, so a mixed categorical column still sorts."""
    if isinstance(v, bool):
        return (1, str(v))
    if isinstance(v, int | float):
        return (0, float(v))
    if v is None:
        return (2, "")
    return (1, str(v))


def _value(r: TrialRow, _now: datetime) -> str | Text:
    t = r.trial
    if t.value is None:
        last = t.steps[-1][1] if t.steps else None
        return Text(f"({number(last)})", style="dim") if last is not None else "-"
    return Text("★ " + number(t.value), style="bold green") if r.best else number(t.value)


def _duration(r: TrialRow, now: datetime) -> str:
    t = r.trial
    if t.start is None:
        return "-"
    end = t.end or (now if t.state == "running" else None)
    return human_age(t.start, end) if end is not None else "-"


def _duration_sort(r: TrialRow) -> float:
    t = r.trial
    return (t.end - t.start).total_seconds() if t.start and t.end else -1.0


def _note(r: TrialRow, _now: datetime) -> str | Text:
    t = r.trial
    if t.reason:
        return Text(_clip(t.reason, 60), style="red")
    bits = []
    if t.retry_of is not None:
        bits.append(f"retry of #{t.retry_of}")
    if t.model_uri:
        bits.append(t.model_uri)
    return _clip(" · ".join(bits), 70)


def _param_cell(name: str) -> Callable[[TrialRow, datetime], str]:
    return lambda r, _now: param_text(r.trial.param(name))


def _param_sort(name: str) -> Callable[[TrialRow], tuple]:
    return lambda r: _sortable(r.trial.param(name))


def trial_columns(params: Iterable[str], metric: str = "", maximize: bool = True
                  ) -> tuple[Column, ...]:
    """#, state, value (the objective), one column per parameter, epochs, duration, pod,
    note. Every column sorts (parameters numerically where they are numbers); trials without
    a value sort as the worst, so best-first keeps them at the end."""
    worst = float("-inf") if maximize else float("inf")
    cols = [
        Column("n", "#", None, lambda r, n: str(r.trial.n), lambda r: r.trial.n),
        Column("state", "STATE", 8,
               lambda r, n: Text(r.trial.state, style=TRIAL_STYLE.get(r.trial.state, "")),
               lambda r: TRIAL_ORDER.get(r.trial.state, 9)),
        Column("value", (metric or "value").upper(), None, _value,
               lambda r: worst if r.trial.value is None else r.trial.value),
    ]
    for i, name in enumerate(params):
        cols.append(Column(f"p{i}", name, None, _param_cell(name), _param_sort(name)))
    cols += [
        Column("epochs", "EPOCHS", 6,
               lambda r, n: str(r.trial.steps[-1][0]) if r.trial.steps else "-",
               lambda r: r.trial.steps[-1][0] if r.trial.steps else -1),
        Column("duration", "DURATION", 8, _duration, _duration_sort, timed=True),
        Column("pod", "POD", None, lambda r, n: r.trial.pod or "", lambda r: r.trial.pod),
        Column("note", "NOTE", None, _note, lambda r: r.trial.reason or r.trial.model_uri),
    ]
    return tuple(cols)


def param_names(summary: SweepSummary | None, trials: Iterable[SweepTrial]) -> tuple[str, ...]:
    """The spec's search-space order, then any parameter only the trials have."""
    names = list(summary.params) if summary is not None else []
    seen = set(names)
    for t in trials:
        for k, _ in t.params:
            if k not in seen:
                seen.add(k)
                names.append(k)
    return tuple(names)


def best_trial(trials: Iterable[SweepTrial], maximize: bool = True) -> SweepTrial | None:
    done = [t for t in trials if t.state == "complete" and t.value is not None]
    if not done:
        return None
    pick = max if maximize else min
    return pick(done, key=lambda t: (t.value, -t.n) if maximize else (t.value, t.n))


def trial_rows(trials: Iterable[SweepTrial], maximize: bool = True,
               shown: dict[int, TrialRow] | None = None) -> dict[int, TrialRow]:
    """The table's rows; a row of `shown` whose trial is the same object is reused (a poll
    of a running sweep allocates rows for the changed trials only)."""
    trials = list(trials)
    best = best_trial(trials, maximize)
    best_n = best.n if best is not None else None
    shown = shown or {}
    out = {}
    for t in trials:
        is_best = t.n == best_n
        row = shown.get(t.n)
        out[t.n] = row if row is not None and row.trial is t and row.best == is_best \
            else TrialRow(t, is_best)
    return out


def trial_details(t: SweepTrial, metric: str = "value") -> str:
    """Everything about one trial, untruncated (Enter on a trial row)."""
    lines = [f"state {t.state}; {metric} {number(t.value)}"
             + (f"; holdout {number(t.holdout)}" if t.holdout is not None else "")]
    if t.params:
        lines.append(", ".join(f"{k}={param_text(v)}" for k, v in t.params))
    if t.steps:
        lines.append(f"{len(t.steps)} intermediate values, last at epoch {t.steps[-1][0]}: "
                     f"{number(t.steps[-1][1])}")
    if t.pod:
        lines.append(f"pod {t.pod}" + (f" (worker {t.index})" if t.index is not None else ""))
    if t.start:
        lines.append(f"started {t.start:%Y-%m-%d %H:%M:%S} UTC"
                     + (f", ended {t.end:%H:%M:%S}" if t.end else ""))
    if t.retry_of is not None:
        lines.append(f"retry of trial #{t.retry_of}")
    if t.model_uri:
        lines.append(f"model {t.model_uri}")
    if t.reason:
        lines.append(f"failed: {t.reason}")
    return "\n".join(lines)


# --- plot series (computed in the detail's worker) -----------------------------------------

MAX_CLOUD_POINTS = 4000  # intermediate values of the other trials, newest trials first
MAX_RUNNING_CURVES = 4


@dataclass(frozen=True, slots=True)
class BestSeries:
    """Every complete trial's value by trial number, and the best so far."""

    xs: tuple[int, ...] = ()
    values: tuple[float, ...] = ()
    best: tuple[float, ...] = ()
    metric: str = ""
    maximize: bool = True


def best_series(trials: Iterable[SweepTrial], maximize: bool = True,
                metric: str = "") -> BestSeries:
    xs: list[int] = []
    values: list[float] = []
    best: list[float] = []
    cur: float | None = None
    for t in sorted(trials, key=lambda t: t.n):
        if t.state != "complete" or t.value is None:
            continue
        v = t.value
        cur = v if cur is None else (max(cur, v) if maximize else min(cur, v))
        xs.append(t.n)
        values.append(v)
        best.append(cur)
    return BestSeries(tuple(xs), tuple(values), tuple(best), metric, maximize)


@dataclass(frozen=True, slots=True)
class CurveSeries:
    """Intermediate values per epoch: a cloud of other trials' points, the running trials'
    curves, and the selected trial's curve (highlighted)."""

    cloud_x: tuple[int, ...] = ()
    cloud_y: tuple[float, ...] = ()
    cloud_trials: int = 0
    total_trials: int = 0
    running: tuple[tuple[int, tuple[tuple[int, float], ...]], ...] = ()
    selected: int | None = None
    selected_steps: tuple[tuple[int, float], ...] = ()
    selected_state: str = ""
    metric: str = ""


def curve_series(trials: Sequence[SweepTrial], selected: int | None, *, all_trials: bool = True,
                 metric: str = "", max_points: int = MAX_CLOUD_POINTS) -> CurveSeries:
    """`all_trials`: the cloud of every trial's points (newest first, at most `max_points`)
    and the running trials' curves; otherwise the selected trial alone."""
    with_steps = [t for t in trials if t.steps]
    sel = next((t for t in trials if t.n == selected), None) if selected is not None else None
    if not all_trials:
        return CurveSeries(selected=selected, selected_steps=sel.steps if sel else (),
                           selected_state=sel.state if sel else "", metric=metric,
                           total_trials=len(with_steps))
    cx: list[int] = []
    cy: list[float] = []
    used = 0
    for t in sorted(with_steps, key=lambda t: -t.n):
        if t.n == selected:
            continue
        if len(cx) + len(t.steps) > max_points:
            break
        used += 1
        for step, value in t.steps:
            cx.append(step)
            cy.append(value)
    running = tuple((t.n, t.steps) for t in sorted(with_steps, key=lambda t: -t.n)
                    if t.state == "running" and t.n != selected)[:MAX_RUNNING_CURVES]
    return CurveSeries(tuple(cx), tuple(cy), used, len(with_steps), running, selected,
                       sel.steps if sel else (), sel.state if sel else "", metric)


def importance_text(importances: Sequence[tuple[str, float]], width: int = 24) -> Text:
    """One bar per parameter, largest first (Optuna's importances sum to 1)."""
    if not importances:
        return Text("none yet (from 4 complete trials on)", style="dim")
    top = max(v for _, v in importances) or 1.0
    name_w = min(24, max(len(k) for k, _ in importances))
    out = Text()
    for i, (k, v) in enumerate(importances):
        if i:
            out.append("\n")
        filled = max(0, min(width, round(width * v / top)))
        out.append(f"{_clip(k, name_w):<{name_w}} ", style="bold")
        out.append("█" * filled, style="cyan")
        out.append("░" * (width - filled), style="dim")
        out.append(f" {v:.3f}")
    return out


# --- pods ----------------------------------------------------------------------------------

def waiting_for(p: PodSummary) -> str:
    """The scheduler's message for a pod it cannot place, else ""."""
    if p.phase != "Pending":
        return ""
    for c in p.conditions:
        if c.type == "PodScheduled" and c.status == "False":
            return c.message or c.reason
    return ""


def pod_table_rows(pods: Sequence[PodSummary], trials: Iterable[SweepTrial], now: datetime
                   ) -> list[tuple[str | Text, ...]]:
    """NAME, STATUS, TRIAL (running on it), NODE, RESTARTS, AGE, WAITING FOR."""
    from tui.viewmodel.detail import pod_status

    on_pod: dict[str, int] = {}
    for t in trials:
        if t.state == "running" and t.pod:
            on_pod[t.pod] = max(t.n, on_pod.get(t.pod, -1))
    rows: list[tuple[str | Text, ...]] = []
    for p in pods:
        why = waiting_for(p)
        status = pod_status(p)
        style = "green" if p.phase == "Running" and p.ready else "yellow" \
            if p.phase in ("Pending", "Running") else "dim"
        trial = on_pod.get(p.name)
        rows.append((Text(p.name), Text(status, style=style),
                     Text(f"#{trial}" if trial is not None else "-"), Text(p.node or "-"),
                     Text(str(p.restarts)), Text(human_age(p.created, now) if p.created else "-"),
                     Text(_clip(why, 100), style="red" if GPU_RESOURCE in why
                          else "yellow") if why else Text("")))
    return rows
