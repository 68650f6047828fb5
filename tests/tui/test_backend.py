"""KubeBackend against the in-memory API and a black-holed one: one revision source, the
detail screen served from the watch cache, and quitting that never waits for the API."""

from __future__ import annotations

import copy
import time

import pytest

from fleet.cache import FleetCache
from fleet.kube import collection_path, deployment_path
from fleet.ops.history import history
from tests.fleet.fakeapi import FakeApi
from tests.fleet.objects import event, history_set, pod
from tests.tui.blackhole import BlackHole
from tests.tui.waiting import until
from tests.waiting import eventually
from tui.app import FleetApp
from tui.backend import KubeBackend

SIDECAR = {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.24.0",
           "readinessProbe": {"httpGet": {"path": "/healthz/ready", "port": 15021}}}


def _api(sidecar: bool = False) -> FakeApi:
    dep, rss = history_set()
    if sidecar:
        for obj in (dep, *rss):
            obj["spec"]["template"]["spec"]["containers"].insert(0, copy.deepcopy(SIDECAR))
    dep["metadata"]["labels"] = {"app.kubernetes.io/component": "model-server"}
    api = FakeApi()
    api.objects[deployment_path("ns1", "resnet")] = dep
    api.lists[collection_path("apps/v1", "deployments", "ns1")] = [dep]
    api.lists[collection_path("apps/v1", "replicasets", "ns1")] = rss
    api.lists[collection_path("v1", "pods", "ns1")] = [pod("resnet-ccc3-a", "resnet-ccc3",
                                                           ready=False)]
    api.lists[collection_path("v1", "events", "ns1")] = [
        event("e1", "resnet-ccc3-a", "Unhealthy", "Readiness probe failed: 503",
              last="2026-11-27T01:00:00Z"),
        event("e2", "someone-else", "Unhealthy", "not ours", last="2026-11-27T01:00:00Z")]
    return api


def _backend(api: FakeApi) -> KubeBackend:
    b = KubeBackend(namespaces=["ns1"])
    b.client = api
    b.cache = FleetCache(api, ["ns1"]).start()
    assert b.cache.wait_synced(5)
    return b


def test_history_is_fleet_cores_with_the_serving_container_behind_a_sidecar():
    api = _api(sidecar=True)
    b = _backend(api)
    try:
        generation, revs = b.history("ns1", "resnet")
        assert generation == 3
        assert revs == history(api, "ns1", "resnet")  # the rows `fleet history` reads
        assert [r.image for r in revs] == [f"registry.local/serve:{i}" for i in (1, 2, 3)]
        assert [r.current for r in revs] == [False, False, True]
        assert revs[0].template["spec"]["containers"][0]["name"] == "istio-proxy"
        assert "pod-template-hash" not in revs[0].template["metadata"]["labels"]
    finally:
        b.stop()


def test_probes_come_from_the_watch_cache_without_api_calls():
    api = _api(sidecar=True)
    b = _backend(api)
    try:
        b.hold_events("ns1")  # what the detail screen does when it opens
        assert b.cache.events_synced("ns1", 5) is None
        assert eventually(lambda: ("WATCH", collection_path("v1", "events", "ns1")) in api.calls)
        api.calls.clear()
        report = b.probes("ns1", "resnet")
        assert api.calls == []
        assert [(s.container, s.kind) for s in report.probes] == [
            ("istio-proxy", "readiness"), ("server", "readiness")]
        assert [p.name for p in report.pods] == ["resnet-ccc3-a"]
        assert [e.name for e in report.events] == ["e1"]
        assert str(report.health) == "unready"
        with pytest.raises(LookupError):
            b.probes("ns1", "gone")
    finally:
        b.stop()


@pytest.mark.asyncio
async def test_quit_returns_within_a_second_with_the_api_black_holed(tmp_path):
    with BlackHole() as hole:
        config = str(hole.kubeconfig(tmp_path))
        backends: list[KubeBackend] = []

        def factory(ctx, namespaces):
            backends.append(KubeBackend(config, ctx, ["a", "b", "c"]))
            return backends[-1]

        app = FleetApp(factory, age_refresh_s=0)
        async with app.run_test(size=(120, 30)) as pilot:
            await until(pilot, lambda: hole.accepted >= 3, "LISTs hanging on the black hole")
            t0 = time.monotonic()
            await pilot.press("q")
        assert time.monotonic() - t0 < 1.0
        cache = backends[0].cache
        assert eventually(lambda: cache._stop.is_set(), timeout=2)


def test_hpas_join_their_deployment_by_scale_target_ref():
    api = _api()
    hpa = {"metadata": {"name": "resnet-hpa", "namespace": "ns1"},
           "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                       "name": "resnet"},
                    "minReplicas": 2, "maxReplicas": 6,
                    "metrics": [{"type": "Resource", "resource": {
                        "name": "cpu", "target": {"type": "Utilization",
                                                  "averageUtilization": 70}}}]},
           "status": {"currentReplicas": 3, "desiredReplicas": 4,
                      "currentMetrics": [{"type": "Resource", "resource": {
                          "name": "cpu", "current": {"averageUtilization": 91}}}]}}
    other = {"metadata": {"name": "elsewhere", "namespace": "ns1"},
             "spec": {"scaleTargetRef": {"kind": "StatefulSet", "name": "resnet"},
                      "maxReplicas": 2}}
    api.lists[collection_path("autoscaling/v2", "horizontalpodautoscalers", "ns1")] = [hpa,
                                                                                      other]
    api.lists[collection_path("v1", "events", "ns1")].append(
        event("e3", "resnet-hpa", "SuccessfulRescale", "New size: 4; reason: cpu above target",
              last="2026-11-27T01:00:00Z"))
    b = KubeBackend(namespaces=["ns1"])
    b.client = api
    b.cache = FleetCache(api, ["ns1"], autoscalers=True).start()
    try:
        assert b.cache.wait_synced(5)
        (rec,) = b.cache.deployments()
        assert rec.hpa is not None
        assert (rec.hpa.name, rec.hpa.min_replicas, rec.hpa.max_replicas,
                rec.hpa.current_replicas, rec.hpa.desired_replicas, rec.hpa.targets) == (
            "resnet-hpa", 2, 6, 3, 4, ("cpu: 91%/70%",))
        found, events = b.scaling("ns1", "resnet")  # no screen holds the namespace's Events
        assert found == rec.hpa and events == []
        release = b.hold_events("ns1")
        found, events = b.scaling("ns1", "resnet")  # waits for their first LIST
        assert [e.reason for e in events] == ["SuccessfulRescale"]
        release()
        with pytest.raises(LookupError, match="events in ns1 are not watched"):
            b.events("ns1", "resnet")
    finally:
        b.stop()
    assert FleetCache(api, ["ns1"]).hpa_for("ns1", "resnet") is None  # opt-in: no HPA watch


def test_access_reviews_name_the_core_group_for_pods_and_apps_for_deployments():
    api = FakeApi()
    reviews: list[dict] = []

    def review(attrs: dict) -> dict:
        reviews.append(dict(attrs))
        return {"allowed": True}

    api.review_status = review
    b = KubeBackend(namespaces=["ns1"])
    b.client = api
    for action in ("logs", "portforward", "scale", "rollback"):
        assert b.can_i(action, "ns1") == (True, "")
    assert [(r["group"], r["resource"], r.get("subresource")) for r in reviews] == [
        ("", "pods", "log"), ("", "pods", "portforward"), ("apps", "deployments", "scale"),
        ("apps", "deployments", None)]
