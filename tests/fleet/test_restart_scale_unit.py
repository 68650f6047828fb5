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

