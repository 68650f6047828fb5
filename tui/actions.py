"""Write actions of the app: plan (in a worker), confirm (modal), execute (in a worker), report.

Mixed into `FleetApp`; every API call runs in a thread worker and comes back as a message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from textual import work

from fleet.model import ModelDeployment
from tui.backend import connected
from tui.messages import ActionFinished, DeployFinished, DeployProgress
from tui.screens.confirm import ConfirmScreen, PromptScreen, ResultScreen
from tui.screens.deploy import DeployFormScreen, DeployProgressScreen, plan_lines
from tui.screens.picker import PickerScreen
from tui.viewmodel.plans import (
    Plan,
    bulk_rollback_plan,
    pause_plan,
    restart_plan,
    rollback_plan,
    rollout_plan,
    scale_plan,
    undo_plan,
)
from tui.widgets.progress import RolloutProgress

if TYPE_CHECKING:
    from textual.app import App

    from fleet.ops.deploy import DeployResult, DeploySpec
    from tui.backend import Backend
    from tui.screens.main import MainScreen
    from tui.viewmodel.table import Key, TableModel

    AppBase = App[None]  # the mixins are only ever mixed into FleetApp, an App
else:
    AppBase = object

UNDO_WINDOWS = [("5m", "last 5 minutes"), ("15m", "last 15 minutes"), ("30m", "last 30 minutes"),
                ("1h", "last hour"), ("3h", "last 3 hours"), ("24h", "last 24 hours")]


def _duration(text: str) -> timedelta:
    unit = {"m": "minutes", "h": "hours", "s": "seconds"}[text[-1]]
    return timedelta(**{unit: int(text[:-1])})


def error_text(exc: BaseException) -> str:
    """The human message of a FleetError / plan ValueError; the type for anything unexpected."""
    if isinstance(exc, ValueError) and str(exc):
        return str(exc)
    return getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"



class ActionsMixin(AppBase):
    """Needs the app's `backend`, `deployments`, `main`, `target_records`, `_refuse`."""

    backend: Backend | None
    deployments: TableModel[Key]
    main: MainScreen

    if TYPE_CHECKING:  # FleetApp's
        def target_records(self) -> list[ModelDeployment]: ...
        def _refuse(self, action: str) -> bool: ...
        def call_later_safe(self, fn: Callable[..., Any], *args: Any) -> None: ...

    def action_rollback(self) -> None:
        if self._refuse("rollback"):
            return
        targets = self.target_records()
        if len(targets) == 1:
            self.plan_rollback(targets[0], 0)
        elif targets:
            self.plan_bulk_rollback(targets)

    @work(thread=True, exit_on_error=False, group="plan")
    def plan_rollback(self, dep: ModelDeployment, to_revision: int) -> None:
        try:
            generation, history = connected(self.backend).history(dep.namespace, dep.name)
            plan = rollback_plan(dep, history, to_revision, generation)
        except Exception as exc:  # noqa: BLE001
            self.notify(error_text(exc), title="cannot roll back", severity="error")
            return
        self.call_later_safe(self.confirm, plan)

    @work(thread=True, exit_on_error=False, group="plan")
    def plan_bulk_rollback(self, deps: list[ModelDeployment]) -> None:
        """Read every target's history (concurrently) so the confirm screen names each target
        revision and each rollback carries the generation it was planned against."""
        from concurrent.futures import ThreadPoolExecutor

        def read(dep: ModelDeployment) -> Any:
            try:
                return connected(self.backend).history(dep.namespace, dep.name)
            except Exception as exc:  # noqa: BLE001 - shown on the target's line
                return exc

        with ThreadPoolExecutor(max_workers=max(1, min(8, len(deps)))) as pool:
            histories = dict(zip([d.key for d in deps], pool.map(read, deps), strict=True))
        self.call_later_safe(self.confirm, bulk_rollback_plan(deps, histories))

    def action_scale(self) -> None:
        if self._refuse("scale"):
            return
        targets = self.target_records()
        if not targets:
            return
        names = ", ".join(f"{d.namespace}/{d.name}" for d in targets[:3])
        if len(targets) > 3:
            names += f" and {len(targets) - 3} more"

        def got(values: dict[str, str] | None) -> None:
            if values is None:
                return
            try:
                replicas = int(values["replicas"])
                if replicas < 0:
                    raise ValueError
            except ValueError:
                self.notify("replicas must be a whole number ≥ 0", severity="error")
                return
            self.confirm(scale_plan(targets, replicas))

        self.push_screen(PromptScreen(f"Scale {names}",
                                      [("replicas", "replicas", str(targets[0].desired))]), got)

    def action_restart(self) -> None:
        if not self._refuse("restart") and (targets := self.target_records()):
            self.confirm(restart_plan(targets))

    def action_pause_resume(self) -> None:
        if not self._refuse("pause_resume") and (targets := self.target_records()):
            self.confirm(pause_plan(targets, pause=not all(d.paused for d in targets)))

    def action_rollout(self) -> None:
        if self._refuse("rollout"):
            return
        targets = self.target_records()
        if len(targets) != 1:
            if targets:
                self.notify("roll out one deployment at a time", severity="warning")
            return
        dep = targets[0]

        def got(values: dict[str, str] | None) -> None:
            if values is None:
                return
            try:
                plan = rollout_plan(dep, values["model_uri"], values["image"], values["reason"],
                                    values["version"])
            except ValueError as exc:
                self.notify(str(exc), severity="warning")
                return
            self.confirm(plan)

        fields = [("model_uri", "model URI (env MODEL_URI)", dep.model_uri),
                  ("image", "container image", dep.image),
                  ("version", "version label (app.kubernetes.io/version)", dep.version),
                  ("reason", "change-cause", "")]
        self.push_screen(PromptScreen(f"Roll out {dep.namespace}/{dep.name}", fields), got)

    def action_undo_wave(self) -> None:
        if self._refuse("undo_wave"):
            return

        def picked(window: str | None) -> None:
            if window:
                self.plan_undo(window)

        self.push_screen(PickerScreen("Undo rollouts started within…", UNDO_WINDOWS, "15m"),
                         picked)

    @work(thread=True, exit_on_error=False, group="plan")
    def plan_undo(self, window: str) -> None:
        try:
            candidates = connected(self.backend).undo_candidates(_duration(window))
        except Exception as exc:  # noqa: BLE001
            self.notify(error_text(exc), title="cannot list recent rollouts", severity="error")
            return
        plan = undo_plan(candidates, window)
        plan.params["candidates"] = candidates
        self.call_later_safe(self.confirm, plan)

    def confirm(self, plan: Plan) -> None:
        if not plan.targets:
            self.push_screen(ConfirmScreen(plan.title, plan.lines, "OK", danger=False))
            return

        def answered(ok: bool | None) -> None:
            if ok:
                self.execute(plan)

        self.push_screen(ConfirmScreen(plan.title, plan.lines), answered)

    @work(thread=True, exit_on_error=False, group="action")
    def execute(self, plan: Plan) -> None:
        from tui.execute import run_plan

        results = run_plan(connected(self.backend), plan)
        self.post_message(ActionFinished(plan.title, results, plan.targets))

    def on_action_finished(self, message: ActionFinished) -> None:
        ok = [r.line for r in message.results if r.ok]
        failed = [r.line for r in message.results if not r.ok]
        self.main.query_one("#progress", RolloutProgress).watch_keys(
            [r.key for r in message.results if r.ok], self.deployments.records)
        if len(message.results) == 1 and not failed:
            self.notify(ok[0], title="done")
        else:
            self.push_screen(ResultScreen(message.title, ok, failed))
        if self.deployments.marked:
            self.main.action_clear_marks()



