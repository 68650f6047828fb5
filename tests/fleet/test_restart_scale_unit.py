"""restart/pause/resume and scale against the in-memory API: kubectl's checks and wire format."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from fleet.errors import DeploymentPaused, FleetError, InvalidReplicas, PreconditionFailed
from fleet.kube import MERGE_PATCH, STRATEGIC_PATCH, deployment_path
from fleet.ops import restart, scale
from fleet.ops._common import rfc3339_local
from tests.fleet.fakeapi import FakeApi
from tests.fleet.objects import deployment

DEP = deployment_path("ns1", "resnet")
SCALE = deployment_path("ns1", "resnet", "scale")


def _api(paused: bool = False) -> FakeApi:
    api = FakeApi()
    api.objects[DEP] = deployment(paused=paused)
    api.objects[SCALE] = {"kind": "Scale", "apiVersion": "autoscaling/v1",
                          "metadata": {"name": "resnet", "namespace": "ns1",
                                       "resourceVersion": "1234"},
                          "spec": {"replicas": 2}, "status": {"replicas": 2}}
    return api


@pytest.fixture
def local_zone(monkeypatch):
    """Run with the process's local zone set (POSIX TZ strings need no tz database)."""

    def use(tz: str) -> None:
        monkeypatch.setenv("TZ", tz)
        time.tzset()

    yield use
    monkeypatch.undo()
    time.tzset()


def test_rfc3339_like_go_in_local_time(local_zone):
    t = datetime(2026, 5, 1, 12, 0, 0, 999, tzinfo=timezone(timedelta(hours=2)))  # 10:00 UTC
    local_zone("XST-05:30")  # five and a half hours east of UTC
    assert rfc3339_local(t) == "2026-05-01T15:30:00+05:30"
    local_zone("YST+07")
    assert rfc3339_local(t) == "2026-05-01T03:00:00-07:00"
    local_zone("UTC0")
    assert rfc3339_local(t) == "2026-05-01T10:00:00Z"
    assert rfc3339_local(datetime(2026, 5, 1, 10, 0, 0, 5, tzinfo=UTC)) == "2026-05-01T10:00:00Z"


def test_restart_patch_and_same_second_guard():
    api = _api()
    now = datetime(2026, 11, 27, 4, 0, 0, tzinfo=UTC)
    res = restart.restart(api, "ns1", "resnet", now=now)
    assert res.message == "deployment.apps/resnet restarted"
    path, ctype, body, query = api.patches[-1]
    stamp = rfc3339_local(now)
    assert (ctype, query) == (STRATEGIC_PATCH, {"fieldManager": "kubectl-rollout"})
    assert body == {"spec": {"template": {"metadata": {"annotations": {
        "kubectl.kubernetes.io/restartedAt": stamp}}}}}
    with pytest.raises(FleetError, match="^failed to create patch for resnet: if restart has "
                                         "already been triggered within the past second"):
        restart.restart(api, "ns1", "resnet", now=now)


def test_pause_resume_messages_and_errors():
    api = _api()
    with pytest.raises(PreconditionFailed, match=r'^deployments.apps "resnet" is not paused$'):
        restart.resume(api, "ns1", "resnet")
    assert restart.pause(api, "ns1", "resnet").message == "deployment.apps/resnet paused"
    with pytest.raises(DeploymentPaused, match=r'^deployments.apps "resnet" is already paused$'):
        restart.pause(api, "ns1", "resnet")
    with pytest.raises(DeploymentPaused, match=r"can't restart paused deployment \(run rollout "
                                               r"resume first\)$"):
        restart.restart(api, "ns1", "resnet")
    assert restart.resume(api, "ns1", "resnet").message == "deployment.apps/resnet resumed"
    assert "paused" not in api.objects[DEP]["spec"]


def test_scale_without_precondition_is_a_merge_patch_of_the_scale_subresource():
    api = _api()
    assert scale.scale(api, "ns1", "resnet", 5).message == "deployment.apps/resnet scaled"
    assert api.patches[-1][:3] == (SCALE, MERGE_PATCH, {"spec": {"replicas": 5}})


