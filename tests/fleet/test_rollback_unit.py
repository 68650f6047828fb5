"""Rollback/rollout flow against the in-memory API: messages, precondition, conflict retry."""

from __future__ import annotations

import pytest

from fleet.errors import Conflict, DeploymentPaused, NoRolloutHistory, NotFound
from fleet.kube import collection_path, deployment_path
from fleet.ops.rollback import rollback
from fleet.ops.rollout import rollout
from tests.fleet.fakeapi import FakeApi
from tests.fleet.objects import history_set

DEP = deployment_path("ns1", "resnet")


def _api(paused: bool = False) -> FakeApi:
    api = FakeApi()
    dep, rss = history_set()
    if paused:
        dep["spec"]["paused"] = True
    api.objects[DEP] = dep
    api.lists[collection_path("apps/v1", "replicasets", "ns1")] = rss
    return api


def test_rollback_previous_writes_rs_template_and_warns_about_last_applied():
    api = _api()
    res = rollback(api, "ns1", "resnet")
    assert res.message == "deployment.apps/resnet rolled back" and res.changed
    assert res.revision == 2
    assert res.warning.startswith("Warning: resource deployments/resnet was previously managed")
    dep = api.objects[DEP]
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.local/serve:2"
    assert "pod-template-hash" not in dep["spec"]["template"]["metadata"]["labels"]


def test_rollback_to_current_is_skipped_with_requested_number():
    api = _api()
    res = rollback(api, "ns1", "resnet", 3)
    assert res.message == (
        "deployment.apps/resnet skipped rollback (current template already matches revision 3)")
    assert not res.changed and ("PATCH", DEP) not in api.calls


def test_paused_and_not_found():
    with pytest.raises(DeploymentPaused, match="^you cannot rollback a paused deployment; resume"):
        rollback(_api(paused=True), "ns1", "resnet")
    with pytest.raises(NotFound, match=r'deployments.apps "nope" not found'):
        rollback(_api(), "ns1", "nope")


def test_no_history_checked_before_paused():
    api = _api(paused=True)
    path = collection_path("apps/v1", "replicasets", "ns1")
    api.lists[path] = api.lists[path][2:]
    with pytest.raises(NoRolloutHistory):
        rollback(api, "ns1", "resnet")


def test_spec_change_between_read_and_write_is_a_conflict_and_nothing_is_written():
    api = _api()

    def other_writer(path: str) -> None:
        obj = api.objects[path]
        obj["metadata"]["resourceVersion"] = api.next_rv()
        obj["metadata"]["generation"] += 1
        obj["metadata"]["managedFields"] = [{"manager": "kubectl-edit", "operation": "Update",
                                             "time": "2026-11-27T03:00:00Z"}]
        api.before_patch = None

    api.before_patch = other_writer
    with pytest.raises(Conflict) as info:
        rollback(api, "ns1", "resnet")
    msg = info.value.message
    assert "changed by kubectl-edit at 2026-11-27T03:00:00Z" in msg
    assert "generation 3 -> 4" in msg and "nothing was rolled back" in msg
    img = api.objects[DEP]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert img == "registry.local/serve:3"


def test_status_only_change_is_retried_on_fresh_object():
    api = _api()

    def status_writer(path: str) -> None:
        api.objects[path]["metadata"]["resourceVersion"] = api.next_rv()
        api.before_patch = None

    api.before_patch = status_writer
    res = rollback(api, "ns1", "resnet")
    assert res.changed and sum(1 for c in api.calls if c[0] == "PATCH") == 2


def test_expected_generation_and_resource_version_preconditions():
    api = _api()
    with pytest.raises(Conflict, match=r"\(generation 2 -> 3\); nothing was rolled back"):
        rollback(api, "ns1", "resnet", expected_generation=2)
    with pytest.raises(Conflict, match=r"\(resourceVersion 1 -> 1234\); nothing"):
        rollback(api, "ns1", "resnet", expected_resource_version="1")
    assert rollback(api, "ns1", "resnet", expected_resource_version="1234").changed


def test_rollout_sets_uri_and_change_cause_with_precondition():
    api = _api()
    res = rollout(api, "ns1", "resnet", model_uri="hdfs:///models/m/9", reason="canary 9")
    assert res.message == "deployment.apps/resnet env updated" and res.changed
    dep = api.objects[DEP]
    assert dep["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "MODEL_URI", "value": "hdfs:///models/m/9"}]
    assert dep["metadata"]["annotations"]["kubernetes.io/change-cause"] == "canary 9"
    again = rollout(api, "ns1", "resnet", model_uri="hdfs:///models/m/9")
    assert not again.changed and again.message == "deployment.apps/resnet unchanged"
    res = rollout(api, "ns1", "resnet", image="registry.local/serve:9")
    assert res.message == "deployment.apps/resnet image updated"
    assert api.objects[DEP]["metadata"]["annotations"]["kubernetes.io/change-cause"] == (
        "fleet rollout resnet --image=registry.local/serve:9")


def test_deployment_owned_by_another_controller_is_refused_unless_forced():
    from fleet.errors import ManagedElsewhere, PreconditionFailed

    api = _api()
    api.objects[DEP]["metadata"]["ownerReferences"] = [{
        "apiVersion": "serving.kserve.io/v1beta1", "kind": "InferenceService", "name": "resnet",
        "uid": "isvc-1", "controller": True}]
    with pytest.raises(ManagedElsewhere) as info:
        rollback(api, "ns1", "resnet")
    assert isinstance(info.value, PreconditionFailed)
    assert 'managed by InferenceService "resnet" (serving.kserve.io)' in info.value.message
    with pytest.raises(ManagedElsewhere):
        rollout(api, "ns1", "resnet", image="x:9")
    assert not any(c[0] == "PATCH" for c in api.calls)
    assert rollback(api, "ns1", "resnet", force=True).changed


def test_a_409_from_the_patch_is_a_race_too():
    api = _api()

    def racing_conflict(path: str) -> None:
        api.objects[path]["metadata"]["resourceVersion"] = api.next_rv()  # status moved
        api.before_patch = None
        raise Conflict("Error from server (Conflict): the object has been modified",
                       status=409, reason="Conflict")

    api.before_patch = racing_conflict
    res = rollback(api, "ns1", "resnet")
    assert res.changed and sum(1 for c in api.calls if c[0] == "PATCH") == 2


def test_a_refused_patch_that_is_no_race_is_reported_as_kubectl_does():
    from fleet.errors import Forbidden

    api = _api()

    def refuse(path: str) -> None:
        raise Forbidden('deployments.apps "resnet" is forbidden', status=403, reason="Forbidden")

    api.before_patch = refuse
    with pytest.raises(Forbidden, match=r"^failed restoring revision 0: deployments.apps"):
        rollback(api, "ns1", "resnet")


def test_status_only_races_on_every_attempt_end_in_a_conflict():
    api = _api()

    def status_writer(path: str) -> None:
        api.objects[path]["metadata"]["resourceVersion"] = api.next_rv()

    api.before_patch = status_writer
    with pytest.raises(Conflict) as info:
        rollback(api, "ns1", "resnet")
    assert info.value.status == 409 and info.value.reason == "Conflict"
    assert "nothing was rolled back" in info.value.message
    assert sum(1 for c in api.calls if c[0] == "PATCH") == 3


def test_server_dry_run_changes_nothing():
    api = _api()
    res = rollback(api, "ns1", "resnet", dry_run=True)
    assert res.message == "deployment.apps/resnet rolled back (server dry run)"
    assert not res.changed and res.revision == 2
    assert api.patches[-1][3] == {"dryRun": "All"}
