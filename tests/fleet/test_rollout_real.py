"""Rolling updates of a real serving Deployment (process kubelet + HDFS) under steady load.

Three replicas of the digits server (LiteRT fp32, 300m CPU each) with the base manifest's
strategy (maxSurge 1, maxUnavailable 0), preStop sleep and SIGTERM drain. The load generator
sends only to pods that the API reports Ready and not terminating, learnt from a pod watch
(what an endpoint-following proxy does), so these tests hold the server's side of the contract:
readiness drops before shutdown and in-flight requests finish. Numbers from the same code are in
docs/benchmarks.md (bench/fleet/bench_rollout.py).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.fleet.bench_rollout import (
    MODEL,
    deploy_args,
    fleet,
    model_uri_of,
    publish_models,
    rolling_update,
    stalled_rollout_and_rollback,
)
from fleet.kube import KubeClient
from tests.fixtures.cluster import TestCluster

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs]

RATE = 30.0  # requests per second over all pods: steady, and light on a shared 2-core machine


@pytest.fixture(scope="module")
def models(hdfs, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:  # noqa: ANN001
    root = f"/rollout-tests/{uuid.uuid4().hex[:6]}/digits"
    return publish_models(hdfs.webhdfs_url, hdfs.url, root, tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def served(cluster: TestCluster, hdfs, models: dict[str, str]  # noqa: ANN001
           ) -> Iterator[tuple[KubeClient, str]]:
    """The digits Deployment (3 replicas of version 1) in a namespace of its own."""
    ns = f"t-rollout-real-{uuid.uuid4().hex[:5]}"
    cluster.kubectl_run("create", "namespace", ns)
    r = fleet(cluster.env, *deploy_args(MODEL, models["v1"], ns, hdfs.webhdfs_url))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["available"] and out["ready"] == 3
    dep = cluster.get_json("deployment", MODEL, "-n", ns)
    strategy = dep["spec"]["strategy"]["rollingUpdate"]
    assert (strategy["maxSurge"], strategy["maxUnavailable"]) == (1, 0)
    assert dep["spec"]["template"]["spec"]["containers"][0]["lifecycle"]["preStop"]
    client = KubeClient.from_kubeconfig(cluster.kubeconfig, None, ns)
    try:
        yield client, ns
    finally:
        client.close()
        cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)


def test_rollout_under_load_has_zero_non_2xx(cluster: TestCluster, served: tuple[KubeClient, str],
                                             models: dict[str, str]) -> None:
    client, ns = served
    res = rolling_update(cluster.env, client, ns, MODEL, models["v2"], rate=RATE)
    during = res["during"]
    assert during["non_2xx"] == 0, res["failures"]
    assert during["requests"] >= 100, during  # the rollout really ran under load
    assert set(during["versions"]) == {"1", "2"}, during  # traffic moved within the window
    assert res["after"]["versions"].keys() == {"2"} and res["after"]["non_2xx"] == 0
    assert during["pods"] >= 5  # old and new pods answered
    assert res["no_endpoint_s"] == 0
    pods = cluster.get_json("pods", "-n", ns, "-l", f"app.kubernetes.io/name={MODEL}")["items"]
    assert len(pods) == 3
    assert [model_uri_of(p) for p in pods] == [models["v2"]] * 3


def test_a_checksum_failure_stalls_the_rollout_and_rollback_restores_it(
        cluster: TestCluster, served: tuple[KubeClient, str], models: dict[str, str]) -> None:
    client, ns = served
    res = stalled_rollout_and_rollback(cluster.env, client, ns, MODEL, models["bad"],
                                       rate=RATE, stall_window_s=8)
    # The new pod's model load failed on the checksum; it never became Ready.
    assert "fails its sha256 check" in res["load_failed_reason"], res
    assert "model_fp32.tflite" in res["load_failed_reason"]
    stalled = res["stalled"]
    assert stalled["status_exit"] != 0 and not stalled["bad_pod_ready"], stalled
    assert stalled["status_stdout"] == [
        f'Waiting for deployment "{MODEL}" rollout to finish: 1 out of 3 new replicas have '
        'been updated...'], stalled
    assert "timed out waiting for the condition" in stalled["status_stderr"]
    assert stalled["old_pods_serving"] == res["old_pods"]  # all three kept serving
    assert stalled["deployment_status"]["updatedReplicas"] == 1
    assert stalled["deployment_status"]["availableReplicas"] == 3
    # `fleet rollback` back to the good template; the bad pod goes, the old ones stay.
    assert "rolled back" in res["rollback_output"] and res["rollback_status_exit"] == 0
    assert res["pods_after"] == [(n, res["good_uri"], True) for n in res["old_pods"]]
    during = res["during"]
    assert during["non_2xx"] == 0, res["failures"]
    assert during["requests"] >= 100 and set(during["versions"]) <= {"1", "2"}
    assert Path(res["good_uri"]).name in ("v1", "v2")