def test_scale_precondition_put_retries_conflicts_and_validates(monkeypatch):
    monkeypatch.setattr(scale, "CONFLICT_RETRY_INTERVAL", 0.01)
    api = _api()
    api.put_conflicts = 2
    res = scale.scale(api, "ns1", "resnet", 4, current_replicas=2)
    assert res.changed and api.objects[SCALE]["spec"]["replicas"] == 4
    assert sum(1 for c in api.calls if c[0] == "PUT") == 3
    with pytest.raises(PreconditionFailed, match="^Expected replicas to be 2, was 4$"):
        scale.scale(api, "ns1", "resnet", 1, current_replicas=2)
    with pytest.raises(PreconditionFailed, match="^Expected resource version to be 1, was "):
        scale.scale(api, "ns1", "resnet", 1, resource_version="1")
    with pytest.raises(InvalidReplicas, match="COUNT must be greater than or equal to 0"):
        scale.scale(api, "ns1", "resnet", -1)
    with pytest.raises(InvalidReplicas, match="integer of -1 or greater"):
        scale.scale(api, "ns1", "resnet", 1, current_replicas=-2)



def test_scale_reports_the_servers_resource_version_on_both_paths():
    api = _api()
    res = scale.scale(api, "ns1", "resnet", 3)
    assert res.changed and res.resource_version == api.objects[SCALE]["metadata"]["resourceVersion"]
    res = scale.scale(api, "ns1", "resnet", 4, resource_version=res.resource_version)
    assert res.changed and api.objects[SCALE]["spec"]["replicas"] == 4
    assert ("PUT", SCALE) in api.calls
    assert res.resource_version == api.objects[SCALE]["metadata"]["resourceVersion"]
    same = scale.scale(api, "ns1", "resnet", 4, current_replicas=4)
    assert not same.changed and same.message == "deployment.apps/resnet scaled"


def test_scale_to_zero_and_current_replicas_minus_one_means_no_precondition():
    api = _api()
    assert scale.scale(api, "ns1", "resnet", 0, current_replicas=-1).changed
    assert api.patches[-1][:3] == (SCALE, MERGE_PATCH, {"spec": {"replicas": 0}})
    assert not any(c[0] == "PUT" for c in api.calls)


def test_scale_precondition_on_zero_replicas_whose_spec_omits_them():
    # a Scale at 0 replicas serializes `spec: {}` (replicas is omitempty)
    api = _api()
    api.objects[SCALE]["spec"] = {}
    with pytest.raises(PreconditionFailed, match="^Expected replicas to be 1, was 0$"):
        scale.scale(api, "ns1", "resnet", 2, current_replicas=1)
    res = scale.scale(api, "ns1", "resnet", 2, current_replicas=0)
    assert res.changed and api.objects[SCALE]["spec"]["replicas"] == 2
    with pytest.raises(PreconditionFailed, match="^Expected replicas to be 0, was 2$"):
        scale.scale(api, "ns1", "resnet", 3, current_replicas=0)


def test_scale_conflicts_past_the_retry_timeout_are_raised(monkeypatch):
    from fleet.errors import Conflict

    monkeypatch.setattr(scale, "CONFLICT_RETRY_INTERVAL", 0.01)
    api = _api()
    api.put_conflicts = 1
    with pytest.raises(Conflict):
        scale.scale(api, "ns1", "resnet", 4, current_replicas=2, retry_timeout=0)
    assert api.objects[SCALE]["spec"]["replicas"] == 2


def test_restart_pause_resume_report_a_change_and_the_new_resource_version():
    api = _api()
    for op in (restart.restart, restart.pause, restart.resume):
        res = op(api, "ns1", "resnet")
        assert res.changed
        assert res.resource_version == api.objects[DEP]["metadata"]["resourceVersion"] != "1234"


def test_last_writer_is_the_newest_spec_writer():
    from fleet.ops._common import last_writer

    dep = deployment()
    dep["metadata"]["managedFields"] = [
        {"manager": "a-old", "operation": "Update", "time": "2026-11-27T01:00:00Z"},
        {"manager": "b-new", "operation": "Update", "time": "2026-11-27T02:00:00Z"},
        {"manager": "kube-controller-manager", "operation": "Update",
         "time": "2026-11-27T03:00:00Z", "subresource": "status"},
        {"manager": "c-same-time", "operation": "Apply", "time": "2026-11-27T02:00:00Z"},
    ]
    assert last_writer(dep) == ("c-same-time", "2026-11-27T02:00:00Z")
    assert last_writer(deployment()) == ("", "")


def test_owned_replicasets_are_listed_by_the_deployments_selector():
    from fleet.kube import collection_path
    from fleet.ops._common import list_owned_replicasets

    api = _api()
    dep = deployment()
    dep["spec"]["selector"] = {"matchLabels": {"app": "m", "tier": "serving"}}
    assert list_owned_replicasets(api, dep) == []
    assert api.list_queries == [(collection_path("apps/v1", "replicasets", "ns1"),
                                 {"labelSelector": "app=m,tier=serving"})]
