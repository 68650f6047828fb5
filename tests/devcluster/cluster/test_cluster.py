"""The embedded control plane behaves like Kubernetes: controllers, scheduler, kwok stages."""

from __future__ import annotations

import pytest

from devcluster.cluster import processes
from tests.devcluster.cluster.manifests import deployment, job
from tests.fixtures.cluster import TestCluster, wait_for

pytestmark = pytest.mark.cluster


def _deploy(cluster: TestCluster, ns: str, name: str) -> dict:
    return cluster.get_json("deployment", name, "-n", ns)


def _condition(obj: dict, kind: str) -> dict:
    return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), {})


def _pods(cluster: TestCluster, ns: str, selector: str) -> list[dict]:
    return cluster.get_json("pods", "-n", ns, "-l", selector)["items"]


def _events(cluster: TestCluster, ns: str, reason: str) -> list[dict]:
    items = cluster.get_json("events", "-n", ns)["items"]
    return [e for e in items if e.get("reason") == reason]


def test_deployment_becomes_available(cluster: TestCluster, namespace: str) -> None:
    cluster.apply({**deployment("web", replicas=2), "metadata": {"name": "web",
                                                                 "namespace": namespace}})
    wait_for(lambda: _condition(_deploy(cluster, namespace, "web"), "Available")
             .get("status") == "True", what="Available=True")
    dep = _deploy(cluster, namespace, "web")
    assert dep["status"]["readyReplicas"] == 2
    pods = _pods(cluster, namespace, "app=web")
    assert all(p["status"]["phase"] == "Running" for p in pods)
    assert all(p["status"]["podIP"].startswith("127.") for p in pods), "pod IPs stay in 127/8"


def test_image_change_creates_second_revision(cluster: TestCluster, namespace: str) -> None:
    cluster.apply({**deployment("model"), "metadata": {"name": "model", "namespace": namespace}})
    wait_for(lambda: _deploy(cluster, namespace, "model").get("status", {})
             .get("availableReplicas") == 1, what="first revision available")
    cluster.kubectl_run("set", "image", "-n", namespace, "deployment/model",
                        "server=registry.invalid/model:2")
    cluster.kubectl_run("rollout", "status", "-n", namespace, "deployment/model",
                        "--timeout=60s")
    rses = cluster.get_json("replicasets", "-n", namespace, "-l", "app=model")["items"]
    revisions = sorted(int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"])
                       for rs in rses)
    assert revisions == [1, 2]
    newest = max(rses, key=lambda rs: int(
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]))
    assert newest["spec"]["template"]["spec"]["containers"][0]["image"].endswith("model:2")


def test_gpu_job_beyond_capacity_stays_pending(cluster: TestCluster, namespace: str) -> None:
    cluster.apply({**job("big", gpus=64), "metadata": {"name": "big", "namespace": namespace}})
    events = wait_for(lambda: _events(cluster, namespace, "FailedScheduling"),
                      what="FailedScheduling event")
    assert any("Insufficient nvidia.com/gpu" in e["message"] for e in events), events
    pods = _pods(cluster, namespace, "job=big")
    assert [p["status"]["phase"] for p in pods] == ["Pending"]


def test_gpu_job_that_fits_is_scheduled_on_a_gpu_node(cluster: TestCluster,
                                                      namespace: str) -> None:
    cluster.apply({**job("fits", gpus=2, complete_after="60s"),
                   "metadata": {"name": "fits", "namespace": namespace}})
    pod = wait_for(lambda: [p for p in _pods(cluster, namespace, "job=fits")
                            if p["status"].get("phase") == "Running"], what="GPU pod running")[0]
    assert pod["spec"]["nodeName"].startswith("gpu-node-")


def test_job_completes_after_its_delay(cluster: TestCluster, namespace: str) -> None:
    cluster.apply({**job("train", complete_after="2s"),
                   "metadata": {"name": "train", "namespace": namespace}})
    wait_for(lambda: cluster.get_json("job", "train", "-n", namespace)["status"]
             .get("succeeded") == 1, what="job succeeded")
    j = cluster.get_json("job", "train", "-n", namespace)
    assert _condition(j, "Complete").get("status") == "True"


