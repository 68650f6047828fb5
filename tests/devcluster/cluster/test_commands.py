"""`fleet cluster status | env` against the session cluster, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.cluster import TestCluster

pytestmark = pytest.mark.cluster


def _fleet(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet.cli", *args], capture_output=True,
                          text=True, timeout=60)


def test_status_table_and_json(cluster: TestCluster) -> None:
    state = str(cluster.local.layout.root)
    table = _fleet("cluster", "--state-dir", state, "status")
    assert table.returncode == 0, table.stderr
    for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
        assert name in table.stdout
    assert "gpu-node-0" in table.stdout
    doc = json.loads(_fleet("cluster", "--state-dir", state, "status", "-o", "json").stdout)
    assert doc["healthy"] is True
    assert {n["name"]: n["gpus"] for n in doc["nodes"]}["gpu-node-0"] == 4


def test_env_prints_kubeconfig_export(cluster: TestCluster) -> None:
    out = _fleet("cluster", "--state-dir", str(cluster.local.layout.root), "env")
    assert out.returncode == 0
    # the test cluster has a process-kubelet node, so deploy/train default to its RuntimeClass
    assert out.stdout.splitlines() == [f"export KUBECONFIG={cluster.kubeconfig}",
                                       "export FLEET_RUNTIME_CLASS=fleet-local"]


def test_status_and_env_without_a_cluster_fail_clearly(tmp_path: Path) -> None:
    status = _fleet("cluster", "--state-dir", str(tmp_path), "status")
    assert status.returncode == 1
    assert "fleet cluster up" in status.stdout
    env = _fleet("cluster", "--state-dir", str(tmp_path), "env")
    assert env.returncode == 1
    assert "error: no local cluster" in env.stderr


def test_kubectl_is_the_pinned_version(cluster: TestCluster) -> None:
    out = cluster.kubectl_run("version", "-o", "json")
    doc = json.loads(out.stdout)
    assert doc["clientVersion"]["gitVersion"] == "v1.37.2"
    assert doc["serverVersion"]["gitVersion"] == "v1.37.2"
