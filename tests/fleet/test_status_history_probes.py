"""Rollout status messages, history table bytes and probe formatting, as kubectl prints them."""

from __future__ import annotations

import pytest

from fleet import derive
from fleet.errors import FleetError
from fleet.ops.history import format_history, revisions_of
from fleet.ops.probes import describe_probe, probe_events, probe_specs
from fleet.ops.status import DeadlineExceeded, status_message
from tests.fleet.objects import deployment, event, history_set, pod


def _dep(**status):
    d = deployment(replicas=3)
    d["status"] = {"observedGeneration": 3, **status}
    return d


def test_status_messages_in_kubectl_order():
    assert status_message(_dep(updatedReplicas=1, replicas=3)) == (
        'Waiting for deployment "resnet" rollout to finish: 1 out of 3 new replicas have been '
        "updated...", False)
    assert status_message(_dep(updatedReplicas=3, replicas=4)) == (
        'Waiting for deployment "resnet" rollout to finish: 1 old replicas are pending '
        "termination...", False)
    assert status_message(_dep(updatedReplicas=3, replicas=3, availableReplicas=2)) == (
        'Waiting for deployment "resnet" rollout to finish: 2 of 3 updated replicas are '
        "available...", False)
    assert status_message(_dep(updatedReplicas=3, replicas=3, availableReplicas=3)) == (
        'deployment "resnet" successfully rolled out', True)
    unobserved = _dep()
    unobserved["status"]["observedGeneration"] = 2
    assert status_message(unobserved) == (
        "Waiting for deployment spec update to be observed...", False)


def test_status_errors():
    stalled = _dep(conditions=[{"type": "Progressing", "status": "False",
                                "reason": "ProgressDeadlineExceeded"}])
    with pytest.raises(DeadlineExceeded, match='^deployment "resnet" exceeded its progress '):
        status_message(stalled)
    with pytest.raises(FleetError, match=r"desired revision \(5\) is different from the "
                                         r"running revision \(3\)"):
        status_message(_dep(), revision=5)


def test_history_table_bytes():
    dep, rss = history_set()
    revs = revisions_of(dep, rss)
    assert [(r.revision, r.current) for r in revs] == [(1, False), (2, False), (3, True)]
    assert format_history("resnet", revs) == (
        "deployment.apps/resnet \n"
        "REVISION  CHANGE-CAUSE\n"
        "1         initial\n"
        "2         <none>\n"
        "3         bump to 3\n"
        "\n"
    )
    assert format_history("x", []) == "deployment.apps/x No rollout history found.\n"


def test_describe_probe_lines_1_37():
    http = {"httpGet": {"path": "/v2/health/ready", "port": 8080, "scheme": "HTTP"},
            "timeoutSeconds": 1, "periodSeconds": 10, "successThreshold": 1,
            "failureThreshold": 3}
    assert describe_probe(http)[2] == (
        "http-get http://:8080/v2/health/ready delay=0s timeout=1s period=10s "
        "successThreshold=1 failureThreshold=3")
    assert describe_probe({"tcpSocket": {"port": "grpc"}, "initialDelaySeconds": 5})[2] == (
        "tcp-socket :grpc delay=5s timeout=1s period=10s successThreshold=1 failureThreshold=3")
    assert describe_probe({"exec": {"command": ["cat", "/tmp/ok"]}})[2].startswith(
        "exec [cat /tmp/ok] delay=0s")
    assert describe_probe({"httpGet": {"host": "h", "port": 443, "scheme": "HTTPS",
                                       "path": "x"}})[1] == "https://h:443/x"


def test_probe_specs_and_events_newest_first():
    specs = probe_specs(deployment()["spec"]["template"])
    assert [(s.container, s.kind, s.handler, s.target) for s in specs] == [
        ("server", "readiness", "http-get", "http://:8080/v2/health/ready")]
    pods = [derive.pod_summary(pod("p1", "rs"))]
    evs = [derive.event_record(e) for e in (
        event("a", "p1", "Unhealthy", "Readiness probe failed: x", last="2026-11-27T01:00:00Z"),
        event("b", "p1", "BackOff", "Back-off restarting", last="2026-11-27T01:05:00Z"),
        event("c", "p1", "Pulled", "pulled", last="2026-11-27T01:06:00Z", etype="Normal"),
        event("d", "p1", "Killing", "stale pod", last="2026-11-27T01:07:00Z", uid="old-uid"),
        event("e", "p2", "Unhealthy", "other pod", last="2026-11-27T01:08:00Z"),
    )]
    assert [e.name for e in probe_events(evs, pods)] == ["b", "a"]
