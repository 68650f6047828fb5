"""`fleet.ops.sweeps` and the watch cache against the real control plane.

kwok runs no sweep workers, so the test writes what worker 0 would: the summary annotation on
the Job (a merge patch, as tuning/sweep_summary.py sends) and the trials ConfigMap. The Job
controller and the scheduler are real: a sweep asking for more GPUs than any node has stays
Pending with the scheduler's own message.
"""

from __future__ import annotations

import json

import pytest

from fleet.cache import FleetCache
from fleet.errors import NotFound
from fleet.kube import KubeClient
from fleet.ops import sweeps
from tests.fixtures.cluster import TestCluster, wait_for

pytestmark = pytest.mark.cluster
MERGE = "application/merge-patch+json"
SUMMARY = {"state": "running", "reason": "", "max_trials": 20, "started": 6, "complete": 3,
           "running": 2, "pruned": 1, "failed": 0, "waiting": 0, "metric": "val_accuracy",
           "direction": "maximize", "best_value": 0.93, "best_trial": 2, "promotion": None,
           "updated": "2026-12-01T12:00:00Z"}
SPEC = {"name": "x", "search_space": {"lr": {"type": "float", "low": 0.001, "high": 0.1},
                                      "units": {"type": "int", "low": 8, "high": 64}},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "budget": {"max_trials": 20}, "parallelism": 2, "gpus": 1,
        "promotion": {"deployment": "digits", "min_delta": 0.0, "auto_promote": False}}


@pytest.fixture
def client(cluster: TestCluster) -> KubeClient:
    return KubeClient.from_kubeconfig(cluster.kubeconfig)


def sweep_job(name: str, ns: str, gpus: int = 1, parallelism: int = 2,
              summary: dict | None = None, component: str = "sweep-worker") -> dict:
    labels = {"app.kubernetes.io/component": component, "modelfleet.io/sweep": name}
    ann = {"modelfleet.io/sweep-spec": json.dumps({**SPEC, "name": name})}
    if summary is not None:
        ann["modelfleet.io/sweep"] = json.dumps(summary)
    res = {"limits": {"nvidia.com/gpu": str(gpus)}, "requests": {"nvidia.com/gpu": str(gpus)}}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels, "annotations": ann},
        "spec": {"completionMode": "Indexed", "completions": parallelism,
                 "parallelism": parallelism, "backoffLimit": 4, "template": {
                     "metadata": {"labels": labels,
                                  "annotations": {"fleet.test/complete-after": "900s"}},
                     "spec": {"restartPolicy": "Never", "containers": [
                         {"name": "worker", "image": "modelfleet/trainer:0.1.0",
                          "resources": res}]}}},
    }


def trial(n: int, state: str = "complete", value: float | None = 0.9) -> dict:
    return {"n": n, "state": state, "value": value if state == "complete" else None,
            "params": {"lr": 0.01 * (n + 1), "units": 8 * (n + 1)}, "pod": f"pod-{n % 2}",
            "index": n % 2, "steps": [[1, 0.5], [2, value or 0.6]], "start": None,
            "end": None, "model_uri": f"hdfs://nn/m/{n}" if state == "complete" else "",
            "holdout": None, "reason": "", "retry_of": None}


def trials_configmap(name: str, ns: str, rows: list[dict], importances: dict) -> dict:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"{name}-trials", "namespace": ns,
                         "labels": {"modelfleet.io/sweep": name,
                                    "app.kubernetes.io/component": "sweep-trials"}},
            "data": {"trials.json": json.dumps(rows), "importances.json": json.dumps(importances)}}


