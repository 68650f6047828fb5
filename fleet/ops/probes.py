"""Probe inspection: probe specs in `kubectl describe` (1.37) form, pod readiness, container
restarts/terminations and the recent Unhealthy / BackOff / Killing events, newest first."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from fleet import replicasets
from fleet.derive import event_record, pod_summary, probe_health
from fleet.kube import collection_path
from fleet.model import EPOCH, EventRecord, PodSummary, ProbeReport, ProbeSpec
from fleet.ops._common import get_deployment, list_owned_replicasets

if TYPE_CHECKING:
    from fleet.api_client import Reader

PROBE_KINDS = (("liveness", "livenessProbe"), ("readiness", "readinessProbe"),
               ("startup", "startupProbe"))
PROBE_EVENT_REASONS = frozenset({"Unhealthy", "BackOff", "Killing", "ProbeWarning"})
MAX_EVENTS = 50


def _port(value: Any) -> str:
    return "" if value is None else str(value)


def describe_probe(probe: dict[str, Any]) -> tuple[str, str, str]:
    """(handler, target, full line) like kubectl 1.37 `DescribeProbe`; API defaults applied."""
    attrs = (
        f"delay={int(probe.get('initialDelaySeconds') or 0)}s "
        f"timeout={int(probe.get('timeoutSeconds') or 1)}s "
        f"period={int(probe.get('periodSeconds') or 10)}s "
        f"successThreshold={int(probe.get('successThreshold') or 1)} "
        f"failureThreshold={int(probe.get('failureThreshold') or 3)}"
    )
    if "exec" in probe:
        target = "[" + " ".join((probe["exec"] or {}).get("command") or []) + "]"
        handler = "exec"
    elif "httpGet" in probe:
        h = probe["httpGet"] or {}
        scheme = str(h.get("scheme") or "HTTP").lower()
        host, port, path = h.get("host") or "", _port(h.get("port")), h.get("path") or ""
        hostport = (f"[{host}]:{port}" if ":" in host else f"{host}:{port}") if port else host
        if path and not path.startswith("/"):
            path = "/" + path
        target, handler = f"{scheme}://{hostport}{path}", "http-get"
    elif "tcpSocket" in probe:
        t = probe["tcpSocket"] or {}
        target, handler = f"{t.get('host') or ''}:{_port(t.get('port'))}", "tcp-socket"
    elif "grpc" in probe:
        g = probe["grpc"] or {}
        target, handler = f"<pod>:{g.get('port')} {g.get('service') or ''}", "grpc"
    else:
        return "unknown", "", f"unknown {attrs}"
    return handler, target, f"{handler} {target} {attrs}"


def probe_specs(template: dict[str, Any]) -> tuple[ProbeSpec, ...]:
    out = []
    for c in ((template or {}).get("spec") or {}).get("containers") or []:
        for kind, field in PROBE_KINDS:
            probe = c.get(field)
            if not probe:
                continue
            handler, target, line = describe_probe(probe)
            out.append(ProbeSpec(
                container=c.get("name", ""), kind=kind, handler=handler, target=target,
                initial_delay=int(probe.get("initialDelaySeconds") or 0),
                timeout=int(probe.get("timeoutSeconds") or 1),
                period=int(probe.get("periodSeconds") or 10),
                success_threshold=int(probe.get("successThreshold") or 1),
                failure_threshold=int(probe.get("failureThreshold") or 3),
                describe=line,
            ))
    return tuple(out)


def probe_events(events: list[EventRecord], pods: Sequence[PodSummary]) -> tuple[EventRecord, ...]:
    """Probe-related events on these pods (matched by UID, or name if no UID), newest first."""
    uids = {p.uid for p in pods}
    names = {p.name for p in pods}
    picked = [
        e for e in events
        if e.reason in PROBE_EVENT_REASONS and e.involved_kind == "Pod"
        and (e.involved_uid in uids or (not e.involved_uid and e.involved_name in names))
    ]
    picked.sort(key=lambda e: (e.last_seen or EPOCH, e.name), reverse=True)
    return tuple(picked[:MAX_EVENTS])


def inspect(client: Reader, namespace: str, name: str) -> ProbeReport:
    """Everything about one Deployment's probes, read live from the API."""
    dep = get_deployment(client, namespace, name)
    owned = {replicasets.meta(rs).get("name") for rs in list_owned_replicasets(client, dep)}
    selector = replicasets.selector_to_query((dep.get("spec") or {}).get("selector"))
    pods_doc = client.list_all(
        collection_path("v1", "pods", namespace), {"labelSelector": selector} if selector else None
    )
    pods = [pod_summary(p) for p in pods_doc.get("items") or []]
    pods = sorted((p for p in pods if p.owner in owned), key=lambda p: p.name)
    ev_doc = client.list_all(
        collection_path("v1", "events", namespace), {"fieldSelector": "involvedObject.kind=Pod"}
    )
    events = [event_record(e) for e in ev_doc.get("items") or []]
    return report(namespace, name, (dep.get("spec") or {}).get("template") or {}, pods, events)


def report(namespace: str, name: str, template: dict[str, Any], pods: Sequence[PodSummary],
           events: Iterable[EventRecord]) -> ProbeReport:
    """The probe report from what is already at hand (the watch cache, or a live read)."""
    pods = sorted(pods, key=lambda p: p.name)
    return ProbeReport(
        namespace=namespace,
        name=name,
        probes=probe_specs(template),
        pods=tuple(pods),
        events=probe_events(list(events), pods),
        health=probe_health(pods)[0],
    )
