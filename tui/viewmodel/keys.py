"""Every key and action in one table: the help screen and the command palette both read it."""

from __future__ import annotations

from typing import Any

from rich.markup import escape

SWEEP_ACTIONS = ("sweep_stop", "sweep_resume", "sweep_promote", "sweep_launch")
# app actions that write: refused in --readonly
WRITE_ACTIONS = {"rollback", "scale", "restart", "pause_resume", "rollout", "undo_wave", "deploy",
                 *SWEEP_ACTIONS}
# app actions RBAC may deny, shown disabled with the reason in the help and the palette
# (logs: a read, but RBAC may forbid it)
DENIABLE_ACTIONS = WRITE_ACTIONS | {"logs"}

# (area, key, action as run by App.run_action, description)
KEYMAP: list[tuple[str, str, str, str]] = [
    ("Navigate", "↑ ↓ PgUp PgDn Home End", "", "move the cursor"),
    ("Navigate", "Enter / d", "app.detail", "open the deployment: revisions, pods, probes, events"),
    ("Navigate", "p", "app.probes", "probe inspection of the deployment"),
    ("Navigate", "h", "app.history", "revision history (Enter on a revision rolls back to it)"),
    ("Navigate", "J", "screen.toggle_view", "next view: deployments → training jobs → sweeps"),
    ("Navigate", "w", "screen.sweeps_view", "the hyperparameter sweeps (again: back to the "
     "deployments)"),
    ("Navigate", "N", "app.namespace", "switch namespace"),
    ("Navigate", "C", "app.context", "switch kubeconfig context"),
    ("Navigate", "Esc", "screen.clear", "clear the filter / marks; back from a screen"),
    ("Jobs", "Tab", "", "to the re-training schedules (CronJobs) table and back"),
    ("Jobs", "Enter", "", "the whole progress and failure reason / last promotion"),
    ("Sweeps", "Enter / d", "", "the sweep's detail: trials (params as columns, sortable), "
     "best-so-far and per-epoch plots, parameter importances, worker pods"),
    ("Sweeps", "L", "app.sweep_launch", "launch a sweep from a spec file (fleet sweep launch)"),
    ("Sweeps", "X", "app.sweep_stop", "stop the sweep: suspend its pods, hand running trials "
     "back (fleet sweep stop)"),
    ("Sweeps", "R", "app.sweep_resume", "resume a stopped sweep to the same budget "
     "(fleet sweep resume)"),
    ("Sweeps", "P", "app.sweep_promote", "promote the best (or a chosen) trial's model into "
     "serving (fleet sweep promote)"),
    ("Sweeps", "l", "", "logs of a worker pod (detail: the highlighted trial's or pod's)"),
    ("Sweeps", "i", "", "detail: intermediate values of every trial / the highlighted one"),
    ("Sweeps", "S [ ]", "", "detail: sort the trials by a column (value, a parameter, …)"),
    ("Find", "/", "screen.filter", "fuzzy filter; `-l team=nlp,tier!=canary` label selector"),
    ("Find", "!", "screen.problems", "problems only: stalled rollouts, unready pods, crash loops"),
    ("Find", "n", "screen.next_problem", "jump to the next problem row"),
    ("Find", "S", "screen.sort_picker", "sort by a column (again to reverse); click a header"),
    ("Find", "[ ]", "screen.sort_next", "sort by the previous / next column"),
    ("Act", "u", "app.rollback", "roll back to the previous revision (works on stuck rollouts)"),
    ("Act", "s", "app.scale", "scale (all marked deployments if any are marked)"),
    ("Act", "r", "app.restart", "restart (rolling, like kubectl rollout restart)"),
    ("Act", "z", "app.pause_resume", "pause / resume the rollout"),
    ("Act", "o", "app.rollout", "roll out a new model URI or image"),
    ("Act", "W", "app.undo_wave", "incident: undo every rollout started within a time window"),
    ("Act", "D", "app.deploy", "deploy a new model (form: name, model URI, version, mode, "
     "replicas; dry run, confirm, progress until Available)"),
    ("Pods", "l", "app.logs", "logs of a pod of the deployment (picker; default the newest "
     "unready pod; in the Pods tab the highlighted one)"),
    ("Select", "Space", "screen.mark", "mark / unmark the row for bulk actions"),
    ("Select", "A", "screen.mark_all", "mark every row in view"),
    ("Select", "c", "screen.clear_marks", "clear the marks"),
    ("Detail", "1 2 3 4 5", "", "revisions, pods, probes, events, scaling (HPA) tabs"),
    ("Detail", "b", "", "set the diff base revision (diff: base → highlighted)"),
    ("Detail", "P", "", "run the readiness probe now against a pod: status, body head, latency"),
    ("Detail", "x", "", "send the example prediction (zeros from the model's metadata)"),
    ("Logs", "f", "", "follow on/off (streams and sticks to the tail; reconnects)"),
    ("Logs", "p", "", "previous container instance on/off"),
    ("Logs", "c", "", "choose the container"),
    ("Logs", "/", "", "filter lines (highlighted); Esc clears"),
    ("Logs", "w t", "", "wrap lines; show timestamps"),
    ("App", "Ctrl+P", "app.command_palette", "command palette (every action)"),
    ("App", "?", "app.help", "this help"),
    ("App", "q", "app.quit", "quit"),
]


def palette_entries(app: Any) -> list[tuple[str, str, str]]:
    """(title, help, action) for the command palette; disabled ones say why."""
    out = []
    for area, key, action, desc in KEYMAP:
        if not action or action == "app.command_palette":
            continue
        name = action.split(".", 1)[1]
        title = escape(f"{area}: {desc.split(';')[0].split(' (')[0]}  ({key})")
        why = app.denied(name) if hasattr(app, "denied") and name in DENIABLE_ACTIONS else None
        out.append((title if not why else f"{title} — disabled: {why}", desc, action))
    return out