class DeployState:
    """What a running (or finished) deploy said, so its progress screen can be reopened."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.progress = ""
        self.outcome: Any = None
        self.done = False


class DeployMixin(AppBase):
    """`D`: the deploy form, its confirmation, and the deploy itself in a worker."""

    backend: Backend | None
    deployments: TableModel[Key]
    main: MainScreen
    deploys: dict[Key, DeployState]

    if TYPE_CHECKING:  # FleetApp's
        def refuse(self, action: str) -> bool: ...
        def deploy_namespace(self) -> str: ...

    def action_deploy(self) -> None:
        if self.refuse("deploy"):
            return
        ns = self.deploy_namespace()

        def got(checked: tuple[DeploySpec, DeployResult] | None) -> None:
            if checked is None:
                return
            spec, dry = checked

            def answered(ok: bool | None) -> None:
                if ok:
                    self.start_deploy(spec)

            self.push_screen(ConfirmScreen(f"Deploy {spec.namespace}/{spec.name}?",
                                           plan_lines(spec, dry), "Deploy", danger=False),
                             answered)

        self.push_screen(DeployFormScreen(ns), got)

    def start_deploy(self, spec: DeploySpec) -> None:
        key = (spec.namespace, spec.name)
        self.deploys[key] = DeployState()
        self.push_screen(DeployProgressScreen(key, []))
        self.run_deploy(spec)

    @work(thread=True, exit_on_error=False, group="deploy")
    def run_deploy(self, spec: DeploySpec) -> None:
        key = (spec.namespace, spec.name)

        def said(line: str) -> None:
            self.post_message(DeployProgress(key, "message", line))

        def progressed(line: str) -> None:
            self.post_message(DeployProgress(key, "progress", line))

        try:
            result = connected(self.backend).deploy(spec, on_message=said,
                                                    on_progress=progressed)
        except Exception as exc:  # noqa: BLE001 - shown on the progress screen and notified
            self.post_message(DeployFinished(key, error=error_text(exc)))
            return
        self.post_message(DeployFinished(key, result=result))

    def _deploy_screen(self, key: tuple[str, str]) -> DeployProgressScreen | None:
        screen = self.screen
        return screen if isinstance(screen, DeployProgressScreen) and screen.key == key else None

    def on_deploy_progress(self, message: DeployProgress) -> None:
        state = self.deploys.setdefault(message.key, DeployState())
        screen = self._deploy_screen(message.key)
        if message.kind == "progress":
            if not state.progress:  # the objects exist: follow the Deployment in the panel
                self.main.query_one("#progress", RolloutProgress).watch_keys(
                    [message.key], self.deployments.records)
            state.progress = message.line
            if screen is not None:
                screen.set_progress(message.line)
        else:
            state.lines.append(message.line)
            if screen is not None:
                screen.add_message(message.line)

    def on_deploy_finished(self, message: DeployFinished) -> None:
        from rich.text import Text

        state = self.deploys.setdefault(message.key, DeployState())
        state.done = True
        name = f"{message.key[0]}/{message.key[1]}"
        r = message.result
        if message.error:
            text, ok = Text(f"deploy failed: {message.error}", style="bold red"), False
        elif r is not None and r.available:
            text = Text(f"deployment.apps/{r.name} is Available: {r.ready}/{r.replicas} pods "
                        f"ready after {r.elapsed_s:.0f}s"
                        + (f"; route {r.route}" if r.route else ""), style="bold green")
            ok = True
        else:
            failure = getattr(r, "failure", "") or "not Available"
            text = Text(f"not Available: {failure}; the objects are left as they are",
                        style="bold red")
            ok = False
        state.outcome = text
        screen = self._deploy_screen(message.key)
        if screen is not None:
            screen.set_outcome(text)
        self.notify(text.plain, title=f"deploy {name}", severity="information" if ok else "error",
                    timeout=10)
