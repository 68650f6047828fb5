"""`fleet train` end to end: a real Job on the process kubelet, code and data from HDFS."""

from __future__ import annotations

import json
import re

import pytest

from serving.store import Store
from tests.fixtures.cluster import TestCluster, wait_for
from tests.tuning.trainkit import (
    condition,
    fleet,
    job,
    job_pods,
    logs,
    wait_progress,
)
from tuning import artifact
from tuning.example import publish_example

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs]


@pytest.fixture(scope="module")
def example(hdfs) -> tuple[str, str]:  # noqa: ANN001
    return publish_example(hdfs.uri("/tuning-tests/example"), webhdfs_url=hdfs.webhdfs_url)


def _train(cluster, hdfs, ns, name, code, data, output, *extra, timeout=600):  # noqa: ANN001
    return fleet(cluster, hdfs, "train", name, "-n", ns, "--code", code, "--data", data,
                 "--output", output, *extra, timeout=timeout)


def test_training_job_installs_stages_trains_and_publishes_a_servable_model(
        cluster: TestCluster, namespace: str, hdfs, example, tmp_path) -> None:  # noqa: ANN001
    code, data = example
    output = hdfs.uri(f"/tuning-tests/{namespace}/digits")
    res = _train(cluster, hdfs, namespace, "digits", code, data, output, "--epochs", "6",
                 "--param", "learning_rate=0.004", "--gpus", "1", "--wait", "--timeout", "8m")
    assert res.returncode == 0, res.stdout + res.stderr
    assert f"job digits complete: model {output}/1" in res.stdout
    assert "training · epoch" in res.stderr and "done" in res.stderr  # progress while waiting
    j = job(cluster, namespace, "digits")
    assert condition(j, "Complete") and j["status"]["succeeded"] == 1
    done = json.loads(j["metadata"]["annotations"]["modelfleet.io/progress"])
    assert done["phase"] == "done" and done["model_uri"] == f"{output}/1"
    assert (done["epoch"], done["epochs"]) == (6, 6)
    (pod,) = job_pods(cluster, namespace, "digits")
    log = logs(cluster, namespace, pod["metadata"]["name"])
    assert re.search(r"installed digits-trainer 1\.0\.0 from \S+: [\d.]+ kB fetched in "
                     r"[\d.]+ s, installed in [\d.]+ s", log), log
    assert re.search(r"staged dataset digits version 1 from \S+: [\d.]+ MB in [\d.]+ s "
                     r"\([\d.]+ MB/s\)", log), log
    assert "1 GPU(s) allocated" in log
    meta = Store(output, webhdfs_url=hdfs.webhdfs_url).read_metadata(1)
    prov = meta["provenance"]
    assert prov["job"] == "digits" and prov["pod"] == pod["metadata"]["name"]
    assert prov["dataset"]["version"] == 1 and prov["dataset"]["uri"] == f"{data}/1"
    assert prov["params"] == {"learning_rate": "0.004"} and prov["epochs"] == 6
    assert prov["code_version"] == "digits-trainer 1.0.0"
    assert meta["holdout"]["value"] >= 0.95
    # serving's own store and runtime load it and score the holdout the same way
    _, local, _ = Store(output, webhdfs_url=hdfs.webhdfs_url,
                        cache_dir=str(tmp_path)).fetch(1)
    from tuning.remote import Remote

    Remote.open(f"{data}/1", hdfs.webhdfs_url).download("holdout.npz", tmp_path / "h.npz")
    assert artifact.evaluate(local, tmp_path / "h.npz") >= 0.95


def test_a_second_run_writes_the_next_version_never_over_one(
        cluster: TestCluster, namespace: str, hdfs, example) -> None:  # noqa: ANN001
    code, data = example
    output = hdfs.uri(f"/tuning-tests/{namespace}/digits")
    for name in ("first", "second"):
        res = _train(cluster, hdfs, namespace, name, code, data, output, "--epochs", "1",
                     "--wait", "--timeout", "6m")
        assert res.returncode == 0, res.stderr
    assert Store(output, webhdfs_url=hdfs.webhdfs_url).versions() == [1, 2]


def test_missing_code_fails_the_job_at_once_with_the_reason(
        cluster: TestCluster, namespace: str, hdfs, example) -> None:  # noqa: ANN001
    _, data = example
    missing = hdfs.uri("/tuning-tests/nowhere/trainer-9.9-py3-none-any.whl")
    res = _train(cluster, hdfs, namespace, "nocode", missing, data,
                 hdfs.uri(f"/tuning-tests/{namespace}/out"), "--wait", "--timeout", "3m")
    assert res.returncode == 1
    assert "failed at once (deterministic error, not retried)" in res.stderr
    assert f"code {missing} not found" in res.stderr
    j = job(cluster, namespace, "nocode")
    assert condition(j, "Failed")["reason"] == "PodFailurePolicy"
    assert j["status"].get("failed") == 1  # no retry loop
    assert len(job_pods(cluster, namespace, "nocode")) == 1


