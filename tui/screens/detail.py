"""Detail screen of one deployment: revisions + template diff, pods, probes, events, scaling.

Pod keys: `l` logs of the highlighted pod (Pods tab) or a picked one, `P` runs a pod's
readiness probe now, `x` sends the example prediction (both through the API's port-forward)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static, TabbedContent, TabPane

from fleet.model import Revision
from tui.backend import connected
from tui.messages import DetailLoaded, PodCheckFinished
from tui.screens.confirm import InfoScreen
from tui.screens.picker import PickerScreen
from tui.viewmodel.detail import (
    age,
    event_rows,
    hpa_line,
    hpa_report,
    pod_rows,
    pod_status,
    predict_result_lines,
    probe_report,
    probe_result_lines,
    summary,
)
from tui.viewmodel.plans import template_diff

if TYPE_CHECKING:
    from tui.app import FleetApp

Key = tuple[str, str]
TABS = ("revisions", "pods", "probes", "events", "scaling")
AUTO_POD = "*auto"
RELOAD_INTERVAL = 1.0


class DeploymentScreen(Screen):
    BINDINGS = [
        Binding("escape", "back", "Back", id="detail.back"),
        Binding("1", "tab('revisions')", "Revisions", show=False, id="detail.tab_revisions"),
        Binding("2", "tab('pods')", "Pods", show=False, id="detail.tab_pods"),
        Binding("3", "tab('probes')", "Probes", show=False, id="detail.tab_probes"),
        Binding("4", "tab('events')", "Events", show=False, id="detail.tab_events"),
        Binding("5", "tab('scaling')", "Scaling", show=False, id="detail.tab_scaling"),
        Binding("e", "tab('events')", "Events", id="detail.events"),
        Binding("b", "diff_base", "Diff base", id="detail.diff_base"),
        Binding("l", "pod_logs", "Logs", id="detail.logs"),
        Binding("P", "probe_now", "Probe now", id="detail.probe_now"),
        Binding("x", "predict", "Example predict", id="detail.predict"),
    ]

    def __init__(self, key: Key, tab: str = "revisions") -> None:
        super().__init__()
        self.deployment_key = key
        self.initial_tab = tab
        self.revisions: list[Revision] = []
        self.diff_base: int | None = None
        self._last_reload = 0.0
        self._reload_armed = False
        self.pods: list[Any] = []
        self._release_events: Callable[[], None] | None = None

    @property
    def fleet(self) -> FleetApp:
        return cast("FleetApp", self.app)  # Textual types `app` as any App

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
            with TabPane("Scaling [5]", id="scaling"):
                yield Static("reading the autoscaler…", id="hpa-report")
                yield DataTable(id="scaling-table", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        # Events are watched only for the namespace on screen (fleet.cache.watch_events)
        backend = self.fleet.backend
        if backend is not None:
            self._release_events = backend.hold_events(self.deployment_key[0])
        revs = self.query_one("#revs", DataTable)
        revs.add_columns("REV", "VERSION", "MODEL URI", "IMAGE", "CHANGE-CAUSE", "AGE", "")
        self.query_one("#pods-table", DataTable).add_columns(
            "NAME", "READY", "STATUS", "RESTARTS", "NODE", "AGE")
        self.query_one("#events-table", DataTable).add_columns(
            "LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE")
        self.query_one("#scaling-table", DataTable).add_columns(
            "LAST SEEN", "TYPE", "REASON", "OBJECT", "COUNT", "MESSAGE")
        self._update_summary()
        self.load("history")
        self.load("pods")
        self.load("events")
        self.load("probes")
        self.load("scaling")
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
            elif part == "scaling":
                payload = backend.scaling(ns, name)
            else:
                payload = backend.probes(ns, name)
        except Exception as exc:  # noqa: BLE001 - shown in the tab
            self.post_message(DetailLoaded(part, None, getattr(exc, "message", None) or str(exc)))
            return
        self.post_message(DetailLoaded(part, payload))

    def on_detail_loaded(self, message: DetailLoaded) -> None:
        if message.error:
            target = {"history": "#diff", "probes": "#probe-report",
                      "scaling": "#hpa-report"}.get(message.part)
            if target:
                self.query_one(target, Static).update(Text(message.error, style="red"))
            else:
                self.notify(message.error, title=f"cannot load {message.part}", severity="error")
            return
        if message.part == "history":
            self._show_revisions(message.payload)
        elif message.part == "pods":
            self.pods = list(message.payload)
            self._fill(self.query_one("#pods-table", DataTable),
                       pod_rows(message.payload, self.fleet.clock()))
        elif message.part == "scaling":
            hpa, events = message.payload
            self.query_one("#hpa-report", Static).update(hpa_report(hpa, self.fleet.clock()))
            self._fill(self.query_one("#scaling-table", DataTable),
                       event_rows(events, self.fleet.clock()))
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
        if self.fleet.refuse("rollback"):
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
                     "probes": "#probe-scroll", "scaling": "#scaling-table"}
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
        text = summary(dep, hist)
        if dep.hpa is not None:
            text.append("\n")
            text.append_text(hpa_line(dep.hpa))
        self.query_one("#summary", Static).update(text)

    def on_unmount(self) -> None:
        if self._release_events is not None:
            self._release_events()
            self._release_events = None

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
        for part in ("pods", "events", "probes", "scaling"):
            self.load(part)
        if dep is not None and (not self.revisions or
                                dep.revision != max(r.revision for r in self.revisions)):
            self.load("history")

    # -- pods: logs, probe now, example prediction ------------------------------------------
    def highlighted_pod(self) -> str | None:
        """The pod under the cursor when the Pods tab is shown."""
        if self.query_one("#tabs", TabbedContent).active != "pods" or not self.pods:
            return None
        row = self.query_one("#pods-table", DataTable).cursor_row
        return self.pods[row].name if 0 <= row < len(self.pods) else None

    def _pick_pod(self, title: str, then, auto: str | None = None) -> None:
        """The highlighted pod (Pods tab), else a picker of the deployment's pods."""
        pod = self.highlighted_pod()
        if pod is not None:
            then(pod)
            return
        if not self.pods and auto is None:
            self.notify(f"{self.deployment_key[1]} has no pods", severity="warning")
            return
        opts = ([(AUTO_POD, auto)] if auto else []) + [
            (p.name, f"{p.name}  {pod_status(p)}  {'ready' if p.ready else 'not ready'}")
            for p in self.pods]
        current = AUTO_POD if auto else next((p.name for p in self.pods if p.ready),
                                             self.pods[0].name)
        self.app.push_screen(PickerScreen(title, opts, current),
                             lambda choice: choice and then(None if choice == AUTO_POD
                                                            else choice))

    def action_pod_logs(self) -> None:
        from tui.screens.logs import LogScreen

        if self.fleet.refuse("logs"):
            return
        pod = self.highlighted_pod()
        if pod is not None:
            self.app.push_screen(LogScreen(self.deployment_key[0], pod))
        else:
            self.fleet.action_logs()

    def action_probe_now(self) -> None:
        if not self.fleet.refuse("probe_now"):
            self._pick_pod("Run the readiness probe now against…", self.run_probe)

    def action_predict(self) -> None:
        if not self.fleet.refuse("predict"):
            self._pick_pod("Send the example prediction to…", self.run_predict,
                           auto="the oldest Ready pod (as fleet predict)")

    @work(thread=True, exit_on_error=False, group="pod-check")
    def run_probe(self, pod: str) -> None:
        ns = self.deployment_key[0]
        self.notify(f"probing {ns}/{pod}…", timeout=2)
        try:
            r = connected(self.fleet.backend).probe_now(ns, pod)
        except Exception as exc:  # noqa: BLE001 - what failed, never a crash
            self.post_message(PodCheckFinished(f"probe now: {ns}/{pod} failed",
                                               [_failure(exc)], False))
            return
        self.post_message(PodCheckFinished(
            f"readiness probe of {ns}/{pod}: {r.status} ({'success' if r.ok else 'failure'})",
            probe_result_lines(r), r.ok))

    @work(thread=True, exit_on_error=False, group="pod-check")
    def run_predict(self, pod: str | None) -> None:
        ns, name = self.deployment_key
        self.notify(f"sending the example prediction to {pod or name}…", timeout=2)
        try:
            r = connected(self.fleet.backend).predict(ns, name, pod)
        except Exception as exc:  # noqa: BLE001 - no Ready pod, RBAC, unreachable: said
            self.post_message(PodCheckFinished(f"example prediction for {ns}/{name} failed",
                                               [_failure(exc)], False))
            return
        verdict = "ok" if r.ok else f"model answered {r.status}"
        self.post_message(PodCheckFinished(
            f"example prediction for {ns}/{name} on {r.pod}: {verdict}",
            predict_result_lines(r), r.ok))

    def on_pod_check_finished(self, message: PodCheckFinished) -> None:
        self.app.push_screen(InfoScreen(message.title, message.body, message.ok))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in ("probe_now", "predict", "pod_logs"):
            perm = {"pod_logs": "logs"}.get(action, action)
            return None if self.fleet.denied(perm) is not None else True
        return True


def _failure(exc: BaseException) -> Text:
    return Text(getattr(exc, "message", None) or str(exc) or type(exc).__name__, style="red")
