"""Distributed TensorFlow across pods: an Indexed Job, TF_CONFIG from the index, MWMS."""

from __future__ import annotations

import re

import pytest

from serving.store import Store
from tests.fixtures.cluster import TestCluster, wait_for
from tests.tuning.trainkit import condition, fleet, job, job_pods, logs, wait_progress
from tuning.example import publish_example

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs]


@pytest.fixture(scope="module")
def example(hdfs) -> tuple[str, str]:  # noqa: ANN001
    return publish_example(hdfs.uri("/tuning-tests/example-dist"), webhdfs_url=hdfs.webhdfs_url)


def _index(pod: dict) -> str:
    return pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]


def test_two_workers_train_in_sync_and_only_the_chief_publishes(
        cluster: TestCluster, namespace: str, hdfs, example) -> None:  # noqa: ANN001
    code, data = example
    output = hdfs.uri(f"/tuning-tests/{namespace}/dist")
    res = fleet(cluster, hdfs, "train", "dist", "-n", namespace, "--code", code, "--data", data,
                "--output", output, "--workers", "2", "--epochs", "4",
                "--collective-timeout", "60", "--wait", "--timeout", "8m")
    assert res.returncode == 0, res.stdout + res.stderr
    pods = sorted(job_pods(cluster, namespace, "dist"), key=_index)
    assert [_index(p) for p in pods] == ["0", "1"]
    for p in pods:
        term = p["status"]["containerStatuses"][0]["state"]["terminated"]
        assert term["exitCode"] == 0
    chief, worker = (logs(cluster, namespace, p["metadata"]["name"]) for p in pods)
    for log in (chief, worker):
        assert "num_replicas_in_sync=2" in log
        assert "all 2 workers resolve" in log
    assert "the chief publishes the model" in worker and "published" not in worker
    assert Store(output, webhdfs_url=hdfs.webhdfs_url).versions() == [1]
    meta = Store(output, webhdfs_url=hdfs.webhdfs_url).read_metadata(1)
    assert meta["provenance"]["num_replicas_in_sync"] == 2
    assert meta["provenance"]["workers"] == 2
    losses = [float(x) for x in re.findall(r"epoch \d+/4 .*?\bloss=([\d.]+)", chief)]
    assert len(losses) == 4 and losses[-1] < losses[0], losses
    svc = cluster.get_json("service", "dist-workers", "-n", namespace)
    assert svc["spec"]["clusterIP"] == "None"


def test_a_lost_worker_fails_the_whole_job_promptly(
        cluster: TestCluster, namespace: str, hdfs, example) -> None:  # noqa: ANN001
    code, data = example
    res = fleet(cluster, hdfs, "train", "lossy", "-n", namespace, "--code", code, "--data",
                data, "--output", hdfs.uri(f"/tuning-tests/{namespace}/lossy"), "--workers",
                "2", "--epochs", "2000", "--collective-timeout", "20")
    assert res.returncode == 0, res.stderr
    wait_progress(cluster, namespace, "lossy", lambda p: (p.get("epoch") or 0) >= 1,
                  timeout=300, what="a first synchronized epoch")
    worker = next(p for p in job_pods(cluster, namespace, "lossy") if _index(p) == "1")
    cluster.kubectl_run("delete", "pod", "-n", namespace, worker["metadata"]["name"],
                        "--wait=false")
    j = wait_for(lambda: (lambda j: j if condition(j, "Failed") else None)(
        job(cluster, namespace, "lossy")), timeout=90, what="the Job to fail")
    assert condition(j, "Failed")["reason"] == "BackoffLimitExceeded"

    def all_stopped() -> bool:
        return all(p["status"].get("phase") in ("Failed", "Succeeded")
                   for p in job_pods(cluster, namespace, "lossy"))

    wait_for(all_stopped, timeout=90, what="every pod of the failed Job to stop (no hang)")
