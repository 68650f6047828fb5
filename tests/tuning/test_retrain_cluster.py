"""Scheduled re-training end to end: the CronJob's Job trains on the newest data, promotes
into the live Deployment, records the outcome; a second run with the same data does nothing."""

from __future__ import annotations

import json

import pytest

from fleet.kube import KubeClient
from fleet.ops import deploy as deploy_ops
from serving.store import Store
from tests.fixtures.cluster import TestCluster
from tests.serving.conftest import make_demo
from tests.tuning.trainkit import condition, fleet, wait_job_done
from tuning.example import publish_example

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs]


def _last_promotion(cluster: TestCluster, ns: str) -> dict:
    cron = cluster.get_json("cronjob", "retrain-digits", "-n", ns)
    return json.loads(cron["metadata"]["annotations"]["modelfleet.io/last-promotion"])


def _served(client: KubeClient, ns: str) -> dict[str, str]:
    dep = client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/digits-rt")
    return {e["name"]: e.get("value", "") for e in
            dep["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_retraining_promotes_once_then_finds_nothing_new(
        cluster: TestCluster, namespace: str, hdfs) -> None:  # noqa: ANN001
    code, data = publish_example(hdfs.uri("/tuning-tests/example-retrain"),
                                 webhdfs_url=hdfs.webhdfs_url)
    base = hdfs.uri(f"/tuning-tests/{namespace}/digits")
    demo = make_demo(base, hdfs.env, "--epochs", "1", "--version", "1")  # a weak live model
    assert demo.returncode == 0, demo.stderr
    client = KubeClient.from_kubeconfig(cluster.kubeconfig, namespace=namespace)
    spec = deploy_ops.DeploySpec(
        name="digits-rt", namespace=namespace, model_uri=base, version="1", replicas=1,
        runtime="savedmodel", runtime_class="fleet-local", cpu="250m", memory="1Gi",
        route=False, env=(("WEBHDFS_URL", hdfs.webhdfs_url), ("MODEL_VERSION", "1"),
                          ("SERVING_WORKERS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2")))
    result, _ = deploy_ops.deploy(client, spec, timeout=300)
    assert result.available, result.failure

    res = fleet(cluster, hdfs, "retrain", "digits", "-n", namespace, "--deployment", "digits-rt",
                "--schedule", "0 3 * * *", "--suspend", "--code", code, "--data", data,
                "--output", base, "--epochs", "6", "--min-delta", "0.01")
    assert res.returncode == 0, res.stderr
    assert "cronjob.batch/retrain-digits created" in res.stdout
    cron = cluster.get_json("cronjob", "retrain-digits", "-n", namespace)
    assert cron["spec"]["concurrencyPolicy"] == "Forbid"

    cluster.kubectl_run("create", "job", "-n", namespace, "--from=cronjob/retrain-digits",
                        "run-1")
    j = wait_job_done(cluster, namespace, "run-1", timeout=480)
    assert condition(j, "Complete"), j["status"]
    outcome = _last_promotion(cluster, namespace)
    assert outcome["result"] == "promoted", outcome
    assert outcome["job"] == "run-1" and outcome["model_uri"] == f"{base}/2"
    env = _served(client, namespace)
    assert env["MODEL_VERSION"] == "2"
    dep = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/digits-rt")
    assert "(source: retrain retrain-digits, job run-1)" in \
        dep["metadata"]["annotations"]["kubernetes.io/change-cause"]

    again = fleet(cluster, hdfs, "retrain", "digits", "-n", namespace, "--now", "--wait",
                  "--timeout", "5m")
    assert again.returncode == 0, again.stderr
    outcome = _last_promotion(cluster, namespace)
    assert outcome["result"] == "skipped" and "nothing to re-train" in outcome["detail"]
    assert Store(base, webhdfs_url=hdfs.webhdfs_url).versions() == [1, 2]
    assert _served(client, namespace)["MODEL_VERSION"] == "2"


def test_retrain_refuses_a_missing_deployment_and_bad_schedule(
        cluster: TestCluster, namespace: str, hdfs) -> None:  # noqa: ANN001
    args = ["retrain", "digits", "-n", namespace, "--code", "/c/t-1.0-py3-none-any.whl",
            "--data", "/d", "--output", "/m"]
    res = fleet(cluster, hdfs, *args, "--deployment", "nope", "--schedule", "@daily")
    assert res.returncode == 2 and 'deployments.apps "nope" not found' in res.stderr
    res = fleet(cluster, hdfs, *args, "--deployment", "nope", "--schedule", "every day")
    assert res.returncode == 2 and "is not a cron expression" in res.stderr
    res = fleet(cluster, hdfs, "retrain", "ghost", "-n", namespace, "--now")
    assert res.returncode == 1 and "no re-training schedule retrain-ghost" in res.stderr
    assert cluster.get_json("cronjobs", "-n", namespace)["items"] == []
