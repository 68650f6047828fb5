"""Guarded promotion against a real serving Deployment on the process kubelet.

Two real trainings (1 and 8 epochs) give a weak and a strong model in one store; the
Deployment starts pinned to the weak one. The tests run in order on that Deployment.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from typing import Any

import httpx
import pytest

from fleet.kube import KubeClient
from fleet.ops import deploy as deploy_ops
from tests.fixtures.cluster import TestCluster, wait_for
from tests.tuning.trainkit import REPO
from tuning import promote
from tuning.example import publish_example

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs]
NAME = "digits-live"


def train_locally(hdfs: Any, code: str, data: str, output: str, epochs: int, tmp: str) -> str:
    """The trainer entrypoint as a plain process (the same code a pod runs)."""
    env = {**os.environ, "CODE_URI": code, "DATA_URI": data, "OUTPUT_URI": output,
           "EPOCHS": str(epochs), "WEBHDFS_URL": hdfs.webhdfs_url, "WORK_DIR": tmp,
           "TERMINATION_LOG": f"{tmp}/term", "TF_CPP_MIN_LOG_LEVEL": "2",
           "NO_PROXY": "127.0.0.1"}
    res = subprocess.run([sys.executable, "-m", "tuning.trainer_entrypoint"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:]
    return res.stdout


@pytest.fixture(scope="module")
def store(hdfs, tmp_path_factory) -> dict[str, str]:  # noqa: ANN001
    code, data = publish_example(hdfs.uri("/tuning-tests/example-promote"),
                                 webhdfs_url=hdfs.webhdfs_url)
    base = hdfs.uri(f"/tuning-tests/promote-{os.getpid()}/digits")
    for epochs in (1, 8):  # version 1 weak, version 2 strong
        train_locally(hdfs, code, data, base, epochs, str(tmp_path_factory.mktemp("train")))
    return {"base": base, "code": code, "data": data, "webhdfs": hdfs.webhdfs_url}


@pytest.fixture(scope="module")
def live(cluster: TestCluster, hdfs, store) -> tuple[KubeClient, str]:  # noqa: ANN001
    ns = f"promote-{os.getpid()}"
    cluster.kubectl_run("create", "namespace", ns)
    client = KubeClient.from_kubeconfig(cluster.kubeconfig, namespace=ns)
    spec = deploy_ops.DeploySpec(
        name=NAME, namespace=ns, model_uri=store["base"], version="1", replicas=1,
        runtime="savedmodel", runtime_class="fleet-local", cpu="250m", memory="1Gi",
        route=False, env=(("WEBHDFS_URL", hdfs.webhdfs_url), ("MODEL_VERSION", "1"),
                          ("SERVING_WORKERS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2")))
    result, _ = deploy_ops.deploy(client, spec, timeout=300)
    assert result.available, result.failure
    yield client, ns
    cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)


def copy_version(hdfs: Any, base: str, src: int, dst: int, truncate: str = "") -> None:
    """Copy a published version in HDFS (optionally truncating one file: a bad upload)."""
    webhdfs = hdfs.client()
    path = base.split(str(hdfs.rpc_port), 1)[1]
    src_dir, dst_dir = f"{path}/{src}", f"{path}/{dst}"
    for root, _dirs, files in webhdfs.walk(src_dir):
        for f in sorted(files, key=lambda f: f == "metadata.json"):
            with webhdfs.read(f"{root}/{f}") as r:
                body = r.read()
            if f == truncate:
                body = body[: len(body) // 2]
            webhdfs.write(f"{dst_dir}{root[len(src_dir):]}/{f}", body, overwrite=True)


def _dep(client: KubeClient, ns: str) -> dict:
    return client.get(f"/apis/apps/v1/namespaces/{ns}/deployments/{NAME}")


def served_version(client: KubeClient, ns: str) -> set[str]:
    """The model version every Ready pod of the Deployment reports over TF Serving REST."""
    pods = client.get(f"/api/v1/namespaces/{ns}/pods",
                      {"labelSelector": f"app.kubernetes.io/name={NAME}"})["items"]
    versions = set()
    for p in pods:
        if p["metadata"].get("deletionTimestamp") or not p["status"].get("podIP"):
            continue
        ready = any(c["type"] == "Ready" and c["status"] == "True"
                    for c in p["status"].get("conditions") or [])
        if ready:
            r = httpx.get(f"http://{p['status']['podIP']}:8080/v1/models/{NAME}", timeout=5)
            versions |= {s["version"] for s in r.json()["model_version_status"]}
    return versions


def test_a_better_candidate_is_promoted_and_served(live, store) -> None:  # noqa: ANN001
    client, ns = live
    assert served_version(client, ns) == {"1"}
    lines: list[str] = []
    p = promote.promote(client, ns, NAME, f"{store['base']}/2", min_delta=0.01,
                        source="job digits-2", timeout=240, webhdfs_url=store["webhdfs"],
                        say=lines.append)
    assert p.result == "promoted", p.detail
    assert p.candidate_score > p.live_score + 0.01
    dep = _dep(client, ns)
    env = {e["name"]: e["value"] for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
           if "value" in e}
    assert env["MODEL_VERSION"] == "2" and env["MODEL_URI"] == store["base"]
    cause = dep["metadata"]["annotations"]["kubernetes.io/change-cause"]
    assert cause.startswith(f"fleet promote {NAME} --model-uri={store['base']}/2 "
                            "(source: job digits-2): holdout accuracy")
    wait_for(lambda: served_version(client, ns) == {"2"}, timeout=60,
             what="only version 2 served")


def test_a_worse_candidate_is_kept_out_and_nothing_changes(live, store) -> None:  # noqa: ANN001
    client, ns = live
    before = _dep(client, ns)["metadata"]
    p = promote.promote(client, ns, NAME, f"{store['base']}/1", timeout=60,
                        webhdfs_url=store["webhdfs"])
    assert p.result == "kept"
    assert "is not better" in p.detail and p.candidate_score < p.live_score
    after = _dep(client, ns)["metadata"]
    assert after["generation"] == before["generation"]
    assert after["resourceVersion"] == before["resourceVersion"]


def test_no_live_model_needs_bootstrap(live, store, hdfs, cluster) -> None:  # noqa: ANN001
    client, ns = live
    dep = _dep(client, ns)
    empty = hdfs.uri(f"/tuning-tests/promote-{os.getpid()}/nothing-here")
    # point a copy of the check at an empty store by promoting into a fresh Deployment object
    clone = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "fresh", "namespace": ns},
             "spec": {**dep["spec"], "replicas": 0}}
    c = clone["spec"]["template"]["spec"]["containers"][0]
    c["env"] = [e for e in c["env"] if e["name"] not in ("MODEL_URI", "MODEL_VERSION")] + [
        {"name": "MODEL_URI", "value": empty}]
    client.post(f"/apis/apps/v1/namespaces/{ns}/deployments", clone)
    with pytest.raises(promote.PromotionError, match="--bootstrap"):
        promote.promote(client, ns, "fresh", f"{store['base']}/2", timeout=30,
                        webhdfs_url=store["webhdfs"])
    p = promote.promote(client, ns, "fresh", f"{store['base']}/2", bootstrap=True, timeout=30,
                        webhdfs_url=store["webhdfs"])
    assert p.result == "bootstrapped", p.detail


def test_a_candidate_that_never_gets_ready_is_rolled_back(live, store, hdfs) -> None:  # noqa: ANN001
    client, ns = live
    # version 3: a copy of version 2 whose SavedModel is truncated (fails its sha256 check)
    copy_version(hdfs, store["base"], 2, 3, truncate="saved_model.pb")
    before = _dep(client, ns)
    p = promote.promote(client, ns, NAME, f"{store['base']}/3", force=True, timeout=40,
                        webhdfs_url=store["webhdfs"])
    assert p.result == "rolled-back", p.detail
    assert "not Ready within 40 s" in p.detail
    after = _dep(client, ns)
    tmpl = lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"]  # noqa: E731
    assert tmpl(after) == tmpl(before)
    wait_for(lambda: served_version(client, ns) == {"2"}, timeout=120,
             what="the old version serving again")


class RaceClient:
    """The real client, but every thread waits after its first read of the Deployment until
    the other thread has read it too: both promotions judge the same object."""

    def __init__(self, inner: KubeClient, barrier: threading.Barrier) -> None:
        self.inner = inner
        self.barrier = barrier
        self.waited: set[int] = set()

    def get(self, path: str, query: Any = None) -> dict:
        out = self.inner.get(path, query)
        me = threading.get_ident()
        if path.endswith(f"/deployments/{NAME}") and me not in self.waited:
            self.waited.add(me)
            self.barrier.wait(timeout=60)
        return out

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_two_racing_promotions_have_exactly_one_winner(live, store, hdfs) -> None:  # noqa: ANN001
    client, ns = live
    copy_version(hdfs, store["base"], 1, 4)  # two valid candidates, neither of them live (2)
    race = RaceClient(client, threading.Barrier(2))
    results: dict[str, promote.Promotion] = {}

    def run(version: int) -> None:
        results[str(version)] = promote.promote(race, ns, NAME, f"{store['base']}/{version}",
                                                force=True, timeout=120, source=f"v{version}",
                                                webhdfs_url=store["webhdfs"])

    threads = [threading.Thread(target=run, args=(v,)) for v in (1, 4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    outcomes = sorted(r.result for r in results.values())
    assert outcomes == ["lost", "promoted"], results
    loser = next(r for r in results.values() if r.result == "lost")
    assert "lost the race" in loser.detail and "it now serves" in loser.detail
