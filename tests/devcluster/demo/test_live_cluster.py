"""The demo's live models on the real cluster: Available, a really stalled rollout, rollback."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from devcluster.demo import real
from fleet.kube import KubeClient
from tests.fixtures.cluster import TestCluster, wait_for

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs]


def _pods(cluster: TestCluster, name: str) -> list[dict]:
    return cluster.get_json("pods", "-n", real.NAMESPACE, "-l",
                            f"app.kubernetes.io/name={name}")["items"]


def _ready(p: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in p.get("status", {}).get("conditions", []))


def test_live_models_stalled_rollout_and_rollback(cluster: TestCluster, hdfs) -> None:  # noqa: ANN001
    client = KubeClient.from_kubeconfig(cluster.kubeconfig)
    said: list[str] = []
    done = real.seed_live(client, hdfs, said.append)
    assert done == ["deployed digits-latency", "deployed digits-throughput",
                    "stalled rollout on digits-latency"]
    hpa = cluster.get_json("hpa", "digits-throughput", "-n", real.NAMESPACE)
    assert hpa["spec"]["minReplicas"] == 1 and hpa["spec"]["maxReplicas"] == 2

    # The candidate's version 3 fails its checksum: its pod never becomes Ready, the old one
    # keeps serving, and the rollout does not complete.
    def stalled() -> bool:
        pods = _pods(cluster, "digits-latency")
        logs = [cluster.kubectl_run("logs", p["metadata"]["name"], "-n", real.NAMESPACE,
                                    check=False).stdout for p in pods if not _ready(p)]
        return len(pods) == 2 and sum(map(_ready, pods)) == 1 and \
            any("sha256" in log for log in logs)

    wait_for(stalled, timeout=180, what="the stalled rollout")
    status = cluster.kubectl_run("rollout", "status", "deployment/digits-latency", "-n",
                                 real.NAMESPACE, "--timeout=3s", check=False)
    assert status.returncode != 0

    # Rolling back restores service for real.
    rb = subprocess.run([sys.executable, "-m", "fleet.cli", "rollback", "digits-latency", "-n",
                         real.NAMESPACE], env=cluster.env, capture_output=True, text=True,
                        timeout=120)
    assert rb.returncode == 0, rb.stderr
    wait_for(lambda: len(_pods(cluster, "digits-latency")) == 1
             and all(map(_ready, _pods(cluster, "digits-latency"))), timeout=180,
             what="one Ready pod after the rollback")
    dep = cluster.get_json("deployment", "digits-latency", "-n", real.NAMESPACE)
    env = {e["name"]: e.get("value") for e in
           dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["MODEL_URI"] == hdfs.uri(real.BASE)

    # A second demo run publishes and deploys nothing new (the rollback is the user's choice:
    # the demo does roll the candidate out again, as a fresh incident).
    t0 = time.monotonic()
    again = real.seed_live(client, hdfs, said.append)
    assert again == ["stalled rollout on digits-latency"]
    assert time.monotonic() - t0 < 30
    assert not [s for s in said[-3:] if "training" in s]
