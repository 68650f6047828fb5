"""Rollout status messages, history table bytes and probe formatting, as kubectl prints them."""

from __future__ import annotations

import pytest

from fleet import derive
from fleet.errors import FleetError, RevisionNotFound
from fleet.kube import collection_path, deployment_path
from fleet.ops.history import (
    format_history,
    format_revision,
    history,
    history_at,
    revision_template,
    revisions_of,
    tabwrite,
)
from fleet.ops.probes import describe_probe, probe_events, probe_specs
from fleet.ops.status import DeadlineExceeded, status_message
from tests.fleet.fakeapi import FakeApi
from tests.fleet.objects import deployment, event, history_set, pod, replicaset, template


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


def test_status_reads_omitted_fields_as_zero():
    # the API omits zero counts (omitempty) and observedGeneration until the controller acts
    new = deployment(replicas=3, generation=1, status={})
    assert status_message(new) == ("Waiting for deployment spec update to be observed...", False)
    assert status_message(_dep(replicas=1)) == (
        'Waiting for deployment "resnet" rollout to finish: 0 out of 3 new replicas have been '
        "updated...", False)
    assert status_message(_dep(replicas=3, updatedReplicas=3)) == (
        'Waiting for deployment "resnet" rollout to finish: 0 of 3 updated replicas are '
        "available...", False)
    scaled_to_zero = deployment(replicas=0, status={"observedGeneration": 3})
    assert status_message(scaled_to_zero) == ('deployment "resnet" successfully rolled out', True)


def test_status_checks_any_positive_revision():
    with pytest.raises(FleetError, match=r"desired revision \(1\) is different from the "
                                         r"running revision \(3\)"):
        status_message(_dep(), revision=1)
    assert status_message(_dep(updatedReplicas=3, replicas=3, availableReplicas=3),
                          revision=3)[1]


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


def test_history_reads_the_deployment_and_its_replicasets():
    api = FakeApi()
    dep, rss = history_set()
    rss[0]["status"] = {}  # a ReplicaSet scaled to 0 omits status.replicas
    api.objects[deployment_path("ns1", "resnet")] = dep
    api.lists[collection_path("apps/v1", "replicasets", "ns1")] = rss
    revs = history(api, "ns1", "resnet")
    assert [(r.revision, r.change_cause, r.current) for r in revs] == [
        (1, "initial", False), (2, "", False), (3, "bump to 3", True)]
    assert [(r.replicaset, r.created.isoformat(), r.replicas) for r in revs] == [
        ("resnet-aaa1", "2026-11-27T01:00:00+00:00", 0),
        ("resnet-bbb2", "2026-11-27T01:05:00+00:00", 0),
        ("resnet-ccc3", "2026-11-27T01:10:00+00:00", 2)]
    generation, again = history_at(api, "ns1", "resnet")
    assert generation == dep["metadata"]["generation"] and again == revs


def _history_api(extra_rs: list | None = None) -> FakeApi:
    api = FakeApi()
    dep, rss = history_set()
    api.objects[deployment_path("ns1", "resnet")] = dep
    api.lists[collection_path("apps/v1", "replicasets", "ns1")] = rss + (extra_rs or [])
    return api


def test_an_unparsable_revision_is_left_out_of_the_history():
    bad = replicaset("resnet-zzz9", "x", template(image="registry.local/serve:9"),
                     created="2026-11-27T00:50:00Z")
    api = _history_api([bad])
    assert [r.revision for r in history(api, "ns1", "resnet")] == [1, 2, 3]
    with pytest.raises(RevisionNotFound, match="^unable to find the specified revision$"):
        revision_template(api, "ns1", "resnet", 9)


def test_revision_template_is_the_replicasets_with_its_change_cause():
    api = _history_api()
    one = revision_template(api, "ns1", "resnet", 1)
    assert one["spec"]["containers"][0]["image"] == "registry.local/serve:1"
    assert one["metadata"]["annotations"] == {"kubernetes.io/change-cause": "initial"}
    assert one["metadata"]["labels"]["pod-template-hash"] == "aaa1"  # kubectl prints it
    two = revision_template(api, "ns1", "resnet", 2)
    assert "annotations" not in two["metadata"]
    assert two["spec"]["containers"][0]["image"] == "registry.local/serve:2"
    with pytest.raises(RevisionNotFound, match="^unable to find the specified revision$"):
        revision_template(api, "ns1", "resnet", 4)
    text = format_revision("resnet", 1, one)
    assert text.startswith("deployment.apps/resnet with revision #1\nPod Template:\n")
    assert "kubernetes.io/change-cause: initial" in text and text.endswith("\n\n")