def test_failing_job_pod_fails(cluster: TestCluster, namespace: str) -> None:
    cluster.apply({**job("bad", complete_after="1s", sim="fail"),
                   "metadata": {"name": "bad", "namespace": namespace}})
    wait_for(lambda: _condition(cluster.get_json("job", "bad", "-n", namespace), "Failed")
             .get("status") == "True", what="job Failed")
    pod = _pods(cluster, namespace, "job=bad")[0]
    assert pod["status"]["phase"] == "Failed"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 1


def test_unready_label_fails_readiness(cluster: TestCluster, namespace: str) -> None:
    cluster.apply({**deployment("sick", sim="unready"),
                   "metadata": {"name": "sick", "namespace": namespace}})
    pod = wait_for(lambda: [p for p in _pods(cluster, namespace, "app=sick")
                            if p["status"].get("phase") == "Running"], what="running pod")[0]
    assert _condition(pod, "Ready")["status"] == "False"
    assert _condition(pod, "ContainersReady")["reason"] == "ContainersNotReady"
    cs = pod["status"]["containerStatuses"][0]
    assert cs["ready"] is False and cs["started"] is True
    events = wait_for(lambda: _events(cluster, namespace, "Unhealthy"), what="Unhealthy event")
    assert events[0]["type"] == "Warning"
    assert events[0]["message"].startswith("Readiness probe failed:")
    assert events[0]["involvedObject"]["uid"] == pod["metadata"]["uid"]
    dep = _deploy(cluster, namespace, "sick")
    assert dep["status"].get("readyReplicas", 0) == 0


def test_label_added_later_makes_a_ready_pod_unready(cluster: TestCluster,
                                                     namespace: str) -> None:
    cluster.apply({**deployment("later"), "metadata": {"name": "later", "namespace": namespace}})
    pod = wait_for(lambda: [p for p in _pods(cluster, namespace, "app=later")
                            if _condition(p, "Ready").get("status") == "True"],
                   what="ready pod")[0]
    name = pod["metadata"]["name"]
    cluster.kubectl_run("label", "pod", name, "-n", namespace, "fleet.test/sim=unready")
    wait_for(lambda: _condition(cluster.get_json("pod", name, "-n", namespace), "Ready")
             .get("status") == "False", what="pod turns unready")


def test_crashloop_label_restarts_with_backoff(cluster: TestCluster, namespace: str) -> None:
    dep = deployment("crash", sim="crashloop")
    dep["spec"]["template"]["metadata"]["annotations"] = {"fleet.test/crash-interval": "1s"}
    cluster.apply({**dep, "metadata": {"name": "crash", "namespace": namespace}})

    def restarts() -> int:
        pods = _pods(cluster, namespace, "app=crash")
        statuses = pods[0]["status"].get("containerStatuses", []) if pods else []
        return statuses[0]["restartCount"] if statuses else 0

    wait_for(lambda: restarts() >= 1, what="first restart")
    first = restarts()
    wait_for(lambda: restarts() > first, what="restartCount rising")
    pod = _pods(cluster, namespace, "app=crash")[0]
    cs = pod["status"]["containerStatuses"][0]
    assert cs["state"]["waiting"]["reason"] == "CrashLoopBackOff"
    assert cs["lastState"]["terminated"]["reason"] == "Error"
    assert pod["status"]["phase"] == "Running"
    assert _condition(pod, "Ready")["status"] == "False"
    backoff = wait_for(lambda: _events(cluster, namespace, "BackOff"), what="BackOff event")
    assert backoff[0]["message"] == "Back-off restarting failed container"


def test_nodes_advertise_gpus(cluster: TestCluster) -> None:
    nodes = cluster.get_json("nodes")["items"]
    gpus = {n["metadata"]["name"]: n["status"]["allocatable"].get("nvidia.com/gpu")
            for n in nodes}
    assert gpus["gpu-node-0"] == "4"
    assert gpus["node-0"] is None
    assert all(_condition(n, "Ready")["status"] == "True" for n in nodes)


def test_every_listener_is_on_loopback(cluster: TestCluster) -> None:
    pids = cluster.local.pids()
    assert set(pids) == {"etcd", "kube-apiserver", "kube-controller-manager",
                         "kube-scheduler", "kwok", "runner", "kwok-runner", "metrics-server"}
    for name, pid in pids.items():
        listeners = processes.listening_addresses(pid)
        assert listeners, f"{name} has no listening socket"
        bad = [s for s in listeners if not processes.is_loopback(s[1])]
        assert not bad, f"{name} listens on non-loopback addresses: {bad}"
