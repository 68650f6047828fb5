"""What a sweep action will do, as text for the confirm screen, and the `fleet sweep` command
that does it (pure, testable; the TUI runs the command with `tui.cli_actions`)."""

from __future__ import annotations

import os
import shlex
from collections.abc import Sequence

from rich.console import RenderableType
from rich.text import Text

from fleet.model import SweepTrial, TrainingJob
from tui.viewmodel.plans import Plan
from tui.viewmodel.sweep_render import best_text, number, summary_of

STORAGE_ENV = "FLEET_OPTUNA_STORAGE"


def shown_command(args: Sequence[str]) -> str:
    """What the confirm screen says will run (the user could type it)."""
    return "fleet " + " ".join(shlex.quote(a) for a in args)


def has_storage(env: dict[str, str] | None = None) -> bool:
    return bool((os.environ if env is None else env).get(STORAGE_ENV))


def _head(job: TrainingJob) -> Text:
    s = summary_of(job)
    return Text.assemble((f"{job.namespace}/{job.name}", "bold"),
                         f"  {job.sweep_state}: {s.complete} complete, {s.running} running, "
                         f"{s.pruned} pruned, {s.failed} failed of {s.max_trials or '?'}; "
                         f"{job.running_pods} worker pod(s) running")


def _runs(args: Sequence[str]) -> Text:
    return Text(f"  runs: {shown_command(args)}", style="dim")


def stop_plan(job: TrainingJob, storage: bool) -> Plan:
    args = ["sweep", "stop", job.name, "-n", job.namespace]
    lines: list[RenderableType] = [
        _head(job),
        Text("  job.batch spec.suspend → true: the worker pods get SIGTERM and hand their "
             "running trials back (re-queued, nothing is lost); the command waits until the "
             "pods are gone. `R` resumes to the same budget."),
    ]
    if job.sweep_state in ("stopped", "complete", "aborted", "failed"):
        lines.insert(1, Text(f"  the sweep is already {job.sweep_state}", style="yellow"))
    lines.append(Text(f"  ${STORAGE_ENV} is set: the sweep's state becomes stopped in the "
                      "database too") if storage else Text(
        f"  no ${STORAGE_ENV} here: only the Job is suspended; the state row in the database "
        "is left as it is (the workers hand back their trials themselves)", style="yellow"))
    lines.append(_runs(args))
    return Plan("sweep_stop", f"Stop sweep {job.namespace}/{job.name}?", lines, [job.key],
                {"args": args})


def resume_plan(job: TrainingJob, storage: bool) -> Plan:
    args = ["sweep", "resume", job.name, "-n", job.namespace]
    s = summary_of(job)
    left = (s.max_trials - s.done) if s.max_trials else None
    lines: list[RenderableType] = [
        _head(job),
        Text("  job.batch spec.suspend → false (a Job that already ended is recreated); the "
             "sweep continues to the same exact budget"
             + (f": {left} trial(s) left" if left is not None else "")),
    ]
    if job.sweep_state == "complete":
        lines.insert(1, Text("  the sweep is complete: there is nothing to resume (the "
                             "command refuses)", style="red"))
    elif job.sweep_state == "running":
        lines.insert(1, Text("  the sweep is running: resuming changes nothing", style="yellow"))
    lines.append(Text(f"  ${STORAGE_ENV} is set: the sweep's state becomes running in the "
                      "database too") if storage else Text(
        f"  no ${STORAGE_ENV} here: only the Job is resumed; if the sweep was stopped with "
        "its database, the workers see it still stopped and end", style="yellow"))
    lines.append(_runs(args))
    return Plan("sweep_resume", f"Resume sweep {job.namespace}/{job.name}?", lines, [job.key],
                {"args": args})


def promote_plan(job: TrainingJob, trial: int | None, deployment: str,
                 trials: Sequence[SweepTrial] = ()) -> Plan:
    """`trial` None: the best complete trial with a model (the CLI picks it)."""
    s = summary_of(job)
    args = ["sweep", "promote", job.name, "-n", job.namespace]
    if trial is not None:
        args += ["--trial", str(trial)]
    if deployment:
        args += ["--deployment", deployment]
    target = deployment or s.deployment
    if not target:
        raise ValueError("no deployment: give one (the spec has no promotion.deployment)")
    picked = next((t for t in trials if t.n == trial), None) if trial is not None else None
    lines: list[RenderableType] = [_head(job)]
    metric = s.metric or "value"
    if trial is None:
        lines.append(Text.assemble("  the best complete trial with a model: ",
                                   (f"{metric} {best_text(s)}", "green")))
    elif picked is not None:
        if picked.state != "complete" or not picked.model_uri:
            raise ValueError(f"trial {trial} is {picked.state}"
                             + ("" if picked.model_uri else " without a published model")
                             + ": only a complete trial with a model can be promoted")
        lines.append(Text.assemble(f"  trial #{trial}: ", (f"{metric} {number(picked.value)}",
                                                           "green"),
                                   f"  model {picked.model_uri}"))
    elif trials:
        raise ValueError(f"the sweep has no trial {trial}")
    else:
        lines.append(Text(f"  trial #{trial}"))
    lines.append(Text.assemble("  into deployment ", (target, "bold"),
                               " — a guarded promotion: kept when it is not better than the "
                               "live model, rolled back by itself when the rollout fails"))
    lines.append(_runs(args))
    what = f"trial #{trial}" if trial is not None else "the best trial"
    return Plan("sweep_promote", f"Promote {what} of sweep {job.namespace}/{job.name} into "
                f"{target}?", lines, [job.key], {"args": args})


def launch_plan(path: str, head: Sequence[str], namespace: str = "", name: str = "",
                max_trials: str = "", storage: bool = False) -> Plan:
    """Launch the sweep spec at `path` (`head`: its first lines, shown to confirm)."""
    if max_trials and not max_trials.isdigit():
        raise ValueError(f"max trials must be a whole number, got {max_trials!r}")
    args = ["sweep", "launch", path]
    if namespace:
        args += ["-n", namespace]
    if name:
        args += ["--name", name]
    if max_trials:
        args += ["--max-trials", max_trials]
    lines: list[RenderableType] = [
        Text.assemble(("spec ", "dim"), (path, "bold"),
                      f"  namespace {namespace or 'from the spec / context'}"
                      + (f", name {name}" if name else "")
                      + (f", max_trials {max_trials}" if max_trials else "")),
        Text("  validated completely first (a bad field creates nothing); then the study, the "
             "storage Secret and the Indexed worker Job", style="dim"),
    ]
    if not storage:
        lines.append(Text(f"  no ${STORAGE_ENV} here: unless the spec names its `storage:`, "
                          "the launch refuses", style="yellow"))
    if head:
        lines.append(Text("\n".join(head), style="cyan"))
    lines.append(_runs(args))
    return Plan("sweep_launch", f"Launch the sweep in {os.path.basename(path)}?", lines, [],
                {"args": args})
