"""Plain-text renderings of fleet records for the CLI (the TUI has its own widgets)."""

from __future__ import annotations

from fleet.model import ProbeReport


def _when(dt) -> str:  # noqa: ANN001 - datetime | None
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ") if dt else "-"


def format_probe_report(report: ProbeReport) -> str:
    lines = [f"deployment.apps/{report.name}  probe health: {report.health}", "Probes:"]
    if not report.probes:
        lines.append("  <none>")
    for p in report.probes:
        lines.append(f"  {p.container}  {p.kind.capitalize()}:  {p.describe}")
    lines.append("Pods:")
    if not report.pods:
        lines.append("  <none>")
    for pod in report.pods:
        lines.append(
            f"  {pod.name}  phase={pod.phase} Ready={pod.ready} "
            f"ContainersReady={pod.containers_ready} restarts={pod.restarts}"
        )
        for c in pod.containers:
            state = c.state + (f" ({c.state_reason})" if c.state_reason else "")
            line = (f"    {c.name}: ready={c.ready} started={c.started} "
                    f"restartCount={c.restart_count} state={state}")
            t = c.last_termination
            if t:
                line += (f" lastTerminated={t.reason} exitCode={t.exit_code} "
                         f"at {_when(t.finished_at)}")
            lines.append(line)
    lines.append("Events (newest first):")
    if not report.events:
        lines.append("  <none>")
    for e in report.events:
        count = f" (x{e.count})" if e.count > 1 else ""
        lines.append(f"  {_when(e.last_seen)}  {e.type:<7} {e.reason:<9} {e.involved_name}: "
                     f"{e.message}{count}")
    return "\n".join(lines) + "\n"
