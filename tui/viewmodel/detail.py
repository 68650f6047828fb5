"""Pure renderers for the detail screen: pods, events, probe report, summary (no Textual)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from fleet.model import EventRecord, ModelDeployment, PodSummary, ProbeReport
from tui.viewmodel.columns import human_age, utcnow

SPARK = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[int], top: int | None = None) -> str:
    """Unicode sparkline of ready replicas over time (scaled to `top`, e.g. desired)."""
    if not values:
        return ""
    hi = max(top or 0, max(values), 1)
    return "".join(SPARK[min(len(SPARK) - 1, round(v * (len(SPARK) - 1) / hi))] for v in values)


def age(ts: datetime | None, now: datetime | None = None) -> str:
    return human_age(ts, now or utcnow()) if ts else "-"


def pod_status(p: PodSummary) -> str:
    if p.deleting:
        return "Terminating"
    for c in p.containers:
        if c.state == "waiting" and c.state_reason:
            return c.state_reason
    if p.phase == "Running" and not p.ready:
        return "Running (not ready)"
    return p.phase


def pod_rows(pods: Iterable[PodSummary], now: datetime | None = None) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for p in pods:
        ready = sum(1 for c in p.containers if c.ready)
        out.append((p.name, f"{ready}/{len(p.containers) or 1}", pod_status(p),
                    str(p.restarts), p.node or "-", age(p.created, now)))
    return out


def event_rows(events: Iterable[EventRecord], now: datetime | None = None,
               ) -> list[tuple[str, ...]]:
    return [(age(e.last_seen, now), e.type, e.reason, f"{e.involved_kind}/{e.involved_name}",
             str(e.count), e.message.replace("\n", " ")) for e in events]


def summary(d: ModelDeployment, ready_history: Sequence[int]) -> Text:
    text = Text.assemble(
        (f"{d.namespace}/{d.name}", "bold"),
        f"   model {d.model} {d.version}   revision {d.revision}   ",
        f"ready {d.ready}/{d.desired}  up-to-date {d.updated}  available {d.available}   ",
        ("rollout ", "dim"), (str(d.rollout_state), "bold"),
        ("   probes ", "dim"), (str(d.probe_health), "bold"),
    )
    if d.paused:
        text.append("   PAUSED", style="bold magenta")
    text.append("\n")
    text.append(f"image {d.image}   MODEL_URI {d.model_uri or '-'}", style="dim")
    if ready_history:
        text.append("\nready replicas: ")
        text.append(sparkline(ready_history, d.desired), style="green")
        text.append(f"  (last {len(ready_history)} changes)", style="dim")
    return text


def probe_report(report: ProbeReport, now: datetime | None = None) -> RenderableType:
    """Probe specs, pod conditions and restarts, last terminations, recent Unhealthy events."""
    now = now or utcnow()
    parts: list[RenderableType] = []
    specs = Table(title="probes", title_justify="left", expand=True)
    for col in ("container", "kind", "handler", "target", "delay", "timeout", "period",
                "success", "failure"):
        specs.add_column(col)
    for s in report.probes:
        specs.add_row(s.container, s.kind, s.handler, s.target, f"{s.initial_delay}s",
                      f"{s.timeout}s", f"{s.period}s", str(s.success_threshold),
                      str(s.failure_threshold))
    if not report.probes:
        parts.append(Text("no probes configured: the pods count as ready as soon as they run",
                          style="yellow"))
    else:
        parts.append(specs)
    pods = Table(title="pods", title_justify="left", expand=True)
    for col in ("pod", "ready", "status", "restarts", "conditions", "last termination"):
        pods.add_column(col)
    for p in report.pods:
        conds = " ".join(f"{c.type}={c.status}" for c in p.conditions
                         if c.type in ("Ready", "ContainersReady"))
        terms = []
        for c in p.containers:
            t = c.last_termination
            if t is not None:
                terms.append(f"{c.name}: {t.reason or 'terminated'} exit {t.exit_code}"
                             f" {age(t.finished_at, now)} ago")
        pods.add_row(p.name, "yes" if p.ready else Text("no", style="red"), pod_status(p),
                     str(p.restarts), conds, "; ".join(terms) or "-")
    parts.append(pods)
    ev = Table(title="recent probe events", title_justify="left", expand=True)
    for col in ("last seen", "reason", "count", "object", "message"):
        ev.add_column(col)
    for e in report.events[:10]:
        ev.add_row(age(e.last_seen, now), Text(e.reason, style="yellow"), str(e.count),
                   e.involved_name, e.message)
    if not report.events:
        parts.append(Text("no Unhealthy/BackOff events", style="dim"))
    else:
        parts.append(ev)
    return Group(Text(f"probe health: {report.health}", style="bold"), *parts)


# --- probe now, one prediction, autoscaler ------------------------------------------------------

def _json_head(value: object, limit: int = 1200) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"),
                                                           default=str)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} characters)"


def probe_result_lines(r) -> list[RenderableType]:
    """`fleet.ops.predict.ProbeResult`: status code, body head, latency."""
    style = "bold green" if r.ok else "bold red"
    return [
        Text.assemble(("GET ", "dim"), r.url, ("  via ", "dim"), r.via,
                      ("  container ", "dim"), r.container),
        Text.assemble(("status ", "dim"), (str(r.status), style),
                      ("  success" if r.ok else "  failure (the kubelet counts 200-399)", style)),
        Text.assemble(("latency ", "dim"), f"{r.latency_ms:.1f} ms",
                      ("   connect ", "dim"), f"{r.connect_ms:.1f} ms"),
        Text("body (head):", style="dim"),
        Text(r.body_head or "(empty)"),
    ]


def predict_result_lines(r) -> list[RenderableType]:
    """`fleet.ops.predict.PredictResult`: who answered, status, latency, request and answer."""
    style = "bold green" if r.ok else "bold red"
    lines: list[RenderableType] = [
        Text.assemble(("pod ", "dim"), r.pod, ("  model ", "dim"), r.model,
                      ("  protocol ", "dim"), r.protocol, ("  via ", "dim"), r.via),
        Text.assemble(("POST ", "dim"), r.path, ("  status ", "dim"), (str(r.status), style)),
        Text.assemble(("latency ", "dim"), f"{r.latency_ms:.1f} ms",
                      ("   connect ", "dim"), f"{r.connect_ms:.1f} ms"),
    ]
    if not r.ok:
        lines.append(Text.assemble(("model error: ", "bold red"), r.error or "-"))
    lines += [Text("request (the example input):", style="dim"), Text(_json_head(r.request)),
              Text("response:", style="dim"), Text(_json_head(r.response))]
    return lines


def hpa_line(hpa) -> Text:
    """`hpa digits 1–5 current 2 desired 3 cpu: 12%/70%` (kubectl get hpa's columns)."""
    if hpa is None:
        return Text("no HorizontalPodAutoscaler: replicas are set by hand", style="dim")
    text = Text.assemble(("hpa ", "dim"), (hpa.name, "bold"),
                         ("  min ", "dim"), str(hpa.min_replicas),
                         ("  max ", "dim"), str(hpa.max_replicas),
                         ("  current ", "dim"), str(hpa.current_replicas),
                         ("  desired ", "dim"), str(hpa.desired_replicas),
                         ("  targets ", "dim"), ", ".join(hpa.targets) or "-")
    limited = next((c for c in hpa.conditions if c.type == "ScalingLimited"
                    and c.status == "True"), None)
    if limited is not None:
        text.append(f"  limited: {limited.reason}", style="yellow")
    return text


def hpa_report(hpa, now: datetime | None = None) -> RenderableType:
    if hpa is None:
        return hpa_line(None)
    conds = Table(title="conditions", title_justify="left", expand=True)
    for col in ("type", "status", "reason", "message"):
        conds.add_column(col)
    for c in hpa.conditions:
        conds.add_row(c.type, c.status, c.reason, c.message)
    last = Text(f"last scale: {age(hpa.last_scale, now)} ago" if hpa.last_scale
                else "last scale: never", style="dim")
    return Group(hpa_line(hpa), last, conds)