def test_ops_read_sweeps_from_kubernetes_objects(cluster: TestCluster, namespace: str,
                                                 client: KubeClient) -> None:
    rows = [trial(0, value=0.81), trial(1, "pruned"), trial(2, value=0.93), trial(3, "running")]
    cluster.apply([sweep_job("digits", namespace, summary=SUMMARY),
                   sweep_job("huge", namespace, gpus=64),
                   sweep_job("not-a-sweep", namespace, component="training"),
                   trials_configmap("digits", namespace, rows, {"lr": 0.8, "units": 0.2})])

    listed = sweeps.list_sweeps(client, namespace)
    assert [j.name for j in listed] == ["digits", "huge"]
    digits = sweeps.get_sweep(client, namespace, "digits")
    assert digits.sweep.best_trial == 2 and digits.sweep.params == ("lr", "units")
    assert digits.sweep.deployment == "digits" and digits.sweep_state == "running"
    huge = listed[1]
    assert huge.sweep.state == "" and huge.sweep.max_trials == 20  # the spec only, so far
    with pytest.raises(NotFound, match='no sweep "gone"'):
        sweeps.get_sweep(client, namespace, "gone")
    with pytest.raises(NotFound, match="is not a sweep"):
        sweeps.get_sweep(client, namespace, "not-a-sweep")

    got = sweeps.sweep_trials(client, namespace, "digits")
    assert [(t.n, t.state) for t in got.trials] == [
        (0, "complete"), (1, "pruned"), (2, "complete"), (3, "running")]
    assert got.importances == (("lr", 0.8), ("units", 0.2)) and got.found
    assert got.trials[2].params == (("lr", 0.03), ("units", 24))
    # unchanged ConfigMap: the same object back, nothing parsed again
    assert sweeps.sweep_trials(client, namespace, "digits", known=got) is got
    cm = trials_configmap("digits", namespace, [*rows, trial(4, value=0.95)], {"lr": 1.0})
    cluster.apply(cm)
    again = sweeps.sweep_trials(client, namespace, "digits", known=got)
    assert again is not got and [t.n for t in again.trials][-1] == 4
    assert again.resource_version != got.resource_version
    # the unchanged trials are the known objects: a poller keeps only what changed
    assert all(a is b for a, b in zip(again.trials[:4], got.trials, strict=True))
    assert again.importances == (("lr", 1.0),)
    assert sweeps.sweep_trials(client, namespace, "huge").found is False
    # a ConfigMap someone broke: what can be read, and how much could not
    cluster.kubectl_run("create", "configmap", "huge-trials", "-n", namespace,
                        "--from-literal=trials.json=[{\"n\": 1}, \"junk\", {\"n\": \"x\"}]",
                        "--from-literal=importances.json={")
    broken = sweeps.sweep_trials(client, namespace, "huge")
    assert [t.n for t in broken.trials] == [1] and broken.problems == 2
    assert broken.importances == ()

    def starved():
        pods = sweeps.sweep_pods(client, namespace, "huge")
        waiting = [p for p in pods if p.phase == "Pending" and any(
            c.type == "PodScheduled" and c.status == "False" and "nvidia.com/gpu" in c.message
            for c in p.conditions)]
        return len(waiting) == 2 and pods

    pods = wait_for(starved, timeout=60, what="2 GPU-starved pods of huge")
    assert [p.name for p in pods] == sorted(p.name for p in pods)
    assert all(p.owner == "huge" for p in pods)
    running = wait_for(lambda: [p for p in sweeps.sweep_pods(client, namespace, "digits")
                                if p.phase == "Running"], timeout=60, what="digits running")
    assert len(running) == 2


def test_the_watch_cache_carries_summaries_and_gpu_starved_pods(
        cluster: TestCluster, namespace: str, client: KubeClient) -> None:
    cluster.apply([sweep_job("digits", namespace, summary=SUMMARY),
                   sweep_job("huge", namespace, gpus=64)])
    cache = FleetCache(client, namespaces=[namespace]).start()
    try:
        def jobs():
            return {j.name: j for j in cache.jobs()}

        got = wait_for(lambda: (j := jobs()) and j.get("huge") and j["huge"].gpu_starved
                       and j["huge"].unschedulable == 2 and j, timeout=60,
                       what="huge GPU-starved in the cache")
        assert "Insufficient nvidia.com/gpu" in got["huge"].pending_reason
        assert got["huge"].pending == 2 and got["huge"].running_pods == 0
        wait_for(lambda: jobs()["digits"].running_pods == 2, timeout=60, what="digits running")
        assert not jobs()["digits"].gpu_starved
        # worker 0 publishes: the cache's record follows the merge patch
        client.patch(f"/apis/batch/v1/namespaces/{namespace}/jobs/digits",
                     {"metadata": {"annotations": {"modelfleet.io/sweep": json.dumps(
                         {**SUMMARY, "complete": 4, "best_value": 0.95, "best_trial": 5})}}},
                     MERGE)
        wait_for(lambda: jobs()["digits"].sweep.complete == 4, timeout=30, what="summary")
        assert jobs()["digits"].sweep.best_trial == 5
        # a broken annotation: the spec's facts stay, the app never sees a crash
        client.patch(f"/apis/batch/v1/namespaces/{namespace}/jobs/digits",
                     {"metadata": {"annotations": {"modelfleet.io/sweep": "{broken"}}}, MERGE)
        wait_for(lambda: jobs()["digits"].sweep.complete == 0, timeout=30, what="reset")
        assert jobs()["digits"].sweep.params == ("lr", "units")
        # stopped: spec.suspend, the pods go, the sweep shows stopped at once
        client.patch(f"/apis/batch/v1/namespaces/{namespace}/jobs/huge",
                     {"spec": {"suspend": True}}, MERGE)
        wait_for(lambda: jobs()["huge"].sweep_state == "stopped"
                 and jobs()["huge"].unschedulable == 0, timeout=60, what="huge stopped")
    finally:
        cache.stop()
