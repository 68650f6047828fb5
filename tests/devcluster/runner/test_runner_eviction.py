"""The Eviction API on runner pods: DisruptionTarget survives the runner's status writes.

The apiserver's eviction handler first adds DisruptionTarget=True to the pod's status, then
deletes it; the runner stops the containers and writes the terminal phase. Jobs with a
podFailurePolicy `Ignore` rule on DisruptionTarget depend on both being there together.
"""

from __future__ import annotations

import json

import pytest

from tests.devcluster.runner.runnerkit import (
    condition,
    container_status,
    create,
    evict,
    pod,
    python_container,
    ready,
    wait_pod,
)
from tests.fixtures.cluster import TestCluster, wait_for

pytestmark = pytest.mark.cluster

SLEEPER = "import time\nprint('up', flush=True)\nwhile True: time.sleep(1)"
HOLD = "fleet.test/hold"


def test_evicted_pod_keeps_disruption_target_and_ends_failed(cluster: TestCluster,
                                                             namespace: str) -> None:
    obj = pod("evictee", [python_container("main", SLEEPER)])
    # A finalizer of the test's keeps the object after the runner deletes it (grace 0), so
    # the final status can be read.
    obj["metadata"]["finalizers"] = [HOLD]
    create(cluster, namespace, obj)
    try:
        wait_pod(cluster, namespace, "evictee", ready, what="Ready")
        evict(cluster, namespace, "evictee")
        p = wait_pod(cluster, namespace, "evictee",
                     lambda p: p["status"].get("phase") == "Failed", what="phase Failed")
        cond = condition(p, "DisruptionTarget")
        assert cond.get("status") == "True", p["status"].get("conditions")
        assert cond["reason"] == "EvictionByEvictionAPI"
        assert cond["message"] == "Eviction API: evicting"
        term = container_status(p)["state"]["terminated"]
        assert term["exitCode"] == 143 and term["reason"] == "Error"  # stopped by SIGTERM
        assert condition(p, "Ready")["status"] == "False"
        assert p["metadata"].get("deletionTimestamp")
    finally:
        cluster.kubectl_run("patch", "pod", "evictee", "-n", namespace, "--type=json", "-p",
                            json.dumps([{"op": "remove", "path": "/metadata/finalizers"}]),
                            check=False)


def test_job_pod_failure_policy_ignores_an_evicted_pod(cluster: TestCluster,
                                                       namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "trainer"},
        "spec": {
            "backoffLimit": 0,  # a counted failure would fail the Job at once
            "podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [
                {"type": "DisruptionTarget"}]}]},
            "template": {"spec": {
                "runtimeClassName": "fleet-local", "restartPolicy": "Never",
                "terminationGracePeriodSeconds": 5,
                "containers": [python_container("main", SLEEPER)]}},
        },
    }
    create(cluster, namespace, job)

    def job_pods() -> list[dict]:
        return cluster.get_json("pods", "-n", namespace, "-l", "job-name=trainer")["items"]

    first = wait_for(lambda: next((p for p in job_pods() if ready(p)), None), timeout=60,
                     what="the Job's pod Ready")
    evict(cluster, namespace, first["metadata"]["name"])
    replacement = wait_for(
        lambda: next((p for p in job_pods() if p["metadata"]["uid"] != first["metadata"]["uid"]
                      and ready(p)), None),
        timeout=90, what="a replacement pod Ready")
    assert replacement["metadata"]["name"] != first["metadata"]["name"]
    status = cluster.get_json("job", "trainer", "-n", namespace).get("status", {})
    assert not status.get("failed"), status  # ignored: not counted against backoffLimit
    assert not any(c["type"] == "Failed" and c["status"] == "True"
                   for c in status.get("conditions", [])), status
