"""The main screen: deployments, jobs and sweeps tables, filter bar, marks, sorting, problem
jumps. `J` cycles the views (deployments → jobs → sweeps), `w` goes to the sweeps and back."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Input, Static

from tui.screens.picker import PickerScreen
from tui.viewmodel.columns import SCHEDULE_COLUMNS, job_summary, schedule_summary
from tui.viewmodel.filtering import RowFilter, SelectorError, is_problem
from tui.viewmodel.sweep_render import SWEEP_COLUMNS
from tui.viewmodel.table import Key, TableModel
from tui.widgets.banner import ConnectionBanner
from tui.widgets.fleet_table import FleetTable, KeyedTable
from tui.widgets.progress import RolloutProgress

if TYPE_CHECKING:
    from textual.timer import Timer

    from tui.app import FleetApp

FILTER_DEBOUNCE = 0.08
VIEWS = ("deployments", "jobs", "sweeps")
TABLES = {"deployments": "#dep-table", "jobs": "#job-table", "sweeps": "#sweep-table"}


class MainScreen(Screen):
    """Bindings here only act on the tables; write actions live on the app."""

    BINDINGS = [
        Binding("slash", "filter", "Filter", id="main.filter"),
        Binding("escape", "clear", "Clear", show=False, id="main.clear"),
        Binding("exclamation_mark", "problems", "Problems", id="main.problems"),
        Binding("n", "next_problem", "Next problem", id="main.next_problem"),
        Binding("space", "mark", "Mark", id="main.mark"),
        Binding("A", "mark_all", "Mark all", show=False, id="main.mark_all"),
        Binding("c", "clear_marks", "Clear marks", show=False, id="main.clear_marks"),
        Binding("S", "sort_picker", "Sort", id="main.sort"),
        Binding("right_square_bracket", "sort_next", "Sort next col", show=False,
                id="main.sort_next"),
        Binding("left_square_bracket", "sort_prev", "Sort prev col", show=False,
                id="main.sort_prev"),
        Binding("J", "toggle_view", "Views", id="main.toggle_view"),
        Binding("w", "sweeps_view", "Sweeps", id="main.sweeps_view"),
    ]

    def __init__(self, deployments: TableModel[Key], jobs: TableModel[Key],
                 schedules: TableModel[Key] | None = None,
                 sweeps: TableModel[Key] | None = None) -> None:
        super().__init__()
        self.deployments = deployments
        self.jobs = jobs
        self.schedules: TableModel[Key] = schedules or TableModel(SCHEDULE_COLUMNS)
        self.sweeps: TableModel[Key] = sweeps or TableModel(SWEEP_COLUMNS)
        self.view = "deployments"
        self._filter_timer: Timer | None = None

    @property
    def fleet(self) -> FleetApp:
        return cast("FleetApp", self.app)  # Textual types `app` as any App

    def compose(self) -> ComposeResult:
        yield ConnectionBanner(id="banner")
        yield Static(id="context-bar")
        with ContentSwitcher(initial="deployments-pane", id="switcher"):
            with Vertical(id="deployments-pane", classes="pane"):
                yield FleetTable(self.deployments, id="dep-table")
            with Vertical(id="jobs-pane", classes="pane"):
                yield FleetTable(self.jobs, id="job-table")
                # re-training CronJobs, under the jobs they start (hidden while there are none)
                with Vertical(id="schedules-box"):
                    yield FleetTable(self.schedules, id="schedule-table")
            with Vertical(id="sweeps-pane", classes="pane"):
                yield FleetTable(self.sweeps, id="sweep-table")
        yield Static(id="perm-line")
        yield Input(id="filter", placeholder="fuzzy filter; -l key=value for labels; Esc clears")
        yield RolloutProgress(id="progress")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.update_titles()
        self.query_one("#dep-table").focus()
        self.fleet.main_ready()

    # -- helpers -------------------------------------------------------------------
    @property
    def table(self) -> FleetTable:
        """The table the keys act on: in the jobs view, the schedules table when focused."""
        if self.view != "jobs":
            return self.query_one(TABLES[self.view], FleetTable)
        sched = self.query_one("#schedule-table", FleetTable)
        return sched if sched.has_focus else self.query_one("#job-table", FleetTable)

    @property
    def model(self) -> TableModel[Key]:
        return self.table.model

    def _filtered(self) -> list[tuple[TableModel[Key], FleetTable]]:
        """The tables a filter applies to: the jobs view filters jobs and schedules alike."""
        if self.view == "deployments":
            return [(self.deployments, self.query_one("#dep-table", FleetTable))]
        if self.view == "sweeps":
            return [(self.sweeps, self.query_one("#sweep-table", FleetTable))]
        return [(self.jobs, self.query_one("#job-table", FleetTable)),
                (self.schedules, self.query_one("#schedule-table", FleetTable))]

    def scope_label(self) -> str:
        return self.fleet.scope_label()

    def update_titles(self) -> None:
        for model, pane, kind in ((self.deployments, "#deployments-pane", "deployments"),
                                  (self.jobs, "#jobs-pane", "jobs"),
                                  (self.sweeps, "#sweeps-pane", "sweeps")):
            title = f"{kind}({self.scope_label()})[{len(model.shown)}]"
            if model.filter.text:
                title += f" </{model.filter.text}>"
            if model.filter.problems_only:
                title += " <problems>"
            if kind == "deployments" and model.marked:
                title += f" marked:{len(model.marked)}"
            self.query_one(pane).border_title = title
        box = self.query_one("#schedules-box")
        box.display = bool(self.schedules.records)
        title = f"re-training schedules({self.scope_label()})[{len(self.schedules.shown)}]"
        if self.schedules.filter.text:
            title += f" </{self.schedules.filter.text}>"
        box.border_title = title

    def set_context_bar(self, text: Text | str) -> None:
        self.query_one("#context-bar", Static).update(text)

    def set_perm_line(self, text: str) -> None:
        line = self.query_one("#perm-line", Static)
        line.update(Text(text, style="yellow") if text else "")
        line.display = bool(text)

    # -- filter ----------------------------------------------------------------------
    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.value = self.model.filter.text
        box.focus()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if self._filter_timer is not None:
            self._filter_timer.stop()
        self.apply_filter(event.value)
        event.input.display = False
        self.table.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        """Filter as you type, debounced so a burst of keys costs one table update."""
        if not event.input.has_focus:
            return
        if self._filter_timer is not None:
            self._filter_timer.stop()
        value = event.value
        self._filter_timer = self.set_timer(FILTER_DEBOUNCE,
                                            lambda: self.apply_filter(value, quiet=True))

    def apply_filter(self, text: str, quiet: bool = False) -> None:
        try:
            flt = RowFilter.parse(text, problems_only=self.model.filter.problems_only)
        except SelectorError as exc:
            if not quiet:
                self.notify(str(exc), severity="error")
            return
        if flt == self.model.filter:
            return
        with self.app.batch_update():
            for model, table in self._filtered():
                table.apply(model.set_filter(flt))
            self.update_titles()

    def action_clear(self) -> None:
        box = self.query_one("#filter", Input)
        if box.display:
            box.display = False
            self.table.focus()
        if self.model.filter.active:
            with self.app.batch_update():
                for model, table in self._filtered():
                    table.apply(model.set_filter(RowFilter()))
                self.update_titles()
        elif self.deployments.marked:
            self.action_clear_marks()

    def action_problems(self) -> None:
        if self.view != "deployments":
            return
        cur = self.deployments.filter
        flt = RowFilter.parse(cur.text, problems_only=not cur.problems_only)
        with self.app.batch_update():
            self.table.apply(self.deployments.set_filter(flt))
            self.update_titles()

    def action_next_problem(self) -> None:
        if self.view != "deployments":
            return
        order = self.deployments.ordered()
        if not order:
            return
        cur = self.table.cursor_key()
        start = order.index(cur) + 1 if cur in order else 0
        for key in order[start:] + order[:start]:
            if is_problem(self.deployments.records[key]):
                self.table.move_to(key)
                return
        self.notify("no stalled rollouts, unready pods or crash loops in view")

    # -- marks -----------------------------------------------------------------------
    def action_mark(self) -> None:
        key = self.table.cursor_key()
        if key is None or self.view != "deployments":
            return
        self.table.apply(self.deployments.toggle_marks([key]))
        self.update_titles()
        self.table.action_cursor_down()

    def action_mark_all(self) -> None:
        if self.view == "deployments":
            self.table.apply(self.deployments.toggle_marks(list(self.deployments.shown), on=True))
            self.update_titles()

    def action_clear_marks(self) -> None:
        self.table.apply(self.deployments.toggle_marks(list(self.deployments.marked), on=False))
        self.update_titles()

    # -- sorting ---------------------------------------------------------------------
    def sort_by(self, column: str, reverse: bool | None = None,
                table: FleetTable | None = None) -> None:
        table = table or self.table
        model = table.model
        if column not in {c.key for c in model.columns}:
            return
        model.set_sort(column, reverse)
        table.resort()  # the headers show the arrow; the cursor stays on its row

    def action_sort_picker(self) -> None:
        table = self.table  # the picker takes the focus: remember which table it sorts
        opts = [(c.key, c.label) for c in table.model.columns]

        def picked(col: str | None) -> None:
            if col:
                self.sort_by(col, table=table)

        self.app.push_screen(PickerScreen("Sort by column (again to reverse)", opts,
                                          table.model.sort_column), picked)

    def _sort_step(self, step: int) -> None:
        keys = [c.key for c in self.model.columns]
        i = (keys.index(self.model.sort_column) + step) % len(keys)
        self.sort_by(keys[i], reverse=False)

    def action_sort_next(self) -> None:
        self._sort_step(1)

    def action_sort_prev(self) -> None:
        self._sort_step(-1)

    @on(KeyedTable.HeaderSelected)
    def _header_clicked(self, event: KeyedTable.HeaderSelected) -> None:
        if isinstance(event.table, FleetTable):
            self.sort_by(event.column_key, table=event.table)

    # -- views -----------------------------------------------------------------------
    def show_view(self, view: str) -> None:
        if view not in VIEWS:
            return
        self.view = view
        self.query_one("#switcher", ContentSwitcher).current = f"{self.view}-pane"
        self.table.focus()
        self.fleet.refresh_permissions_view()
        self.app.refresh_bindings()

    def action_toggle_view(self) -> None:
        """`J`: deployments → jobs → sweeps → deployments."""
        self.show_view(VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)])

    def action_sweeps_view(self) -> None:
        """`w`: the sweeps, and back to the deployments."""
        self.show_view("deployments" if self.view == "sweeps" else "sweeps")

    @on(KeyedTable.RowSelected, "#sweep-table")
    def _sweep_selected(self, event: KeyedTable.RowSelected) -> None:
        self.fleet.open_sweep()

    @on(KeyedTable.RowHighlighted, "#sweep-table")
    def _sweep_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        self.app.refresh_bindings()

    @on(KeyedTable.RowSelected, "#dep-table")
    def _row_selected(self, event: KeyedTable.RowSelected) -> None:
        self.fleet.action_detail()

    @on(KeyedTable.RowSelected, "#job-table")
    def _job_selected(self, event: KeyedTable.RowSelected) -> None:
        key = self.query_one("#job-table", FleetTable).cursor_key()
        rec = self.jobs.records.get(key) if key else None
        if rec is not None:
            self.notify(job_summary(rec), title=f"job {rec.namespace}/{rec.name}", timeout=15,
                        markup=False)

    @on(KeyedTable.RowSelected, "#schedule-table")
    def _schedule_selected(self, event: KeyedTable.RowSelected) -> None:
        key = self.query_one("#schedule-table", FleetTable).cursor_key()
        rec = self.schedules.records.get(key) if key else None
        if rec is not None:
            self.notify(schedule_summary(rec), title=f"cronjob {rec.namespace}/{rec.name}",
                        timeout=15, markup=False)

    @on(KeyedTable.RowHighlighted, "#dep-table")
    def _row_highlighted(self, event: KeyedTable.RowHighlighted) -> None:
        self.fleet.refresh_permissions_view()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("problems", "next_problem", "mark", "mark_all", "clear_marks"):
            return self.view == "deployments"
        return True
