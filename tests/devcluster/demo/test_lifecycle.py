"""The demo's training run and sweeps: what it asks for, and that a second run relaunches
nothing (a fake API; the real steps are the same calls `fleet train` and `fleet sweep` make,
tested on the cluster in tests/tuning)."""

from __future__ import annotations

import argparse
import copy
from typing import Any

import pytest

from devcluster.demo import lifecycle, real
from fleet.errors import NotFound
from tuning import sweeps, train_ops
from tuning.jobs import validate
from tuning.train_ops import RunState, TrainFailed, path_of

NS = real.NAMESPACE
PODS = f"/api/v1/namespaces/{NS}/pods"
URL = "postgresql+psycopg://demo@127.0.0.1:5432/optuna"


class FakeHdfs:
    webhdfs_url = "http://127.0.0.1:9870"

    def uri(self, path: str) -> str:
        return f"hdfs://127.0.0.1:9000{path}"


class FakeClient:
    namespace = "default"

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Any]] = {}
        self.pods: list[dict[str, Any]] = []

    def add_job(self, name: str, *conditions: str, suspend: bool = False) -> None:
        self.objects[path_of("Job", NS, name)] = {
            "metadata": {"name": name, "namespace": NS, "annotations": {}},
            "spec": {"suspend": suspend},
            "status": {"conditions": [{"type": c, "status": "True"} for c in conditions]}}

    def add_pod(self, job: str, node: str = "", reason: str = "") -> None:
        status: dict[str, Any] = {"phase": "Running" if node else "Pending"}
        if reason:
            status["conditions"] = [{"type": "PodScheduled", "status": "False",
                                     "reason": "Unschedulable", "message": reason}]
        self.pods.append({"metadata": {"name": f"{job}-{len(self.pods)}",
                                       "labels": {"batch.kubernetes.io/job-name": job}},
                          "spec": {"nodeName": node}, "status": status})

    def get(self, path: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        if path == PODS:
            want = (query or {}).get("labelSelector", "").partition("=")[2]
            return {"items": [copy.deepcopy(p) for p in self.pods
                              if p["metadata"]["labels"]["batch.kubernetes.io/job-name"]
                              == want]}
        if path not in self.objects:
            raise NotFound(f"{path} not found", status=404, reason="NotFound")
        return copy.deepcopy(self.objects[path])


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every mutating step replaced by a recorder (a step not expected raises)."""
    seen: list[tuple[str, Any]] = []

    def publish(hdfs: Any, say: Any) -> tuple[str, str]:
        seen.append(("publish", hdfs.uri(lifecycle.EXAMPLE)))
        return (hdfs.uri(f"{lifecycle.EXAMPLE}/code/digits_trainer-1.0.0-py3-none-any.whl"),
                hdfs.uri(f"{lifecycle.EXAMPLE}/data"))

    monkeypatch.setattr(lifecycle, "publish", publish)
    monkeypatch.setattr(lifecycle.time, "sleep", lambda _s: None)
    return seen


def _wire(monkeypatch: pytest.MonkeyPatch, client: FakeClient, seen: list,
          train_result: Any = "hdfs://127.0.0.1:9000/models/digits-train/1") -> None:
    def create(c: Any, spec: Any, say: Any) -> list:
        seen.append(("train", spec))
        client.add_job(spec.name)
        return []

    def follow(c: Any, ns: str, name: str, **kw: Any) -> RunState:
        seen.append(("follow", (ns, name, kw["timeout"])))
        kw["on_progress"]("training · epoch 1/3")
        if isinstance(train_result, Exception):
            raise train_result
        return RunState(state="complete", result=train_result)

    def launch(c: Any, spec: Any, warns: list, url: str, **kw: Any) -> sweeps.Launched:
        seen.append(("launch", (spec, url, kw)))
        client.add_job(spec.name)
        for _ in range(spec.effective_parallelism):
            if spec.gpus <= 1:
                client.add_pod(spec.name, node="local-0")
            else:
                client.add_pod(spec.name, reason="0/6 nodes are available: 1 Insufficient "
                               "nvidia.com/gpu")
        return sweeps.Launched(spec.name, NS, f"{NS}.{spec.name}", spec.name, tuple(warns))

    monkeypatch.setattr(train_ops, "create", create)
    monkeypatch.setattr(train_ops, "follow", follow)
    monkeypatch.setattr(sweeps, "launch", launch)


def test_the_training_run_is_fleet_train_on_one_gpu_of_the_runner_node() -> None:
    h = FakeHdfs()
    spec = lifecycle.train_spec("hdfs://127.0.0.1:9000/examples/digits/code/t-1-py3-none-any"
                                ".whl", h.uri("/examples/digits/data"),
                                h.uri(lifecycle.TRAIN_OUTPUT), h.webhdfs_url)
    assert validate(spec) == []
    assert (spec.name, spec.namespace, spec.gpus, spec.runtime_class) == \
        ("digits-train", NS, 1, "fleet-local")
    assert 1 <= spec.epochs <= 5


def test_the_sweeps_fit_the_runner_node_promote_the_healthy_deployment_and_one_starves() -> None:
    h = FakeHdfs()
    code = h.uri("/examples/digits/code/digits_trainer-1.0.0-py3-none-any.whl")
    specs = {s.name: lifecycle.sweep_spec(s, code, h.uri("/examples/digits/data"),
                                          h.uri(s.output)) for s in lifecycle.SWEEPS}
    main, big = (specs[s.name][0] for s in lifecycle.SWEEPS)
    assert all(not warns for _spec, warns in specs.values())  # nothing the user would query
    # digits-latency (LIVE[0]) is left in a stalled rollout: the winner goes to the healthy one
    assert main.promotion is not None and main.promotion.auto_promote
    assert main.promotion.deployment == "digits-throughput" != real.LIVE[0].name
    assert main.promotion.min_delta == 0
    assert main.budget.max_trials == 8 and main.gpus == 1
    assert 2 <= main.effective_parallelism <= 3
    assert main.gpus * main.effective_parallelism <= lifecycle.RUNNER_GPUS
    # the GPU-starved one: launch accepts it (each pod fits the largest node), the pods don't
    assert big.promotion is None and big.gpus <= lifecycle.RUNNER_GPUS
    assert big.gpus * big.effective_parallelism > lifecycle.RUNNER_GPUS
    assert all(s.namespace == NS and s.storage is None for s in (main, big))  # no password
    job = sweeps.build_job(main, NS, runtime_class="fleet-local", webhdfs_url=h.webhdfs_url,
                           image="modelfleet/trainer:0.1.0", study=f"{NS}.{main.name}")
    pod = job["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "fleet-local"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert job["spec"]["parallelism"] == main.effective_parallelism


def test_a_fresh_cluster_gets_the_trainer_the_run_and_both_sweeps_in_order(
        monkeypatch: pytest.MonkeyPatch, calls: list) -> None:
    client, said = FakeClient(), []
    _wire(monkeypatch, client, calls)
    done = lifecycle.seed_lifecycle(client, FakeHdfs(), URL, said.append)
    assert done == ["trained digits-train", "launched digits-sweep", "launched digits-sweep-big"]
    assert [c[0] for c in calls] == ["publish", "train", "follow", "launch", "launch"]
    (_, train), (_, (main, url, kw)) = calls[1], calls[3]
    assert train.code_uri.endswith(".whl") and train.output_uri.endswith("/models/digits-train")
    assert url == URL and kw["runtime_class"] == "fleet-local"
    assert kw["webhdfs_url"] == FakeHdfs.webhdfs_url and main.name == "digits-sweep"
    assert any("epoch 1/3" in line for line in said)
    assert any("Insufficient nvidia.com/gpu" in line for line in said)
    assert lifecycle.follow_hints()[0] == "fleet sweep show digits-sweep -n models-live"


def test_a_second_demo_relaunches_nothing(monkeypatch: pytest.MonkeyPatch, calls: list) -> None:
    client, said = FakeClient(), []
    _wire(monkeypatch, client, calls)
    client.add_job("digits-train", "Complete")
    client.add_job("digits-sweep", "Complete")
    client.add_job("digits-sweep-big")
    assert lifecycle.seed_lifecycle(client, FakeHdfs(), URL, said.append) == []
    assert calls == []  # not even the wheel is rebuilt
    assert any("digits-train is already complete" in line for line in said)
    assert sum("left as it is" in line for line in said) == 3


def test_what_is_missing_is_made_and_a_failed_old_run_is_left(
        monkeypatch: pytest.MonkeyPatch, calls: list) -> None:
    client, said = FakeClient(), []
    _wire(monkeypatch, client, calls)
    client.add_job("digits-train", "Failed")
    client.add_job("digits-sweep", "Complete")
    done = lifecycle.seed_lifecycle(client, FakeHdfs(), URL, said.append)
    assert done == ["launched digits-sweep-big"]
    assert [c[0] for c in calls] == ["publish", "launch"]
    assert any("kubectl delete job -n models-live digits-train" in line for line in said)


def test_a_run_left_running_is_followed_not_recreated(
        monkeypatch: pytest.MonkeyPatch, calls: list) -> None:
    client = FakeClient()
    _wire(monkeypatch, client, calls)
    client.add_job("digits-train")
    for s in lifecycle.SWEEPS:
        client.add_job(s.name, suspend=True)
    assert lifecycle.seed_lifecycle(client, FakeHdfs(), URL, lambda _t: None) == \
        ["followed digits-train"]
    assert [c[0] for c in calls] == ["follow"]


def test_a_new_run_that_fails_stops_the_demo_with_the_reason(
        monkeypatch: pytest.MonkeyPatch, calls: list) -> None:
    client = FakeClient()
    _wire(monkeypatch, client, calls, train_result=TrainFailed("failed at once: bad data"))
    with pytest.raises(RuntimeError, match="digits-train failed at once: bad data"):
        lifecycle.seed_lifecycle(client, FakeHdfs(), URL, lambda _t: None)
    assert "launch" not in [c[0] for c in calls]


@pytest.mark.parametrize(("flags", "postgres"), [((), True), (("--no-sweeps",), False),
                                                 (("--no-live",), False)])
def test_postgres_is_started_only_for_the_sweeps(monkeypatch: pytest.MonkeyPatch,
                                                 flags: tuple[str, ...], postgres: bool) -> None:
    from devcluster import cluster
    from devcluster.demo import commands

    seen: dict[str, Any] = {}

    class Local:
        def __init__(self, _state: Any) -> None:
            pass

        def up(self, **kw: Any) -> None:
            seen.update(kw)
            raise cluster.ClusterError("stop here")

    monkeypatch.setattr(cluster, "LocalCluster", Local)
    monkeypatch.setattr(cluster.binaries, "build", lambda **_kw: None)
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers())
    args = parser.parse_args(["demo", "--no-tui", *flags])
    assert args.func(args) == 1
    assert seen["postgres"] is postgres and seen["hdfs"] is ("--no-live" not in flags)
    assert seen["local_gpus"] == lifecycle.RUNNER_GPUS
