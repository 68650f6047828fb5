"""Detail of one sweep: trials table, best-so-far and intermediate-value plots, parameter
importances, worker pods (with `l` for their logs), and the sweep actions.

Everything comes from Kubernetes objects the workers keep current (the Job's summary through
the app's watch, the trials ConfigMap and the pods polled every `poll_s` by a worker), so it
works from a laptop that cannot reach the study database. The poll never blocks the UI: the
worker reads, parses and diffs the trials against the rows shown, the UI thread applies only
the rows that changed (only their changed cells repaint), and the plots are built in their own
workers (`tui.widgets.plots`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from fleet.model import SweepTrial, SweepTrials, TrainingJob
from tui.backend import connected
from tui.gcpause import gc_paused
from tui.messages import SweepLoaded
from tui.screens.picker import PickerScreen
from tui.viewmodel.sweep_render import (
    TrialRow,
    best_series,
    curve_series,
    importance_text,
    param_names,
    pod_table_rows,
    summary_of,
    summary_text,
    trial_columns,
    trial_details,
    trial_rows,
)
from tui.viewmodel.table import TableModel
from tui.widgets.fleet_table import KeyedTable, TrialTable
from tui.widgets.plots import BackgroundPlot, draw_best, draw_curves

if TYPE_CHECKING:
    from tui.app import FleetApp

Key = tuple[str, str]
POLL_S = 2.0
POD_COLUMNS = ("NAME", "STATUS", "TRIAL", "NODE", "RESTARTS", "AGE", "WAITING FOR")


@dataclass(frozen=True)
class CurveRequest:
    """What the intermediate-values plot shows; its worker turns it into a `CurveSeries`."""

    trials: tuple[SweepTrial, ...]
    selected: int | None
    all_trials: bool
    metric: str


def _draw_curves(plt: Any, req: CurveRequest, width: int) -> None:
    draw_curves(plt, curve_series(req.trials, req.selected, all_trials=req.all_trials,
                                  metric=req.metric), width)


class SweepDetailScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="sweep.back"),
        Binding("l", "pod_logs", "Logs", id="sweep.logs"),
        Binding("i", "toggle_curves", "Curves", id="sweep.curves"),
        Binding("S", "sort_picker", "Sort", id="sweep.sort"),
        Binding("right_square_bracket", "sort_next", "Sort next col", show=False,
                id="sweep.sort_next"),
        Binding("left_square_bracket", "sort_prev", "Sort prev col", show=False,
                id="sweep.sort_prev"),
    ]

    def __init__(self, key: Key, poll_s: float = POLL_S) -> None:
        super().__init__()
        self.sweep_key = key
        self.poll_s = poll_s
        job = self._job_from_app()
        self.params: tuple[str, ...] = summary_of(job).params if job else ()
        self.metric = summary_of(job).metric if job else ""
        self.maximizing = summary_of(job).maximize if job else True
        self.model: TableModel[int] = TableModel(
            trial_columns(self.params, self.metric, self.maximizing), now=self._now,
            sort_column="n")
        self.model.reverse = True  # newest trial first
        self.rows: dict[int, TrialRow] = {}
        self.snapshot: SweepTrials | None = None
        self.pods: list[Any] = []
        self._pod_rows: list[tuple] = []
        self._summary: Text | None = None
        self._importances: tuple = ()
        self.all_curves = True
        self._loading = False
        self.loads = 0  # polls answered (tests)
        self.error = ""
        self.last_apply_s = 0.0  # UI-thread time of the last trials update (the benchmark)
        self.last_apply_cpu_s = 0.0  # the same, CPU time of the UI thread only

    @property
    def fleet(self) -> FleetApp:
        return cast("FleetApp", self.app)  # Textual types `app` as any App

    def _job_from_app(self) -> TrainingJob | None:
        try:
            return self.fleet.jobs.records.get(self.sweep_key)
        except Exception:  # noqa: BLE001 - constructed before the app runs (tests)
            return None

    def _now(self) -> Any:
        return self.fleet.clock()

    def job(self) -> TrainingJob | None:
        return self.fleet.jobs.records.get(self.sweep_key)

    # -- layout --------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield Static(id="sweep-summary")
        with Horizontal(id="sweep-body"):
            with Vertical(id="trials-box"):
                yield TrialTable(self.model, id="trials")
            with Vertical(id="plots-box"):
                yield BackgroundPlot(draw_best, placeholder="reading the trials…",
                                     id="best-plot")
                yield BackgroundPlot(_draw_curves, placeholder="", id="curve-plot")
                yield Static(id="importances")
        with Vertical(id="pods-box"):
            yield DataTable(id="sweep-pods", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sweep-pods", DataTable).add_columns(*POD_COLUMNS)
        self.query_one("#importances", Static).update(importance_text(()))
        self.query_one("#importances").border_title = "parameter importances"
        self.query_one("#pods-box").border_title = "worker pods"
        self._set_trials_title()
        self._update_summary()
        self.query_one("#trials", TrialTable).focus()
        self.poll()
        if self.poll_s:
            self.set_interval(self.poll_s, self.poll)
        age_s = getattr(self.fleet, "age_refresh_s", 0)
        if age_s:
            self.set_interval(min(age_s, 10.0), self._refresh_durations)

    def _set_trials_title(self) -> None:
        s = self.snapshot
        title = f"trials[{len(self.rows)}]"
        if s is not None and not s.found:
            title += " (no trials ConfigMap yet)"
        elif s is not None and s.problems:
            title += f" ({s.problems} malformed rows left out)"
        if self.error:
            title += " — " + self.error
        self.query_one("#trials-box").border_title = title

    # -- loading (worker) -----------------------------------------------------------------
    def poll(self) -> None:
        """Start one read unless one is in flight (a slow API never piles reads up), or a
        full screen (the log view) hides this one; a dialog on top does not stop it."""
        if self._loading or self.fleet.backend is None:
            return
        front = self.app.screen
        if front is not self and not front.is_modal:
            return
        self._loading = True
        self.load()

    def on_screen_resume(self) -> None:
        if self.loads:  # back from the log view: read now, not at the next tick
            self.poll()

    @work(thread=True, exit_on_error=False, group="sweep-load")
    def load(self) -> None:
        try:
            msg = self._read()
        except Exception as exc:  # noqa: BLE001 - a bug here must not stop the polling
            msg = SweepLoaded(error=f"cannot show the sweep: {_err(exc)}")
        self.post_message(msg)

    def _read(self) -> SweepLoaded:
        """The worker's part: read, parse, diff against the rows shown, render the cells."""
        ns, name = self.sweep_key
        backend = self.fleet.backend
        errors = []
        snap = self.snapshot
        try:
            with gc_paused():  # the JSON document is garbage right after (tui/gcpause.py)
                snap = connected(backend).sweep_trials(ns, name)
        except Exception as exc:  # noqa: BLE001 - said in the title, never a crash
            errors.append(f"cannot read trials: {_err(exc)}")
        pods = None
        try:
            pods = connected(backend).sweep_pods(ns, name)
        except Exception as exc:  # noqa: BLE001
            errors.append(f"cannot list pods: {_err(exc)}")
        msg = SweepLoaded(pods=pods, error="; ".join(errors) or None)
        if snap is not None and snap is not self.snapshot:
            job = self.job()
            maximize = summary_of(job).maximize if job else True
            shown = self.rows  # replaced only by the UI thread, after this message
            rows = trial_rows(snap.trials, maximize, shown)
            msg.rows = rows
            msg.upserts = [r for n, r in rows.items()
                           if (old := shown.get(n)) is not r and old != r]
            msg.deletes = [n for n in shown if n not in rows]
            msg.snapshot = snap
            msg.model = model = self.model
            msg.rendered = model.prerender(msg.upserts)  # the cells, off the UI thread
            msg.best = best_series(snap.trials, maximize, self.metric)
        return msg

    def on_sweep_loaded(self, message: SweepLoaded) -> None:
        self._loading = False
        self.loads += 1
        if (message.error or "") != self.error:
            self.error = message.error or ""
            if self.error:
                self.notify(self.error, title=f"sweep {self.sweep_key[1]}", severity="error")
            self._set_trials_title()
        if message.rows is not None:
            self.show_trials(message)
        if message.pods is not None:
            self._show_pods(message.pods)

    def show_trials(self, message: SweepLoaded) -> None:
        """Apply a read: changed rows only, plots only when their data changed."""
        started, cpu_started = time.perf_counter(), time.thread_time()
        snap: SweepTrials = message.snapshot
        job = self.job()
        table = self.query_one("#trials", TrialTable)
        params = param_names(job.sweep if job else None, snap.trials)
        metric = summary_of(job).metric if job else self.metric
        maximize = summary_of(job).maximize if job else self.maximizing
        first = not self.rows
        with self.app.batch_update():
            if (params, metric, maximize) != (self.params, self.metric, self.maximizing):
                self._rebuild_columns(params, metric, maximize, message.rows or {})
            else:
                rendered = message.rendered if message.model is self.model else None
                table.apply(self.model.apply(message.upserts or [], message.deletes or [],
                                             rendered))
            if first and table.row_count:
                table.move_cursor(row=0, animate=False)  # the newest trial
            self.rows = message.rows or {}
            self.snapshot = snap
            if snap.importances != self._importances:
                self._importances = snap.importances
                self.query_one("#importances", Static).update(importance_text(snap.importances))
            self._set_trials_title()
        self.query_one("#best-plot", BackgroundPlot).set_data(message.best)
        self._update_curves()
        self._show_pods(self.pods)  # which trial runs on which pod
        self.last_apply_s = time.perf_counter() - started
        self.last_apply_cpu_s = time.thread_time() - cpu_started

    def _rebuild_columns(self, params: tuple[str, ...], metric: str, maximize: bool,
                         rows: dict[int, TrialRow]) -> None:
        """The search space (or the objective) is first known, or changed: new columns."""
        self.params, self.metric, self.maximizing = params, metric, maximize
        old = self.model
        self.model = TableModel(trial_columns(params, metric, maximize), now=self._now,
                                sort_column="n")
        if old.sort_column in {c.key for c in self.model.columns}:
            self.model.set_sort(old.sort_column, old.reverse)
        else:
            self.model.reverse = True
        table = self.query_one("#trials", TrialTable)
        keep = table.cursor_key()
        self.model.apply(rows.values(), [])
        table.set_model(self.model)
        if keep is not None:
            table.move_to(keep)

    def _show_pods(self, pods: list[Any]) -> None:
        """Refill the (small) pods table only when a row changed."""
        trials = self.snapshot.trials if self.snapshot is not None else ()
        rows = pod_table_rows(pods, trials, self.fleet.clock())
        self.pods = list(pods)
        if rows != self._pod_rows:
            self._pod_rows = rows
            table = self.query_one("#sweep-pods", DataTable)
            keep = table.cursor_row
            table.clear()
            for row in rows:
                table.add_row(*row)
            if rows:
                table.move_cursor(row=min(keep, len(rows) - 1), animate=False)
            self.query_one("#pods-box").border_title = f"worker pods[{len(rows)}]"
        self._update_summary()

    def _refresh_durations(self) -> None:
        self.query_one("#trials", TrialTable).apply(self.model.refresh_ages())

    # -- summary and live Job changes ---------------------------------------------------------
    def _update_summary(self) -> None:
        job = self.job()
        box = self.query_one("#sweep-summary", Static)
        if job is None:
            box.update(Text(f"{self.sweep_key[0]}/{self.sweep_key[1]}: no such sweep (deleted, "
                            "or not in the watched namespaces)", style="red"))
            self._summary = None
            return
        text = summary_text(job, self.fleet.clock(), self.pods)
        if text != self._summary:
            self._summary = text
            box.update(text)

    def observe_jobs(self, changed: dict[Key, Any], deleted: set[Key]) -> None:
        """Called by the app with every batch of Job changes (the summary annotation)."""
        if self.sweep_key in changed or self.sweep_key in deleted:
            self._update_summary()

    # -- curves -------------------------------------------------------------------------------
    def selected_trial(self) -> int | None:
        return self.query_one("#trials", TrialTable).cursor_key()

    def _update_curves(self) -> None:
        trials = self.snapshot.trials if self.snapshot is not None else ()
        self.query_one("#curve-plot", BackgroundPlot).set_data(
            CurveRequest(trials, self.selected_trial(), self.all_curves, self.metric))

    @on(KeyedTable.RowHighlighted, "#trials")
    def _trial_highlighted(self, _event: KeyedTable.RowHighlighted) -> None:
        if self.snapshot is not None:
            self._update_curves()

    def action_toggle_curves(self) -> None:
        self.all_curves = not self.all_curves
        self.notify("intermediate values: " + ("every trial (newest first) and the running "
                                               "ones" if self.all_curves else
                                               "the highlighted trial only"), timeout=3)
        self._update_curves()

    @on(KeyedTable.RowSelected, "#trials")
    def _trial_selected(self, _event: KeyedTable.RowSelected) -> None:
        n = self.selected_trial()
        row = self.rows.get(n) if n is not None else None
        if row is not None:
            self.notify(trial_details(row.trial, self.metric or "value"),
                        title=f"trial #{n} of {self.sweep_key[1]}", timeout=15, markup=False)

    # -- sorting -----------------------------------------------------------------------------
    def sort_by(self, column: str, reverse: bool | None = None) -> None:
        table = self.query_one("#trials", TrialTable)
        if column not in {c.key for c in self.model.columns}:
            return
        if column == "value" and reverse is None and self.model.sort_column != "value":
            reverse = self.maximizing  # the best first
        self.model.set_sort(column, reverse)
        table.resort()  # the headers show the arrow; the cursor stays on its row

    def action_sort_picker(self) -> None:
        opts = [(c.key, c.label) for c in self.model.columns]

        def picked(col: str | None) -> None:
            if col:
                self.sort_by(col)

        self.app.push_screen(PickerScreen("Sort trials by column (again to reverse)", opts,
                                          self.model.sort_column), picked)

    def _sort_step(self, step: int) -> None:
        keys = [c.key for c in self.model.columns]
        i = (keys.index(self.model.sort_column) + step) % len(keys)
        self.sort_by(keys[i], reverse=False)

    def action_sort_next(self) -> None:
        self._sort_step(1)

    def action_sort_prev(self) -> None:
        self._sort_step(-1)

    @on(KeyedTable.HeaderSelected, "#trials")
    def _header_clicked(self, event: KeyedTable.HeaderSelected) -> None:
        self.sort_by(event.column_key)

    # -- pods and logs -----------------------------------------------------------------------
    def highlighted_pod(self) -> str | None:
        """The pod the keys act on: the highlighted pod row when the pods table has the focus,
        else the pod of the highlighted trial."""
        pods_table = self.query_one("#sweep-pods", DataTable)
        if pods_table.has_focus and self.pods:
            i = pods_table.cursor_row
            return self.pods[i].name if 0 <= i < len(self.pods) else None
        n = self.selected_trial()
        row = self.rows.get(n) if n is not None else None
        return row.trial.pod if row is not None and row.trial.pod else None

    def action_pod_logs(self) -> None:
        from tui.screens.logs import LogScreen

        if self.fleet.refuse("logs"):
            return
        ns = self.sweep_key[0]
        pod = self.highlighted_pod()
        if pod is not None:
            self.app.push_screen(LogScreen(ns, pod))
            return
        if not self.pods:
            self.notify(f"sweep {self.sweep_key[1]} has no worker pods", severity="warning")
            return
        if len(self.pods) == 1:
            self.app.push_screen(LogScreen(ns, self.pods[0].name))
            return
        running = [p for p in self.pods if p.phase == "Running"] or self.pods
        opts = [(p.name, f"{p.name}  {p.phase}") for p in self.pods]
        self.app.push_screen(PickerScreen(f"Logs of a worker pod of {self.sweep_key[1]}", opts,
                                          running[0].name),
                             lambda choice: choice and self.app.push_screen(
                                 LogScreen(ns, choice)))

    def action_back(self) -> None:
        self.app.pop_screen()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pod_logs":
            return None if self.fleet.denied("logs") is not None else True
        return True


def _err(exc: BaseException) -> str:
    return getattr(exc, "message", None) or str(exc) or type(exc).__name__