def test_a_bad_parameter_is_deterministic_too(
        cluster: TestCluster, namespace: str, hdfs, example) -> None:  # noqa: ANN001
    code, data = example
    res = _train(cluster, hdfs, namespace, "badparam", code, data,
                 hdfs.uri(f"/tuning-tests/{namespace}/out"), "--param", "dropout=7",
                 "--wait", "--timeout", "4m")
    assert res.returncode == 1
    assert "failed at once" in res.stderr and "dropout" in res.stderr
    assert job(cluster, namespace, "badparam")["status"].get("failed") == 1


def test_a_killed_pod_is_retried_and_the_run_completes(
        cluster: TestCluster, namespace: str, hdfs, example) -> None:  # noqa: ANN001
    code, data = example
    res = _train(cluster, hdfs, namespace, "killed", code, data,
                 hdfs.uri(f"/tuning-tests/{namespace}/out"), "--epochs", "400")
    assert res.returncode == 0, res.stderr
    wait_progress(cluster, namespace, "killed", lambda p: (p.get("epoch") or 0) >= 1,
                  what="a first epoch")
    (first,) = job_pods(cluster, namespace, "killed")
    cluster.kubectl_run("delete", "pod", "-n", namespace, first["metadata"]["name"],
                        "--wait=false")
    second = wait_for(lambda: [p for p in job_pods(cluster, namespace, "killed")
                               if p["metadata"]["uid"] != first["metadata"]["uid"]],
                      timeout=60, what="a replacement pod")
    assert second
    j = wait_for(lambda: (lambda j: j if (j["status"].get("failed") or 0) >= 1 else None)(
        job(cluster, namespace, "killed")), timeout=60, what="the kill counted as a failure")
    assert not condition(j, "Failed")  # retried, not failed (backoffLimit 2)
    cluster.kubectl_run("delete", "job", "-n", namespace, "killed", "--wait=false")


def test_more_gpus_than_any_node_has_is_refused_before_creating_anything(
        cluster: TestCluster, namespace: str, hdfs, example) -> None:  # noqa: ANN001
    code, data = example
    res = _train(cluster, hdfs, namespace, "greedy", code, data,
                 hdfs.uri(f"/tuning-tests/{namespace}/out"), "--gpus", "64", "--wait")
    assert res.returncode == 1
    assert "unschedulable: no node has 64 allocatable nvidia.com/gpu" in res.stderr
    got = cluster.kubectl_run("get", "job", "-n", namespace, "greedy", check=False)
    assert got.returncode != 0 and "NotFound" in got.stderr


def test_gpus_no_eligible_node_can_give_report_the_schedulers_message(
        cluster: TestCluster, namespace: str, hdfs, example) -> None:  # noqa: ANN001
    # The runner node has 2 GPUs; a kwok node has 4 but fleet-local pods cannot go there.
    code, data = example
    res = _train(cluster, hdfs, namespace, "starved", code, data,
                 hdfs.uri(f"/tuning-tests/{namespace}/out"), "--gpus", "3", "--wait",
                 "--unschedulable-timeout", "3s", "--timeout", "2m")
    assert res.returncode == 1, res.stderr
    assert "is unschedulable: 0/" in res.stderr and "nvidia.com/gpu" in res.stderr
    assert "The Job stays queued" in res.stderr


def test_invalid_requests_exit_2_and_create_nothing(
        cluster: TestCluster, namespace: str, hdfs) -> None:  # noqa: ANN001
    res = fleet(cluster, hdfs, "train", "Bad_Name", "-n", namespace, "--code", "rel/t.whl",
                "--output", "/m", "--workers", "0")
    assert res.returncode == 2
    for needle in ("name 'Bad_Name' must be a DNS label", "--code 'rel/t.whl' must be an "
                   "absolute path", "--data is required", "--workers 0", "nothing was created"):
        assert needle in res.stderr
    assert cluster.get_json("jobs", "-n", namespace)["items"] == []


def test_publish_example_prints_code_and_data_lines(cluster, hdfs) -> None:  # noqa: ANN001
    to = hdfs.uri("/tuning-tests/publish-cli")
    res = fleet(cluster, hdfs, "train", "publish-example", "--to", to)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        f"code: {to}/code/digits_trainer-1.0.0-py3-none-any.whl", f"data: {to}/data"]
    missing = fleet(cluster, hdfs, "train", "publish-example")
    assert missing.returncode == 2 and "needs --to URI" in missing.stderr


