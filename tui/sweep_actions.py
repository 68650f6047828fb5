"""Sweep actions of the app: launch, stop, resume, promote, each as the `fleet sweep` command.

Same pattern as the other write actions: what will happen on a confirm screen first, then a
progress screen with the command's lines as they come (a worker runs the subprocess), then
its exit status, notified. The sweep actions are implemented once, in `tuning` (stop hands
trials back, resume keeps the exact budget, promote is guarded); running the CLI keeps the
TUI out of that package and its database.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import work

from fleet.model import TrainingJob
from tui.actions import AppBase
from tui.backend import connected
from tui.messages import CliFinished, CliLine
from tui.screens.command import CommandProgressScreen
from tui.screens.confirm import ConfirmScreen, PromptScreen
from tui.viewmodel.plans import Plan
from tui.viewmodel.sweep_plans import (
    has_storage,
    launch_plan,
    promote_plan,
    resume_plan,
    shown_command,
    stop_plan,
)
from tui.viewmodel.sweep_render import summary_of
from tui.widgets.fleet_table import FleetTable

if TYPE_CHECKING:
    from fleet.model import ModelDeployment
    from tui.backend import Backend
    from tui.screens.main import MainScreen
    from tui.viewmodel.table import Key, TableModel

MAX_RUN_LINES = 500
SPEC_HEAD_LINES = 30


class CliRun:
    """What a running (or finished) command said, so its progress screen can be reopened."""

    def __init__(self, run: int, title: str, command: str) -> None:
        self.run = run
        self.title = title
        self.command = command
        self.lines: list[tuple[str, str]] = []
        self.outcome: Text | None = None
        self.result: Any = None
        self.done = False


class SweepActionsMixin(AppBase):
    """Needs the app's `backend`, `jobs`, `main`, `screen`, `_refuse`, `call_later_safe`."""

    backend: Backend | None
    jobs: TableModel[Key]
    main: MainScreen
    namespaces: list[str] | None
    cli_runs: dict[int, CliRun]
    _cli_seq: int

    if TYPE_CHECKING:  # FleetApp's
        def denied(self, action: str, targets: list[ModelDeployment] | None = None
                   ) -> str | None: ...
        def _refuse(self, action: str) -> bool: ...
        def call_later_safe(self, fn: Callable[..., Any], *args: Any) -> None: ...

    # -- targets -------------------------------------------------------------------------
    def in_sweeps(self) -> bool:
        """The sweeps view, or a sweep's detail, is in front."""
        screen = self.screen
        if getattr(screen, "sweep_key", None) is not None:
            return True
        return screen is self.main and self.main.view == "sweeps"

    def sweep_target(self) -> TrainingJob | None:
        screen = self.screen
        key = getattr(screen, "sweep_key", None)
        if key is None and screen is self.main and self.main.view == "sweeps":
            key = self.main.query_one("#sweep-table", FleetTable).cursor_key()
        return self.jobs.records.get(key) if key else None

    def check_sweep_action(self, action: str) -> bool | None:
        """Hidden outside the sweeps; disabled (shown, with the reason in help) when denied."""
        if not self.in_sweeps():
            return False
        if action != "sweep_launch" and self.sweep_target() is None:
            return None
        return None if self.denied(action) is not None else True

    # -- the four actions ----------------------------------------------------------------------
    def _target_or_say(self) -> TrainingJob | None:
        job = self.sweep_target()
        if job is None:
            self.notify("no sweep highlighted: `w` shows the sweeps", severity="warning")
        return job

    def action_sweep_stop(self) -> None:
        if not self._refuse("sweep_stop") and (job := self._target_or_say()) is not None:
            self.confirm_cli(stop_plan(job, has_storage()), "Stop")

    def action_sweep_resume(self) -> None:
        if not self._refuse("sweep_resume") and (job := self._target_or_say()) is not None:
            self.confirm_cli(resume_plan(job, has_storage()), "Resume", danger=False)

    def action_sweep_promote(self) -> None:
        if self._refuse("sweep_promote") or (job := self._target_or_say()) is None:
            return
        screen = self.screen
        snap = getattr(screen, "snapshot", None)
        trials = snap.trials if snap is not None else ()
        pick = ""
        if hasattr(screen, "selected_trial"):
            n = screen.selected_trial()
            t = next((t for t in trials if t.n == n), None)
            if t is not None and t.state == "complete" and t.model_uri:
                pick = str(t.n)

        def got(values: dict[str, str] | None) -> None:
            if values is None:
                return
            raw = values.get("trial", "").strip().lstrip("#")
            try:
                if raw and not raw.isdigit():
                    raise ValueError(f"trial must be a trial number, got {raw!r}")
                plan = promote_plan(job, int(raw) if raw else None,
                                    values.get("deployment", "").strip(), trials)
            except ValueError as exc:
                self.notify(str(exc), title="cannot promote", severity="warning")
                return
            self.confirm_cli(plan, "Promote")

        s = summary_of(job)
        self.push_screen(PromptScreen(
            f"Promote a trial of sweep {job.namespace}/{job.name}",
            [("trial", "trial number (empty: the best complete trial with a model)", pick),
             ("deployment", "into deployment (in the sweep's namespace)", s.deployment)]), got)

    def action_sweep_launch(self) -> None:
        if self._refuse("sweep_launch"):
            return
        job = self.sweep_target()
        ns = (self.namespaces[0] if self.namespaces and len(self.namespaces) == 1
              else job.namespace if job is not None else "")

        def got(values: dict[str, str] | None) -> None:
            if values is None:
                return
            if not values.get("file"):
                self.notify("give the path of a sweep spec (`fleet sweep example` prints one)",
                            severity="warning")
                return
            self.read_spec(values)

        self.push_screen(PromptScreen("Launch a sweep (fleet sweep launch)", [
            ("file", "spec file (YAML; `fleet sweep example > sweep.yaml` writes one)", ""),
            ("namespace", "namespace (empty: the spec's, else the context's)", ns),
            ("name", "name (optional: overrides the spec's)", ""),
            ("max_trials", "max trials (optional: overrides budget.max_trials)", "")]), got)

    @work(thread=True, exit_on_error=False, group="plan")
    def read_spec(self, values: dict[str, str]) -> None:
        path = os.path.abspath(os.path.expanduser(values["file"]))
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                head = [line.rstrip("\n") for _, line in zip(range(SPEC_HEAD_LINES), fh,
                                                              strict=False)]
            plan = launch_plan(path, head, values.get("namespace", ""), values.get("name", ""),
                               values.get("max_trials", ""), has_storage())
        except (OSError, ValueError) as exc:
            why = f"{exc.strerror}: {path}" if isinstance(exc, OSError) and exc.strerror \
                else str(exc)
            self.notify(why, title="cannot launch", severity="error")
            return
        self.call_later_safe(self.confirm_cli, plan, "Launch", False)

    # -- confirm, run, report ------------------------------------------------------------------
    def confirm_cli(self, plan: Plan, label: str = "Confirm", danger: bool = True) -> None:
        def answered(ok: bool | None) -> None:
            if ok:
                self.start_cli(plan)

        self.push_screen(ConfirmScreen(plan.title, plan.lines, label, danger=danger), answered)

    def start_cli(self, plan: Plan) -> int:
        if self.backend is None:
            self.notify("not connected", severity="error")
            return 0
        self._cli_seq += 1
        run = self._cli_seq
        args = list(plan.params["args"])
        state = CliRun(run, plan.title.rstrip("?"), shown_command(args))
        self.cli_runs[run] = state
        self.push_screen(CommandProgressScreen(run, state.title, state.command))
        self.run_command(run, args)
        return run

    @work(thread=True, exit_on_error=False, group="cli")
    def run_command(self, run: int, args: list[str]) -> None:
        from tui.actions import error_text

        def printed(stream: str, line: str) -> None:
            self.post_message(CliLine(run, stream, line))

        try:
            result = connected(self.backend).run_cli(args, printed)
        except Exception as exc:  # noqa: BLE001 - could not start: said, never a crash
            self.post_message(CliFinished(run, error=error_text(exc)))
            return
        self.post_message(CliFinished(run, result=result))

    def _progress_screen(self, run: int) -> CommandProgressScreen | None:
        screen = self.screen
        return screen if isinstance(screen, CommandProgressScreen) and screen.run == run \
            else None

    def on_cli_line(self, message: CliLine) -> None:
        state = self.cli_runs.get(message.run)
        if state is None:
            return
        if len(state.lines) < MAX_RUN_LINES:
            state.lines.append((message.stream, message.line))
        screen = self._progress_screen(message.run)
        if screen is not None:
            screen.add_line(message.stream, message.line)

    def on_cli_finished(self, message: CliFinished) -> None:
        state = self.cli_runs.get(message.run)
        if state is None:
            return
        state.done = True
        r = state.result = message.result
        if message.error or r is None:
            text, ok = Text(f"✗ could not run the command: {message.error}", style="bold red"), \
                False
        elif r.ok:
            text, ok = Text(f"✓ {r.status_text} after {r.elapsed_s:.1f}s: {r.summary}",
                            style="bold green"), True
        else:
            text, ok = Text(f"✗ {r.status_text}: {r.summary}", style="bold red"), False
        state.outcome = text
        screen = self._progress_screen(message.run)
        if screen is not None:
            screen.set_outcome(text)
        self.notify(text.plain, title=state.title, severity="information" if ok else "error",
                    timeout=10)
        for s in self.screen_stack:  # show the effect now, not at the next poll
            poll = getattr(s, "poll", None)
            if poll is not None and getattr(s, "sweep_key", None) is not None:
                poll()