def test_tabwrite_pads_like_go_tabwriter_even_an_empty_column():
    assert tabwrite([["A", "", "x"], ["BBB", "", "y"]]) == "A      x\nBBB    y\n"
    assert tabwrite([["A", "x"]], padding=3) == "A   x\n"


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
    assert describe_probe({"grpc": {"port": 9090}, "periodSeconds": 5}) == (
        "grpc", "<pod>:9090 ",
        "grpc <pod>:9090  delay=0s timeout=1s period=5s successThreshold=1 failureThreshold=3")
    assert describe_probe({"periodSeconds": 5}) == (
        "unknown", "", "unknown delay=0s timeout=1s period=5s successThreshold=1 "
        "failureThreshold=3")


def test_probe_specs_keep_the_numbers_and_apply_the_api_defaults():
    tmpl = {"spec": {"containers": [{"name": "s", "livenessProbe": {
        "tcpSocket": {"port": 8080}}, "readinessProbe": {
        "httpGet": {"path": "/ready", "port": 8080}, "initialDelaySeconds": 3,
        "timeoutSeconds": 2, "periodSeconds": 7, "successThreshold": 2,
        "failureThreshold": 5}}]}}
    live, ready = probe_specs(tmpl)
    assert (live.kind, live.initial_delay, live.timeout, live.period, live.success_threshold,
            live.failure_threshold) == ("liveness", 0, 1, 10, 1, 3)
    assert (ready.kind, ready.initial_delay, ready.timeout, ready.period,
            ready.success_threshold, ready.failure_threshold) == ("readiness", 3, 2, 7, 2, 5)
    assert ready.describe == ("http-get http://:8080/ready delay=3s timeout=2s period=7s "
                              "successThreshold=2 failureThreshold=5")


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


def test_probe_events_by_time_not_name_and_by_name_when_uid_is_missing():
    pods = [derive.pod_summary(pod("p1", "rs"))]
    no_uid = event("m-no-uid", "p1", "Unhealthy", "Liveness probe failed",
                   last="2026-11-27T01:03:00Z")
    del no_uid["involvedObject"]["uid"]
    other = event("n-no-uid", "p2", "Unhealthy", "other pod", last="2026-11-27T01:04:00Z")
    del other["involvedObject"]["uid"]
    evs = [derive.event_record(e) for e in (
        event("z-old", "p1", "Unhealthy", "Readiness probe failed", last="2026-11-27T01:00:00Z"),
        event("a-new", "p1", "Unhealthy", "Readiness probe failed", last="2026-11-27T01:05:00Z"),
        no_uid, other)]
    assert [e.name for e in probe_events(evs, pods)] == ["a-new", "m-no-uid", "z-old"]


def test_inspect_reads_the_deployments_pods_and_their_probe_events():
    from fleet.ops.probes import inspect

    api = FakeApi()
    dep, rss = history_set()
    api.objects[deployment_path("ns1", "resnet")] = dep
    api.lists[collection_path("apps/v1", "replicasets", "ns1")] = rss
    api.lists[collection_path("v1", "pods", "ns1")] = [
        pod("resnet-ccc3-b", "resnet-ccc3", ready=False), pod("resnet-ccc3-a", "resnet-ccc3"),
        pod("stranger-x", "stranger")]
    api.lists[collection_path("v1", "events", "ns1")] = [
        event("e1", "resnet-ccc3-b", "Unhealthy", "Readiness probe failed: 503",
              last="2026-11-27T01:12:00Z")]
    rep = inspect(api, "ns1", "resnet")
    assert (rep.namespace, rep.name) == ("ns1", "resnet")
    assert [p.name for p in rep.pods] == ["resnet-ccc3-a", "resnet-ccc3-b"]
    assert [(s.kind, s.target) for s in rep.probes] == [
        ("readiness", "http://:8080/v2/health/ready")]
    assert [e.name for e in rep.events] == ["e1"]
    assert rep.health == "unready"  # one of the two pods is not Ready
    assert (collection_path("v1", "pods", "ns1"), {"labelSelector": "app=m"}) in api.list_queries
