"""FleetApp: wires the watch cache to the tables and runs every API call in a worker."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from fleet.model import SWEEP_COMPONENT, ConnectionState, ModelDeployment, TrainingJob
from tui.actions import ActionsMixin, DeployMixin, DeployState, error_text
from tui.backend import PERMISSIONS, Backend, connected
from tui.messages import BackendReady, ChangesPending, PermissionsChecked
from tui.screens.main import MainScreen
from tui.screens.picker import PickerScreen
from tui.sweep_actions import SweepActionsMixin
from tui.throttle import Throttle
from tui.viewmodel.coalesce import ChangeBuffer
from tui.viewmodel.columns import DEPLOYMENT_COLUMNS, JOB_COLUMNS, SCHEDULE_COLUMNS, utcnow
from tui.viewmodel.keys import SWEEP_ACTIONS, WRITE_ACTIONS
from tui.viewmodel.sweep_render import SWEEP_COLUMNS
from tui.viewmodel.table import Key, TableModel
from tui.widgets.banner import ConnectionBanner
from tui.widgets.fleet_table import FleetTable
from tui.widgets.progress import RolloutProgress

if TYPE_CHECKING:
    from fleet.scope import WatchScope
    from tui.sweep_actions import CliRun
    from tui.terminal import TerminalRunner

log = logging.getLogger(__name__)
Factory = Callable[[str | None, list[str] | None], Backend]  # (context, namespaces)
MIN_APPLY_INTERVAL = 0.1  # seconds between two table batches (≈10 Hz at most)
TARGET_ACTIONS = WRITE_ACTIONS - {"undo_wave", "deploy", *SWEEP_ACTIONS} | {
    "detail", "probes", "history", "logs"}
# app action -> PERMISSIONS key; reads (logs, probe now, predict) are allowed in --readonly
PERM_OF = {"rollback": "rollback", "rollout": "rollout", "restart": "restart",
           "pause_resume": "pause", "scale": "scale", "undo_wave": "rollback",
           "deploy": "deploy", "logs": "logs", "probe_now": "portforward",
           "predict": "portforward"}


class FleetApp(ActionsMixin, DeployMixin, SweepActionsMixin, App):
    """The on-call TUI. `backend_factory(context, namespaces)` builds the cluster adapter."""

    CSS_PATH = "fleet.tcss"
    TITLE = "modelfleet"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="fleet.help"),
        Binding("q", "quit", "Quit", id="fleet.quit"),
        Binding("d", "detail", "Detail", show=False, id="fleet.detail"),
        Binding("p", "probes", "Probes", id="fleet.probes"),
        Binding("h", "history", "History", id="fleet.history"),
        Binding("u", "rollback", "Rollback", id="fleet.rollback"),
        Binding("s", "scale", "Scale", id="fleet.scale"),
        Binding("r", "restart", "Restart", id="fleet.restart"),
        Binding("z", "pause_resume", "Pause/Resume", id="fleet.pause_resume"),
        Binding("o", "rollout", "Rollout", id="fleet.rollout"),
        Binding("W", "undo_wave", "Undo recent", id="fleet.undo_wave"),
        Binding("D", "deploy", "Deploy", id="fleet.deploy"),
        Binding("l", "logs", "Logs", id="fleet.logs"),
        # sweeps (shown in the sweeps view and a sweep's detail only)
        Binding("L", "sweep_launch", "Launch", id="fleet.sweep_launch"),
        Binding("X", "sweep_stop", "Stop", id="fleet.sweep_stop"),
        Binding("R", "sweep_resume", "Resume", id="fleet.sweep_resume"),
        Binding("P", "sweep_promote", "Promote", id="fleet.sweep_promote"),
        Binding("N", "namespace", "Namespace", show=False, id="fleet.namespace"),
        Binding("C", "context", "Context", show=False, id="fleet.context"),
    ]

    def __init__(self, backend_factory: Factory, *, context: str | None = None,
                 namespaces: list[str] | None = None, readonly: bool = False,
                 age_refresh_s: float = 60.0, start_view: str = "deployments",
                 clock: Callable[[], datetime] = utcnow) -> None:
        super().__init__()
        self.backend_factory = backend_factory
        self.context_name = context
        self.namespaces = namespaces or None
        self.readonly = readonly
        self.age_refresh_s = age_refresh_s
        self.start_view = start_view
        self.backend: Backend | None = None
        self.clock = clock
        self.deployments: TableModel[Key] = TableModel(DEPLOYMENT_COLUMNS, now=clock)
        self.jobs: TableModel[Key] = TableModel(JOB_COLUMNS, now=clock)
        # re-training CronJobs
        self.schedules: TableModel[Key] = TableModel(SCHEDULE_COLUMNS, now=clock)
        # the sweep-worker Jobs of `jobs`
        self.sweeps: TableModel[Key] = TableModel(SWEEP_COLUMNS, now=clock)
        self.buffer = ChangeBuffer(lambda: self.post_message(ChangesPending()))
        self.connection: ConnectionState | None = ConnectionState.CONNECTING
        self.connection_error: str | None = None
        # (namespace, permission) -> (allowed: True/False, None when the check failed; reason)
        self.permissions: dict[tuple[str, str], tuple[bool | None, str]] = {}
        self.ready_history: dict[Key, deque[int]] = {}
        # the tables take the pending changes at most every MIN_APPLY_INTERVAL
        self.apply_throttle = Throttle(MIN_APPLY_INTERVAL, self._drain, self.set_timer)
        self._perm_state: str | None = None
        self._forbidden_text = ""  # resource types RBAC hides, per watched namespace
        self._rows_shown = False
        self.main = MainScreen(self.deployments, self.jobs, self.schedules, self.sweeps)
        self.ready_at: float | None = None  # monotonic time of the first full table
        self.deploys: dict[Key, DeployState] = {}
        self.cli_runs: dict[int, CliRun] = {}  # sweep actions: `fleet sweep …` subprocesses
        self._cli_seq = 0
        self.terminal_runner: TerminalRunner | None = None  # while mounted
        self._restore_terminal: Callable[[], None] | None = None

    # -- start-up ------------------------------------------------------------------
    def on_mount(self) -> None:
        from tui import terminal

        # exec plugins that need the terminal (interactiveMode Always) get it: suspended app
        self._restore_terminal = terminal.install(self)
        self.push_screen(self.main)

    def main_ready(self) -> None:
        """Called by MainScreen once composed: show the banner and connect."""
        self.main.query_one("#banner", ConnectionBanner).show_state(ConnectionState.CONNECTING)
        self._show_context()
        self.connect()
        if self.start_view != "deployments":
            self.call_after_refresh(self.main.show_view, self.start_view)
        if self.age_refresh_s:
            self.set_interval(self.age_refresh_s, self._refresh_ages)

    def _scope(self) -> WatchScope | None:
        """The backend's `fleet.scope.WatchScope` (what RBAC let it watch), if it has one."""
        return self.backend.scope if self.backend is not None else None

    def scope_label(self) -> str:
        if self.namespaces:
            return ",".join(self.namespaces)
        scope = self._scope()
        return ",".join(scope.namespaces) if scope is not None and scope.namespaces else "all"

    def _show_context(self) -> None:
        ctx = (self.backend.context if self.backend is not None else None) \
            or self.context_name or "current context"
        scope = self._scope()
        label = scope.label() if not self.namespaces and scope is not None else None
        text = Text.assemble(("context: ", "dim"), (str(ctx), "bold"), ("   namespace: ", "dim"),
                             (label or self.scope_label(), "bold"))
        if self.readonly:
            text.append("   [read-only]", style="bold magenta")
        self.main.set_context_bar(text)

    @work(thread=True, exit_on_error=False, group="backend", exclusive=True)
    def connect(self) -> None:
        backend = self.backend_factory(self.context_name, self.namespaces)
        try:
            backend.connect()
            self.backend = backend
            backend.start(self.buffer.push)
            self.buffer.push(backend.snapshot())
        except Exception as exc:  # noqa: BLE001 - shown in the banner, never a crash
            self.backend = backend
            self.post_message(BackendReady(error_text(exc)))
            return
        self.post_message(BackendReady())

    def on_backend_ready(self, message: BackendReady) -> None:
        if self._shutting_down():
            return
        self._show_context()
        scope = self._scope()
        if not message.error and scope is not None and scope.fallback:
            self.main.update_titles()
            self.notify(scope.reason, title="watching some namespaces", timeout=10)
        if message.error:
            self.connection_error = message.error
            banner = self.main.query_one("#banner", ConnectionBanner)
            banner.show_state(ConnectionState.RECONNECTING, message.error)
            self.notify(message.error, title="cannot connect", severity="error", timeout=10)

    # -- live data -------------------------------------------------------------------
    def _shutting_down(self) -> bool:
        """True once shutdown has begun: the screens' widgets are being removed, and a change
        the watch threads hand over now has nowhere to go (dropping it loses nothing)."""
        return not self.is_running

    def on_changes_pending(self, _message: ChangesPending) -> None:
        if self._shutting_down():
            return
        self.apply_throttle()

    def _drain(self) -> None:
        if self._shutting_down():
            return
        batch = self.buffer.drain()
        main = self.main
        with self.batch_update():
            if batch.deployments or batch.deployments_deleted:
                ops = self.deployments.apply(batch.deployments.values(), batch.deployments_deleted)
                main.query_one("#dep-table", FleetTable).apply(ops)
                for key, rec in batch.deployments.items():
                    hist = self.ready_history.get(key)
                    if hist is None:
                        hist = self.ready_history[key] = deque(maxlen=60)
                    if not hist or hist[-1] != rec.ready:
                        hist.append(rec.ready)
                for key in batch.deployments_deleted:
                    self.ready_history.pop(key, None)
                main.query_one("#progress", RolloutProgress).observe(batch.deployments)
            if batch.jobs or batch.jobs_deleted:
                main.query_one("#job-table", FleetTable).apply(
                    self.jobs.apply(batch.jobs.values(), batch.jobs_deleted))
                sweeps = [j for j in batch.jobs.values() if j.kind == SWEEP_COMPONENT]
                gone = [k for k in batch.jobs_deleted if k in self.sweeps.records] + [
                    j.key for j in batch.jobs.values()
                    if j.kind != SWEEP_COMPONENT and j.key in self.sweeps.records]
                if sweeps or gone:
                    main.query_one("#sweep-table", FleetTable).apply(
                        self.sweeps.apply(sweeps, gone))
            if batch.schedules or batch.schedules_deleted:
                main.query_one("#schedule-table", FleetTable).apply(
                    self.schedules.apply(batch.schedules.values(), batch.schedules_deleted))
            if batch.connection is not None:
                self.connection = batch.connection
                self.connection_error = batch.error
                main.query_one("#banner", ConnectionBanner).show_state(batch.connection,
                                                                       batch.error)
                if batch.connection is ConnectionState.SYNCED and self.ready_at is None:
                    self.ready_at = time.monotonic()
            main.update_titles()
        for screen in self.screen_stack:
            observe = getattr(screen, "observe", None)
            if observe is not None and screen is not main:
                observe(batch.deployments)
            observe_jobs = getattr(screen, "observe_jobs", None)
            if observe_jobs is not None and (batch.jobs or batch.jobs_deleted):
                observe_jobs(batch.jobs, batch.jobs_deleted)
        self._update_forbidden()
        if batch.deployments:
            self._check_new_namespaces({k[0] for k in batch.deployments})
            if not self._rows_shown:
                self._rows_shown = True
                self.call_after_refresh(self._tell_rows_shown)

    def _update_forbidden(self) -> None:
        """Show on the perm line which resource types RBAC hides in which namespace (once per
        change, not a 403 per retry)."""
        backend = self.backend
        text = "; ".join(backend.forbidden_lines()) if backend is not None else ""
        if text != self._forbidden_text:
            self._forbidden_text = text
            self.refresh_permissions_view()

    def _tell_rows_shown(self) -> None:
        if self.backend is not None:
            self.backend.rows_shown()

    def _refresh_ages(self) -> None:
        if self._shutting_down():
            return
        tables = ((self.deployments, "#dep-table"), (self.jobs, "#job-table"),
                  (self.schedules, "#schedule-table"), (self.sweeps, "#sweep-table"))
        ops = [(model.refresh_ages(), table) for model, table in tables]
        if any(not o.is_empty() for o, _ in ops):
            with self.batch_update():
                for o, table in ops:
                    self.main.query_one(table, FleetTable).apply(o)

    # -- permissions -----------------------------------------------------------------
    def _check_new_namespaces(self, namespaces: set[str]) -> None:
        todo = sorted({(ns, PERMISSIONS_KEY) for ns in namespaces
                       for PERMISSIONS_KEY in PERMISSIONS} - self.permissions.keys())
        if todo and self.backend is not None and not self.readonly:
            for item in todo:  # mark as pending (allowed) so we ask once
                self.permissions[item] = (True, "")
            self.check_permissions(todo)

    @work(thread=True, exit_on_error=False, group="rbac")
    def check_permissions(self, todo: list[tuple[str, str]]) -> None:
        answers: dict[tuple[str, str], tuple[bool | None, str]] = {}
        asked: dict[tuple[str, tuple[str, str, str, str | None]],
                    tuple[bool | None, str]] = {}
        for ns, action in todo:
            spec = PERMISSIONS[action]
            if (ns, spec) not in asked:
                try:
                    asked[(ns, spec)] = connected(self.backend).can_i(action, ns)
                except Exception as exc:  # noqa: BLE001 - unknown: left enabled, and said so
                    asked[(ns, spec)] = (None, f"unknown, check failed: {error_text(exc)}")
            answers[(ns, action)] = asked[(ns, spec)]
        self.post_message(PermissionsChecked(answers))

    def on_permissions_checked(self, message: PermissionsChecked) -> None:
        self.permissions.update(message.answers)
        self._perm_state = None
        if not self._shutting_down():
            self.refresh_permissions_view()

    def denied(self, action: str, targets: list[ModelDeployment] | None = None) -> str | None:
        """Why `action` is disabled for the current targets, or None if it is allowed."""
        if self.readonly and action in WRITE_ACTIONS:
            return "read-only mode (--readonly)"
        perm = PERM_OF.get(action)
        if perm is None:
            return None
        if action == "undo_wave":
            namespaces = {k[0] for k in self.deployments.records}
        elif action == "deploy":
            namespaces = {self.deploy_namespace()}
        else:
            namespaces = {d.namespace for d in (targets if targets is not None else
                                                self.target_records())}
        for ns in sorted(namespaces):
            ok, reason = self.permissions.get((ns, perm), (True, ""))
            if ok is False:
                verb, _group, resource, sub = PERMISSIONS[perm]
                what = f"{resource}/{sub}" if sub else resource
                return reason or f"RBAC: cannot {verb} {what} in namespace {ns}"
        return None

    def deploy_namespace(self) -> str:
        """Where `D` deploys by default: the one watched namespace, else the cursor row's."""
        if self.namespaces and len(self.namespaces) == 1:
            return self.namespaces[0]
        rec = self._cursor_record()
        return rec.namespace if rec is not None else "default"

    def unknown_permission(self, action: str, targets: list[ModelDeployment]) -> str | None:
        """Why RBAC for `action` is unknown for these targets (the access review failed)."""
        perm = PERM_OF.get(action)
        if perm is None or (self.readonly and action in WRITE_ACTIONS):
            return None
        for ns in sorted({d.namespace for d in targets}):
            ok, reason = self.permissions.get((ns, perm), (True, ""))
            if ok is None:
                return f"{reason} (namespace {ns})"
        return None

    def refresh_permissions_view(self) -> None:
        """Update the footer and the reason line when the answer for the cursor row changes."""
        targets = self.target_records()
        reasons: dict[str, list[str]] = {}
        for action in ("rollback", "scale", "restart", "pause_resume", "rollout", "deploy",
                       "logs"):
            why = self.denied(action, targets) if targets else None
            if why:
                reasons.setdefault(f"disabled — {why}", []).append(action.replace("_", "/"))
            elif targets and (unknown := self.unknown_permission(action, targets)):
                reasons.setdefault(unknown, []).append(action.replace("_", "/"))
        if self.readonly:
            line = "read-only mode (--readonly): rollback, scale, restart, pause/resume, " \
                   "rollout, undo, deploy and the sweep actions are disabled"
        else:
            line = "; ".join(f"{', '.join(acts)} {why}" for why, acts in reasons.items())
        line = "; ".join(part for part in (line, self._forbidden_text) if part)
        if line != self._perm_state:
            self._perm_state = line
            self.main.set_perm_line(line)
            self.refresh_bindings()

    # -- targets ---------------------------------------------------------------------
    def target_keys(self) -> list[Key]:
        screen = self.screen
        key = getattr(screen, "deployment_key", None)
        if key is not None:
            return [key]
        if screen is not self.main or self.main.view != "deployments":
            return []
        if self.deployments.marked:
            return sorted(self.deployments.marked)
        cur = self.main.query_one("#dep-table", FleetTable).cursor_key()
        return [cur] if cur is not None else []

    def target_records(self) -> list[ModelDeployment]:
        recs = self.deployments.records
        return [recs[k] for k in self.target_keys() if k in recs]

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in SWEEP_ACTIONS:
            return self.check_sweep_action(action)
        if action in ("detail", "logs") and self.in_sweeps() and self.screen is self.main:
            if self.sweep_target() is None:
                return None
            return None if action == "logs" and self.denied("logs") is not None else True
        if action == "logs" and self.screen is self.main and self.main.view == "jobs":
            if self.job_target() is None:
                return None  # no training job under the cursor
            return None if self.denied("logs") is not None else True
        if action in TARGET_ACTIONS:
            if self.screen is self.main and self.main.view == "sweeps":
                return False  # deployment actions: not in the footer of the sweeps view
            targets = self.target_records()
            if not targets:
                return None if isinstance(self.screen, MainScreen) else False
            if action in ("detail", "probes", "history") and len(targets) > 1:
                return True  # opens the cursor row
        if action in PERM_OF and self.denied(action) is not None:
            return None
        return True

    def refuse(self, action: str) -> bool:
        """Notify why `action` is disabled (True) or allow it (False)."""
        return self._refuse(action)

    def _refuse(self, action: str) -> bool:
        why = self.denied(action)
        if why:
            self.notify(why, title=f"{action} disabled", severity="warning")
            return True
        return False

    # -- navigation ------------------------------------------------------------------
    def job_target(self) -> TrainingJob | None:
        """The training job under the cursor of the jobs table, if any."""
        key = self.main.query_one("#job-table", FleetTable).cursor_key()
        return self.jobs.records.get(key) if key else None

    def _cursor_record(self) -> ModelDeployment | None:
        key = getattr(self.screen, "deployment_key", None)
        if key is None and self.screen is self.main:
            key = self.main.query_one("#dep-table", FleetTable).cursor_key()
        return self.deployments.records.get(key) if key else None

    def open_detail(self, tab: str) -> None:
        from tui.screens.detail import DeploymentScreen

        if isinstance(self.screen, DeploymentScreen):
            self.screen.show_tab(tab)
            return
        rec = self._cursor_record()
        if rec is not None:
            self.push_screen(DeploymentScreen(rec.key, tab))

    def action_detail(self) -> None:
        if self.screen is self.main and self.main.view == "sweeps":
            self.open_sweep()
            return
        self.open_detail("revisions")

    def open_sweep(self) -> None:
        """The highlighted sweep's detail (trials, plots, importances, pods)."""
        from tui.screens.sweep import SweepDetailScreen

        job = self.sweep_target()
        if job is not None:
            self.push_screen(SweepDetailScreen(job.key))

    def action_probes(self) -> None:
        self.open_detail("probes")

    def action_history(self) -> None:
        self.open_detail("revisions")

    def action_logs(self) -> None:
        """`l`: the log view of a pod of the deployment (a picker, default the newest unready
        pod; straight in when there is only one)."""
        if self._refuse("logs"):
            return
        if self.screen is self.main and self.main.view == "sweeps":
            job = self.sweep_target()
            if job is not None:
                self.load_log_pods(job.namespace, job.name, sweep=True)
            return
        if self.screen is self.main and self.main.view == "jobs":
            job = self.job_target()
            if job is not None:  # a training Job's pods (every index of a distributed run)
                self.load_log_pods(job.namespace, job.name, sweep=True)
            return
        rec = self._cursor_record()
        if rec is not None:
            self.load_log_pods(rec.namespace, rec.name)

    @work(thread=True, exit_on_error=False, group="pick")
    def load_log_pods(self, ns: str, name: str, sweep: bool = False) -> None:
        try:
            backend = connected(self.backend)
            pods = backend.sweep_pods(ns, name) if sweep else backend.pods(ns, name)
        except Exception as exc:  # noqa: BLE001
            self.notify(error_text(exc), title="cannot list pods", severity="error")
            return
        self.call_later_safe(self.pick_log_pod, ns, name, pods, "job" if sweep
                             else "deployment")

    def pick_log_pod(self, ns: str, name: str, pods: list[Any], kind: str = "deployment"
                     ) -> None:
        from tui.screens.logs import LogScreen
        from tui.viewmodel.detail import pod_status

        if not pods:
            self.notify(f"{kind} {ns}/{name} has no pods", severity="warning")
            return
        if len(pods) == 1:
            self.push_screen(LogScreen(ns, pods[0].name))
            return
        newest = sorted(pods, key=lambda p: (p.created is not None, p.created or 0),
                        reverse=True)
        default = next((p for p in newest if not p.ready), newest[0])
        opts = [(p.name, f"{p.name}  {pod_status(p)}  restarts {p.restarts}") for p in newest]

        def picked(pod: str | None) -> None:
            if pod:
                self.push_screen(LogScreen(ns, pod))

        self.push_screen(PickerScreen(f"Logs of a pod of {ns}/{name}", opts, default.name),
                         picked)

    def action_help(self) -> None:
        from tui.screens.help import HelpScreen

        self.push_screen(HelpScreen(denied=self.denied))

    def action_namespace(self) -> None:
        self.load_namespaces()

    @work(thread=True, exit_on_error=False, group="pick")
    def load_namespaces(self) -> None:
        try:
            names = connected(self.backend).list_namespaces()
        except Exception as exc:  # noqa: BLE001 - fall back to the namespaces we have seen
            names = sorted({k[0] for k in self.deployments.records})
            self.notify(f"{error_text(exc)}; showing the namespaces seen so far",
                        title="cannot list namespaces", severity="warning")
        self.call_later_safe(self._pick_namespace, names)

    def call_later_safe(self, fn: Callable[..., Any], *args: Any) -> None:
        """Run `fn(*args)` on the UI thread from a worker (via the message queue)."""
        self.call_from_thread(fn, *args)

    def _pick_namespace(self, names: list[str]) -> None:
        opts = [("*", "all namespaces"), *[(n, n) for n in names]]
        current = self.namespaces[0] if self.namespaces else "*"
        self.push_screen(PickerScreen("Switch namespace", opts, current), self._switch_namespace)

    def _switch_namespace(self, choice: str | None) -> None:
        if choice is None:
            return
        self.switch_scope(self.context_name, None if choice == "*" else [choice])

    def action_context(self) -> None:
        from tui.kubecontexts import list_contexts

        backend = self.backend
        names = list_contexts(backend.kubeconfig if backend is not None else None)
        current = backend.context if backend is not None else None

        def picked(context: str | None) -> None:
            if context:
                self.switch_scope(context, self.namespaces)

        self.push_screen(PickerScreen("Switch context", [(n, n) for n in names], current),
                         picked)

    def switch_scope(self, context: str | None, namespaces: list[str] | None) -> None:
        """Drop the current backend and rows, then watch the new scope."""
        old = self.backend
        self.backend = None
        if old is not None:
            self.stop_backend(old)
        self.context_name = context
        self.namespaces = namespaces
        self.buffer.drain()
        self.permissions.clear()
        self._rows_shown = False
        with self.batch_update():
            for model, table in ((self.deployments, "#dep-table"), (self.jobs, "#job-table"),
                                 (self.schedules, "#schedule-table"),
                                 (self.sweeps, "#sweep-table")):
                model.apply([], list(model.records))
                model.marked.clear()
                self.main.query_one(table, FleetTable).apply(model.full())
            self.main.update_titles()
        self.main.query_one("#banner", ConnectionBanner).show_state(ConnectionState.CONNECTING)
        self._show_context()
        self.connect()

    @work(thread=True, exit_on_error=False, group="stop")
    def stop_backend(self, backend: Backend) -> None:
        backend.stop()

    @on(Worker.StateChanged)
    def _worker_failed(self, event: Worker.StateChanged) -> None:
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            self.notify(error_text(event.worker.error), title="error", severity="error")

    # -- palette ---------------------------------------------------------------------
    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        from tui.viewmodel.keys import palette_entries

        for title, help_text, action in palette_entries(self):
            yield SystemCommand(title, escape(help_text), lambda a=action: self.run_action(a))

    def on_unmount(self) -> None:
        """Stop the backend off the UI loop: quitting never waits for a hanging API."""
        if self._restore_terminal is not None:
            self._restore_terminal()
            self._restore_terminal = None
        backend, self.backend = self.backend, None
        if backend is not None:
            threading.Thread(target=_stop_quietly, args=(backend,), name="fleet-stop",
                             daemon=True).start()


def _stop_quietly(backend: Backend) -> None:
    try:
        backend.stop()
    except Exception:  # noqa: BLE001 - the app is gone: log, nobody is left to tell
        log.exception("stopping the backend failed")
