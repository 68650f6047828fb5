"""Detail screen of one deployment: revisions + template diff, pods, probes, events."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from fleet.model import Revision
from tui.messages import DetailLoaded
from tui.plans import template_diff
from tui.render_detail import age, event_rows, pod_rows, probe_report, summary

if TYPE_CHECKING:
    from tui.app import FleetApp

Key = tuple[str, str]
TABS = ("revisions", "pods", "probes", "events")
RELOAD_INTERVAL = 1.0


class DeploymentScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back"),
        Binding("1", "tab('revisions')", "Revisions", show=False, id="detail.tab_revisions"),
        Binding("2", "tab('pods')", "Pods", show=False, id="detail.tab_pods"),
        Binding("3", "tab('probes')", "Probes", show=False, id="detail.tab_probes"),
        Binding("4", "tab('events')", "Events", show=False, id="detail.tab_events"),
        Binding("e", "tab('events')", "Events", id="detail.events"),
        Binding("b", "diff_base", "Diff base", id="detail.diff_base"),
    ]

    def __init__(self, key: Key, tab: str = "revisions") -> None:
        super().__init__()
        self.deployment_key = key
        self.initial_tab = tab
        self.revisions: list[Revision] = []
        self.diff_base: int | None = None
        self._last_reload = 0.0
        self._reload_armed = False

    @property
    def fleet(self) -> FleetApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="summary")
        with TabbedContent(initial=self.initial_tab, id="tabs"):
            with TabPane("Revisions [1]", id="revisions"):
                yield DataTable(id="revs", cursor_type="row")
                with VerticalScroll(id="diff-scroll"):
                    yield Static("loading history…", id="diff")
            with TabPane("Pods [2]", id="pods"):
                yield DataTable(id="pods-table", cursor_type="row")
            with TabPane("Probes [3]", id="probes"), VerticalScroll(id="probe-scroll"):
                yield Static("inspecting probes…", id="probe-report")
            with TabPane("Events [4]", id="events"):
                yield DataTable(id="events-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        revs = self.query_one("#revs", DataTable)
        revs.add_columns("REV", "VERSION", "MODEL URI", "IMAGE", "CHANGE-CAUSE", "AGE", "")
        self.query_one("#pods-table", DataTable).add_columns(
            "NAME", "READY", "STATUS", "RESTARTS", "NODE", "AGE")
        self.query_one("#events-table", DataTable).add_columns(
            "LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE")
        self._update_summary()
        self.load("history")
        self.load("pods")
        self.load("events")
        self.load("probes")
        self.show_tab(self.initial_tab)

    # -- loading -----------------------------------------------------------------------
    @work(thread=True, exit_on_error=False, group="detail")
    def load(self, part: str) -> None:
        ns, name = self.deployment_key
        backend = self.fleet.backend
        try:
            if backend is None:
                raise RuntimeError("not connected")
            if part == "history":
                payload: Any = backend.history(ns, name)[1]
            elif part == "pods":
                payload = backend.pods(ns, name)
            elif part == "events":
                payload = backend.events(ns, name)
            else:
                payload = backend.probes(ns, name)
        except Exception as exc:  # noqa: BLE001 - shown in the tab
            self.post_message(DetailLoaded(part, None, getattr(exc, "message", None) or str(exc)))
            return
        self.post_message(DetailLoaded(part, payload))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.error:
            target = {"history": "#diff", "probes": "#probe-report"}.get(message.part)
            if target:
                self.query_one(target, Static).update(Text(message.error, style="red"))
            else:
                self.notify(message.error, title=f"cannot load {message.part}", severity="error")
            return
        if message.part == "history":
            self._show_revisions(message.payload)
        elif message.part == "pods":
            self._fill(self.query_one("#pods-table", DataTable),
                       pod_rows(message.payload, self.fleet.clock()))
        elif message.part == "events":
            self._fill(self.query_one("#events-table", DataTable),
                       event_rows(message.payload, self.fleet.clock()))
        elif message.part == "probes":
            self.query_one("#probe-report", Static).update(
                probe_report(message.payload, self.fleet.clock()))

    @staticmethod
    def _fill(table: DataTable, rows: list[tuple[str, ...]]) -> None:
        keep = table.cursor_row
        table.clear()
        for row in rows:
            table.add_row(*row)
        if rows:
            table.move_cursor(row=min(keep, len(rows) - 1), animate=False)

    def _show_revisions(self, revisions: list[Revision]) -> None:
        self.revisions = sorted(revisions, key=lambda r: r.revision, reverse=True)
        table = self.query_one("#revs", DataTable)
        keep = table.cursor_row
        table.clear()
        for r in self.revisions:
            table.add_row(str(r.revision), r.version or "-", r.model_uri or "-", r.image,
                          r.change_cause or "-", age(r.created, self.fleet.clock()),
                          Text("current", style="bold green") if r.current else "",
                          key=str(r.revision))
        if self.revisions:
            table.move_cursor(row=min(keep, len(self.revisions) - 1), animate=False)
        self._show_diff()

    # -- revisions & diff ---------------------------------------------------------------
    def _highlighted_revision(self) -> Revision | None:
        table = self.query_one("#revs", DataTable)
        if not self.revisions or table.cursor_row >= len(self.revisions):
            return None
        return self.revisions[table.cursor_row]

    def _show_diff(self) -> None:
        target = self._highlighted_revision()
        diff = self.query_one("#diff", Static)
        if target is None:
            diff.update(Text("no rollout history", style="dim"))
            return
        base_rev = self.diff_base
        base = next((r for r in self.revisions if r.revision == base_rev), None)
        if base is None:
            base = next((r for r in self.revisions if r.current), None)
        if base is None or base.revision == target.revision:
            older = [r for r in self.revisions if r.revision < target.revision]
            if not older:
                diff.update(Text(f"revision {target.revision}: the oldest revision kept",
                                 style="dim"))
                return
            base = older[0]
        head = Text.assemble(("pod template diff ", "bold"),
                             f"revision {base.revision} → revision {target.revision}",
                             ("   (Enter: roll back to the highlighted revision; "
                              "b: use it as the diff base)", "dim"), "\n")
        diff.update(head + template_diff(base, target))

    @on(DataTable.RowHighlighted, "#revs")
    def _rev_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_diff()

    @on(DataTable.RowSelected, "#revs")
    def _rev_selected(self, _event: DataTable.RowSelected) -> None:
        target = self._highlighted_revision()
        dep = self.fleet.deployments.records.get(self.deployment_key)
        if target is None or dep is None:
            return
        if self.fleet._refuse("rollback"):
            return
        if target.current:
            self.notify(f"revision {target.revision} is already the current one",
                        severity="warning")
            return
        self.fleet.plan_rollback(dep, target.revision)

    def action_diff_base(self) -> None:
        target = self._highlighted_revision()
        if target is not None:
            self.diff_base = None if self.diff_base == target.revision else target.revision
            self.notify(f"diff base: revision {self.diff_base}" if self.diff_base
                        else "diff base: the current revision")
            self._show_diff()

    # -- tabs & live updates ----------------------------------------------------------------
    def show_tab(self, tab: str) -> None:
        if tab in TABS:
            self.query_one("#tabs", TabbedContent).active = tab
            focus = {"revisions": "#revs", "pods": "#pods-table", "events": "#events-table",
                     "probes": "#probe-scroll"}
            self.query_one(focus[tab]).focus()

    def action_tab(self, tab: str) -> None:
        self.show_tab(tab)

    def action_back(self) -> None:
        self.app.pop_screen()

    def _update_summary(self) -> None:
        dep = self.fleet.deployments.records.get(self.deployment_key)
        if dep is None:
            self.query_one("#summary", Static).update(
                Text(f"{self.deployment_key[0]}/{self.deployment_key[1]}: deleted", style="red"))
            return
        hist = list(self.fleet.ready_history.get(self.deployment_key, ()))
        self.query_one("#summary", Static).update(summary(dep, hist))

    def observe(self, changed: dict[Key, Any]) -> None:
        """Called by the app with each batch; reload our parts at most once a second."""
        if self.deployment_key not in changed:
            return
        self._update_summary()
        wait = self._last_reload + RELOAD_INTERVAL - time.monotonic()
        if wait > 0:
            if not self._reload_armed:
                self._reload_armed = True
                self.set_timer(wait, self._reload)
            return
        self._reload()

    def _reload(self) -> None:
        self._reload_armed = False
        self._last_reload = time.monotonic()
        dep = self.fleet.deployments.records.get(self.deployment_key)
        for part in ("pods", "events", "probes"):
            self.load(part)
        if dep is not None and (not self.revisions or
                                dep.revision != max(r.revision for r in self.revisions)):
            self.load("history")
