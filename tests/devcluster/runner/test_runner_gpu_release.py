"""A finished pod's GPUs are free for the next pod while its object still exists (the
kubelet's device manager counts active pods only): Job pods stay around after they end."""

from __future__ import annotations

import pytest

from tests.devcluster.runner.runnerkit import create, pod, python_container, wait_pod
from tests.fixtures.cluster import TestCluster

pytestmark = pytest.mark.cluster


def _gpu_pod(name: str) -> dict:
    c = python_container("main", "print('done')",
                         resources={"limits": {"nvidia.com/gpu": "2"}})
    return pod(name, [c], restartPolicy="Never")


def test_a_finished_pods_gpus_go_to_the_next_pod(cluster: TestCluster, namespace: str) -> None:
    create(cluster, namespace, _gpu_pod("first"))
    wait_pod(cluster, namespace, "first", lambda p: p["status"].get("phase") == "Succeeded",
             timeout=60, what="Succeeded")
    create(cluster, namespace, _gpu_pod("second"))  # the runner node has 2 GPUs in all
    p = wait_pod(cluster, namespace, "second",
                 lambda p: p["status"].get("phase") in ("Succeeded", "Failed"), timeout=60,
                 what="an end")
    assert p["status"]["phase"] == "Succeeded", p["status"]
    assert cluster.get_json("pod", "first", "-n", namespace)["status"]["phase"] == "Succeeded"
