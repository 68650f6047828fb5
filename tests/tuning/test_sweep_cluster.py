"""Optuna sweeps as a pool of worker pods on the process kubelet, study in real PostgreSQL,
code and data on HDFS: exact budgets, pruning, failure layers, stop/resume, promotion."""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import pytest

from fleet.kube import KubeClient
from fleet.ops import deploy as deploy_ops
from tests.fixtures.cluster import TestCluster, wait_for
from tests.serving.conftest import make_demo
from tests.tuning.sweepkit import (
    fresh,
    launch,
    spec_yaml,
    states,
    study,
    trial_table,
    trials,
    wait_trials,
)
from tests.tuning.trainkit import condition, fleet, job, job_pods, logs
from tuning.example import publish_example

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs, pytest.mark.postgres]


@pytest.fixture(scope="module")
def example(hdfs) -> tuple[str, str]:  # noqa: ANN001
    return publish_example(hdfs.uri("/tuning-tests/example-sweep"), webhdfs_url=hdfs.webhdfs_url)


def test_a_sweep_runs_exactly_its_budget_prunes_and_promotes_its_winner(
        cluster: TestCluster, namespace: str, hdfs, example, postgres_url, tmp_path) -> None:  # noqa: ANN001
    code, data = example
    base = hdfs.uri(f"/tuning-tests/{namespace}/live")
    assert make_demo(base, hdfs.env, "--epochs", "1", "--version", "1").returncode == 0
    client = KubeClient.from_kubeconfig(cluster.kubeconfig, namespace=namespace)
    result, _ = deploy_ops.deploy(client, deploy_ops.DeploySpec(
        name="digits-live", namespace=namespace, model_uri=base, version="1", replicas=1,
        runtime="savedmodel", runtime_class="fleet-local", cpu="250m", memory="1Gi",
        route=False, env=(("WEBHDFS_URL", hdfs.webhdfs_url), ("MODEL_VERSION", "1"),
                          ("SERVING_WORKERS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2"))),
        timeout=300)
    assert result.available, result.failure
    text = spec_yaml("sw12", code, data, hdfs.uri(f"/tuning-tests/{namespace}/sw12"),
                     budget={"max_trials": 12}, parallelism=3,
                     promotion={"deployment": "digits-live", "min_delta": 0.0,
                                "auto_promote": True})
    res = launch(cluster, hdfs, namespace, tmp_path, text, postgres_url, "--wait",
                 "--timeout", "14m")
    assert res.returncode == 0, res.stdout + res.stderr[-4000:]
    assert "sweep sw12 complete" in res.stdout and "promotion promoted" in res.stdout
    ts = trials(postgres_url, namespace, "sw12")
    assert len(ts) == 12 and len(fresh(ts)) == 12  # exactly the budget, no overshoot
    counts = states(ts)
    assert counts.get("PRUNED", 0) >= 1, counts
    assert counts.get("COMPLETE", 0) + counts.get("PRUNED", 0) == 12, (
        counts, [t.user_attrs.get("fail_reason") for t in ts if t.state.name == "FAIL"])
    pods = {t.user_attrs["pod"] for t in ts}
    assert 1 <= len(pods) <= 3 and all(p.startswith("sw12-") for p in pods)
    s = study(postgres_url, namespace, "sw12")
    best = s.best_trial
    dep = client.get(f"/apis/apps/v1/namespaces/{namespace}/deployments/digits-live")
    env = {e["name"]: e.get("value") for e in
           dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert f"{env['MODEL_URI']}/{env['MODEL_VERSION']}" == best.user_attrs["model_uri"]
    assert f"(source: sweep sw12 trial {best.number})" in \
        dep["metadata"]["annotations"]["kubernetes.io/change-cause"]
    # the Job's summary and the trials ConfigMap describe the same sweep
    j = job(cluster, namespace, "sw12")
    summary = json.loads(j["metadata"]["annotations"]["modelfleet.io/sweep"])
    assert (summary["state"], summary["max_trials"], summary["best_trial"]) == \
        ("complete", 12, best.number)
    cm = cluster.get_json("configmap", "sw12-trials", "-n", namespace)
    rows = json.loads(cm["data"]["trials.json"])
    assert [r["n"] for r in rows] == list(range(12))
    show = fleet(cluster, hdfs, "sweep", "show", "sw12", "-n", namespace, "-o", "json")
    assert json.loads(show.stdout)["sweep"]["best_trial"] == best.number
    # the study is a plain Optuna study: the optuna CLI reads it on the same storage URL
    import subprocess
    import sys

    optuna_cli = str(Path(sys.executable).with_name("optuna"))
    out = subprocess.run([optuna_cli, "trials", "--study-name",
                          f"{namespace}.sw12", "--storage", postgres_url, "-f", "json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == 12
    ls = fleet(cluster, hdfs, "sweep", "ls", "-n", namespace)
    assert "sw12" in ls.stdout and "complete" in ls.stdout


def test_a_killed_worker_pod_fails_its_trial_and_queues_a_retry_within_10s(
        cluster: TestCluster, namespace: str, hdfs, example, postgres_url, tmp_path) -> None:  # noqa: ANN001
    code, data = example
    text = spec_yaml("killer", code, data, hdfs.uri(f"/tuning-tests/{namespace}/killer"),
                     epochs=25, budget={"max_trials": 3}, pruner={"type": "none"},
                     search_space={"learning_rate": {"type": "float", "low": 0.001,
                                                     "high": 0.003}})
    assert launch(cluster, hdfs, namespace, tmp_path, text, postgres_url).returncode == 0
    running = wait_trials(postgres_url, namespace, "killer",
                          lambda ts: any(t.state.name == "RUNNING" and t.intermediate_values
                                         for t in ts), what="a trial training")
    victim = next(t for t in running if t.state.name == "RUNNING" and t.intermediate_values)
    cluster.kubectl_run("delete", "pod", "-n", namespace, victim.user_attrs["pod"],
                        "--wait=false")
    killed_at = time.monotonic()

    def retried(ts):
        me = next(t for t in ts if t.number == victim.number)
        retry = [t for t in ts if t.system_attrs.get("failed_trial") == victim.number]
        return me.state.name == "FAIL" and retry

    wait_trials(postgres_url, namespace, "killer", retried, timeout=10,
                what="the killed trial FAIL and its retry queued")
    assert time.monotonic() - killed_at <= 10.5
    done = wait_trials(postgres_url, namespace, "killer",
                       lambda ts: len([t for t in ts if t.state.name == "COMPLETE"]) == 3,
                       timeout=600, what="the sweep to finish its 3 trials")
    assert len(fresh(done)) == 3  # the retry re-ran the slot, it did not take a new one
    retry = next(t for t in done if t.system_attrs.get("failed_trial") == victim.number)
    assert retry.params == victim.params and retry.state.name == "COMPLETE"
    assert retry.user_attrs["fail_reason"] == ""  # the retry's own outcome, not the victim's
    assert me_failed_reason(done, victim.number) == "interrupted: the worker pod was terminated"


def me_failed_reason(ts, number: int) -> str:  # noqa: ANN001
    return next(t for t in ts if t.number == number).user_attrs["fail_reason"]


def test_a_worker_that_dies_without_sigterm_is_failed_by_heartbeat_within_10s(
        cluster: TestCluster, namespace: str, hdfs, example, postgres_url, tmp_path) -> None:  # noqa: ANN001
    import os
    import signal

    from tests.devcluster.runner.runnerkit import descendants, pod_pid

    code, data = example
    text = spec_yaml("hbeat", code, data, hdfs.uri(f"/tuning-tests/{namespace}/hbeat"),
                     epochs=25, budget={"max_trials": 3}, pruner={"type": "none"},
                     search_space={"learning_rate": {"type": "float", "low": 0.001,
                                                     "high": 0.003}})
    assert launch(cluster, hdfs, namespace, tmp_path, text, postgres_url).returncode == 0
    running = wait_trials(postgres_url, namespace, "hbeat",
                          lambda ts: any(t.state.name == "RUNNING" and t.intermediate_values
                                         for t in ts), what="a trial training")
    victim = next(t for t in running if t.state.name == "RUNNING" and t.intermediate_values)
    pod = cluster.get_json("pod", victim.user_attrs["pod"], "-n", namespace)
    for pid in descendants(pod_pid(pod)):  # as if the node died: no SIGTERM, no hand-back
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    killed_at = time.monotonic()

    def retried(ts):
        me = next(t for t in ts if t.number == victim.number)
        return me.state.name == "FAIL" and [
            t for t in ts if t.system_attrs.get("failed_trial") == victim.number]

    wait_trials(postgres_url, namespace, "hbeat", retried, timeout=10,
                what="the stale trial failed and re-queued by another worker's heartbeat")
    assert time.monotonic() - killed_at <= 10.5
    fleet(cluster, hdfs, "sweep", "stop", "hbeat", "-n", namespace, "--storage", postgres_url)


def test_the_database_restarting_mid_sweep_is_waited_out(
        cluster: TestCluster, namespace: str, hdfs, example, postgres, postgres_url,
        tmp_path) -> None:  # noqa: ANN001
    code, data = example
    text = spec_yaml("dbflap", code, data, hdfs.uri(f"/tuning-tests/{namespace}/dbflap"),
                     epochs=4, budget={"max_trials": 4}, pruner={"type": "none"})
    assert launch(cluster, hdfs, namespace, tmp_path, text, postgres_url).returncode == 0
    wait_trials(postgres_url, namespace, "dbflap",
                lambda ts: any(t.intermediate_values for t in ts), what="training under way")
    postgres.restart()
    j = wait_for(lambda: (lambda j: j if condition(j, "Complete") or condition(j, "Failed")
                          else None)(job(cluster, namespace, "dbflap")),
                 timeout=600, what="the sweep's Job to finish")
    assert condition(j, "Complete"), j["status"]
    ts = trials(postgres_url, namespace, "dbflap")
    assert len(fresh(ts)) == 4
    assert all(t.state.name in ("COMPLETE", "FAIL") for t in ts)
    assert states(ts).get("COMPLETE", 0) >= 3


def test_identical_deterministic_failures_abort_the_sweep_with_the_reason(
        cluster: TestCluster, namespace: str, hdfs, example, postgres_url, tmp_path) -> None:  # noqa: ANN001
    code, data = example
    text = spec_yaml("doomed", code, data, hdfs.uri(f"/tuning-tests/{namespace}/doomed"),
                     params={"seed": 7, "dropout": 7}, budget={"max_trials": 10},
                     search_space={"learning_rate": {"type": "float", "low": 0.001,
                                                     "high": 0.003}})
    res = launch(cluster, hdfs, namespace, tmp_path, text, postgres_url, "--wait",
                 "--timeout", "8m")
    assert res.returncode == 1
    assert "sweep doomed aborted: the first 3 trials failed the same way" in res.stderr
    assert "dropout" in res.stderr
    ts = trials(postgres_url, namespace, "doomed")
    # trials the 2 workers had already started finish after the abort (under load up to
    # two each), never the whole budget of 10
    assert 3 <= len(ts) <= 3 + 2 * 2 and all(t.state.name == "FAIL" for t in ts), len(ts)
    assert condition(job(cluster, namespace, "doomed"), "Failed")["reason"] == \
        "PodFailurePolicy"


def test_gpu_scarcity_leaves_pods_pending_and_says_so(
        cluster: TestCluster, namespace: str, hdfs, example, postgres_url, tmp_path) -> None:  # noqa: ANN001
    code, data = example
    text = spec_yaml("starved", code, data, hdfs.uri(f"/tuning-tests/{namespace}/starved"),
                     gpus=2, parallelism=2, budget={"max_trials": 2})
    assert launch(cluster, hdfs, namespace, tmp_path, text, postgres_url).returncode == 0

    def one_pending():
        pods = job_pods(cluster, namespace, "starved")
        pend = [p for p in pods if p["status"].get("phase") == "Pending"
                and any(c["type"] == "PodScheduled" and c["status"] == "False"
                        for c in p["status"].get("conditions") or [])]
        return pend if len(pods) == 2 and pend else None

    wait_for(one_pending, timeout=60, what="one worker pod waiting for GPUs")
    show = fleet(cluster, hdfs, "sweep", "show", "starved", "-n", namespace)
    assert "1 pending (0/" in show.stdout and "nvidia.com/gpu" in show.stdout, show.stdout
    fleet(cluster, hdfs, "sweep", "stop", "starved", "-n", namespace, "--storage",
          postgres_url)


def test_stop_leaves_the_study_consistent_and_resume_finishes_the_same_budget(
        cluster: TestCluster, namespace: str, hdfs, example, postgres_url, tmp_path) -> None:  # noqa: ANN001
    code, data = example
    text = spec_yaml("pausable", code, data, hdfs.uri(f"/tuning-tests/{namespace}/pausable"),
                     epochs=6, budget={"max_trials": 5}, pruner={"type": "none"})
    assert launch(cluster, hdfs, namespace, tmp_path, text, postgres_url).returncode == 0
    wait_trials(postgres_url, namespace, "pausable",
                lambda ts: any(t.state.name == "COMPLETE" for t in ts)
                and any(t.state.name == "RUNNING" for t in ts), timeout=400,
                what="one trial done and one running")
    stop = fleet(cluster, hdfs, "sweep", "stop", "pausable", "-n", namespace, "--storage",
                 postgres_url)
    assert stop.returncode == 0, stop.stderr
    ts = trials(postgres_url, namespace, "pausable")
    assert not [t for t in ts if t.state.name == "RUNNING"]  # nothing left RUNNING
    assert job(cluster, namespace, "pausable")["spec"]["suspend"] is True
    before = len(fresh(ts))
    assert before < 5
    res = fleet(cluster, hdfs, "sweep", "resume", "pausable", "-n", namespace, "--storage",
                postgres_url, "--wait", timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    ts = trials(postgres_url, namespace, "pausable")
    why = trial_table(ts) + "\n" + "\n".join(
        f"--- {p['metadata']['name']}\n{logs(cluster, namespace, p['metadata']['name'])[-4000:]}"
        for p in job_pods(cluster, namespace, "pausable"))
    assert len(fresh(ts)) == 5, why  # the same exact budget
    assert len([t for t in ts if t.state.name == "COMPLETE"]) == 5, why


def test_bad_specs_exit_2_and_leave_no_job_and_no_study(
        cluster: TestCluster, namespace: str, hdfs, postgres_url, tmp_path) -> None:  # noqa: ANN001
    text = spec_yaml("Bad_Name", "/c/t-1.0-py3-none-any.whl", "/d", "/m",
                     budget={"max_trials": 0}, parallelism=0,
                     search_space={"lr": {"type": "float", "low": 1.0, "high": 0.1}})
    res = launch(cluster, hdfs, namespace, tmp_path, text, postgres_url)
    assert res.returncode == 2
    for needle in ("name", "budget.max_trials", "parallelism", "search_space.lr",
                   "nothing was created"):
        assert needle in res.stderr, res.stderr
    assert cluster.get_json("jobs", "-n", namespace)["items"] == []
    import optuna

    assert optuna.get_all_study_names(storage=postgres_url) == []
    unreachable = launch(cluster, hdfs, namespace, tmp_path,
                         spec_yaml("fine", "/c/t-1.0-py3-none-any.whl", "/d", "/m"),
                         "postgresql+psycopg://u:p@127.0.0.1:1/optuna")
    assert unreachable.returncode == 1 and "storage unreachable" in unreachable.stderr
    assert "p@" not in unreachable.stderr  # the password is not printed
    assert cluster.get_json("jobs", "-n", namespace)["items"] == []


def test_pod_per_trial_mode_runs_each_trial_as_its_own_job(
        cluster: TestCluster, namespace: str, hdfs, example, postgres_url, tmp_path) -> None:  # noqa: ANN001
    code, data = example
    text = spec_yaml("ppt", code, data, hdfs.uri(f"/tuning-tests/{namespace}/ppt"), epochs=2,
                     mode="pod-per-trial", budget={"max_trials": 3}, pruner={"type": "none"})
    res = launch(cluster, hdfs, namespace, tmp_path, text, postgres_url, "--wait",
                 "--timeout", "10m")
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    ts = trials(postgres_url, namespace, "ppt")
    assert len(fresh(ts)) == 3 and states(ts) == {"COMPLETE": 3}
    names = sorted(j["metadata"]["name"] for j in cluster.get_json(
        "jobs", "-n", namespace, "-l", "app.kubernetes.io/component=sweep-trial")["items"])
    assert names == ["ppt-t0", "ppt-t1", "ppt-t2"]
    assert {t.user_attrs["pod"].rsplit("-", 1)[0] for t in ts} == {"ppt-t0", "ppt-t1", "ppt-t2"}


def test_a_distributed_trial_runs_on_two_pods_of_its_own_indexed_job(
        cluster: TestCluster, namespace: str, hdfs, example, postgres_url, tmp_path) -> None:  # noqa: ANN001
    code, data = example
    text = spec_yaml("dtrial", code, data, hdfs.uri(f"/tuning-tests/{namespace}/dtrial"),
                     epochs=2, mode="pod-per-trial", workers_per_trial=2, parallelism=1,
                     budget={"max_trials": 1}, pruner={"type": "none"})
    res = launch(cluster, hdfs, namespace, tmp_path, text, postgres_url, "--wait",
                 "--timeout", "10m")
    assert res.returncode == 0, res.stdout + res.stderr[-3000:]
    (t,) = trials(postgres_url, namespace, "dtrial")
    assert t.state.name == "COMPLETE" and t.user_attrs["model_uri"]
    pods = job_pods(cluster, namespace, "dtrial-t0")
    assert len(pods) == 2
    assert all(p["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
               for p in pods)
    from tests.tuning.trainkit import logs

    assert all("num_replicas_in_sync=2" in logs(cluster, namespace, p["metadata"]["name"])
               for p in pods)
