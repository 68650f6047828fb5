"""Model derivation from real-shaped JSON: rollout state, probe health, jobs, events."""

from __future__ import annotations

from datetime import UTC, datetime

from fleet import derive
from fleet.model import JobState, ProbeHealth, RolloutState
from tests.fleet.objects import deployment, event, pod


def test_model_deployment_fields():
    d = derive.model_deployment(deployment(annotations={"kubernetes.io/change-cause": "c"}))
    assert (d.namespace, d.name, d.model, d.version) == ("ns1", "resnet", "resnet", "1")

    assert d.model_uri == "hdfs:///models/m/1" and d.image == "registry.local/serve:1"
    assert (d.revision, d.desired, d.updated, d.ready, d.available) == (3, 2, 2, 2, 2)
    assert d.rollout_state is RolloutState.COMPLETE and d.change_cause == "c"
    assert d.probe_health is ProbeHealth.NONE
    assert d.created == datetime(2026, 11, 27, 1, 0, tzinfo=UTC)


def test_rollout_states():
    assert derive.rollout_state(deployment(paused=True)) is RolloutState.PAUSED
    stalled = deployment()
    stalled["status"]["conditions"][1] = {"type": "Progressing", "status": "False",
                                          "reason": "ProgressDeadlineExceeded"}
    assert derive.rollout_state(stalled) is RolloutState.STALLED
    moving = deployment()
    moving["status"]["updatedReplicas"] = 1
    assert derive.rollout_state(moving) is RolloutState.PROGRESSING
    unobserved = deployment(generation=4)
    unobserved["status"]["observedGeneration"] = 3
    assert derive.rollout_state(unobserved) is RolloutState.PROGRESSING
    old_pending = deployment()
    old_pending["status"]["replicas"] = 3
    assert derive.rollout_state(old_pending) is RolloutState.PROGRESSING


def test_probe_health_priority_and_counts():
    ok = derive.pod_summary(pod("a", "rs"))
    unready = derive.pod_summary(pod("b", "rs", ready=False))
    crash = derive.pod_summary(pod("c", "rs", ready=False, waiting="CrashLoopBackOff",
                                   restarts=4))
    pending = derive.pod_summary(pod("d", "rs", ready=False, phase="Pending"))
    assert derive.probe_health([ok]) == (ProbeHealth.OK, 0, 0, 0)
    assert derive.probe_health([ok, unready])[0] is ProbeHealth.UNREADY
    assert derive.probe_health([ok, unready, crash]) == (ProbeHealth.CRASHLOOP, 2, 1, 4)
    assert derive.probe_health([ok, pending])[0] is ProbeHealth.PENDING
    assert derive.probe_health([])[0] is ProbeHealth.NONE


def test_pod_summary_last_termination():
    p = derive.pod_summary(pod("x", "rs-1", ready=False, waiting="CrashLoopBackOff", restarts=3,
                               last_terminated={"exitCode": 137, "reason": "Error",
                                                "finishedAt": "2026-11-27T01:02:03Z"}))
    c = p.containers[0]
    assert (c.state, c.state_reason, c.restart_count, c.ready) == (
        "waiting", "CrashLoopBackOff", 3, False)
    assert c.last_termination.exit_code == 137 and c.last_termination.reason == "Error"
    assert p.owner == "rs-1" and p.crashlooping and not p.ready and not p.containers_ready


def _job(**status) -> dict:
    return {
        "metadata": {"name": "train", "namespace": "ns1", "uid": "j1",
                     "creationTimestamp": "2026-11-27T01:00:00Z",
                     "labels": {"app.kubernetes.io/component": "sweep-worker"}},
        "spec": {"parallelism": 2, "completions": 4, "template": {"spec": {"containers": [
            {"name": "t", "resources": {"limits": {"nvidia.com/gpu": "2", "cpu": "1"}}},
            {"name": "side", "resources": {"requests": {"cpu": "100m"}}}]}}},
        "status": status,
    }


def test_training_job():
    j = derive.training_job(_job(active=2, succeeded=1))
    assert (j.kind, j.completions, j.active, j.succeeded, j.gpus) == ("sweep-worker", 4, 2, 1, 4)
    assert j.state is JobState.RUNNING  # no `ready` field (older clusters): trust `active`
    assert derive.training_job(_job(active=2, ready=1)).state is JobState.RUNNING
    # Active pods that are all unscheduled (e.g. waiting for GPUs) are not running yet.
    assert derive.training_job(_job(active=2, ready=0)).state is JobState.PENDING
    done = _job(succeeded=4, conditions=[{"type": "Complete", "status": "True"}])
    assert derive.training_job(done).state is JobState.COMPLETE
    failed = _job(failed=3, conditions=[{"type": "Failed", "status": "True"}])
    assert derive.training_job(failed).state is JobState.FAILED
    assert derive.training_job(_job()).state is JobState.PENDING
    assert derive.is_training_job(_job()) and not derive.is_model_deployment(_job())


def test_event_record():
    e = derive.event_record(event("e1", "p1", "Unhealthy", "Readiness probe failed: 503",
                                  last="2026-11-27T01:03:00Z", count=5))
    assert (e.reason, e.count, e.involved_name, e.field_path, e.source) == (
        "Unhealthy", 5, "p1", "spec.containers{server}", "kubelet")
    assert e.last_seen == datetime(2026, 11, 27, 1, 3, tzinfo=UTC)


def test_version_comes_from_the_running_template_not_a_stale_deployment_label():
    dep = deployment()
    dep["metadata"].setdefault("labels", {})["app.kubernetes.io/version"] = "9"
    dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] = "3"
    assert derive.model_deployment(dep, []).version == "3"
    del dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"]
    assert derive.model_deployment(dep, []).version == "9"  # falls back to the Deployment
