"""`up`/`down`/`status` on clusters of their own, including the failure paths."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from devcluster.cluster import ClusterError, LocalCluster, binaries, processes

pytestmark = pytest.mark.cluster


@pytest.fixture
def own_cluster(tmp_path: Path, cluster):  # noqa: ARG001 - needs the binaries the session built
    local = LocalCluster(tmp_path / "state")
    yield local
    local.down()


def test_up_is_idempotent_and_down_leaves_nothing(own_cluster: LocalCluster) -> None:
    own_cluster.up(nodes=1, gpu_nodes=0)
    first = own_cluster.pids()
    status = own_cluster.status()
    assert status.healthy
    assert [n["name"] for n in status.nodes] == ["local-0", "node-0"]  # runner node by default

    own_cluster.up(nodes=1, gpu_nodes=0)  # reuses the healthy cluster
    assert own_cluster.pids() == first

    stopped = own_cluster.down()
    assert sorted(stopped) == sorted(first)
    assert not any(processes.alive(pid) for pid in first.values())
    assert not own_cluster.layout.root.exists()


def test_down_keep_preserves_state_and_up_restarts(own_cluster: LocalCluster) -> None:
    own_cluster.up(nodes=1, gpu_nodes=0)
    own_cluster.down(keep=True)
    assert (own_cluster.layout.root / "pki" / "ca.crt").exists()
    assert not own_cluster.status().healthy
    own_cluster.up(nodes=1, gpu_nodes=0)
    assert own_cluster.status().healthy


def test_component_dying_at_start_names_it_and_cleans_up(
    own_cluster: LocalCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = tmp_path / "kube-scheduler"
    broken.write_text("#!/bin/sh\necho 'simulated: bad scheduler config' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("TEST_ASSET_KUBE_SCHEDULER", str(broken))
    with pytest.raises(ClusterError) as err:
        own_cluster.up(nodes=1, gpu_nodes=0, timeout=60)
    assert "kube-scheduler exited during start" in str(err.value)
    assert "simulated: bad scheduler config" in str(err.value)
    state_pids = own_cluster.pids()
    assert state_pids == {}, "a failed up leaves no process running"


def test_port_in_use_is_reported(own_cluster: LocalCluster) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(ClusterError, match=f"port {port} on 127.0.0.1 is already in use"):
            own_cluster.up(apiserver_port=port)


def test_missing_binaries_and_no_go_say_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KUBEBUILDER_ASSETS", "TEST_ASSET_ETCD", "TEST_ASSET_KUBE_APISERVER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no go, no binaries
    with pytest.raises(ClusterError, match="fleet cluster build"):
        binaries.require()
    with pytest.raises(ClusterError, match="no Go toolchain"):
        binaries.build(progress=lambda _m: None)


def test_invalid_node_counts_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ClusterError, match="at least one node"):
        LocalCluster(tmp_path).up(nodes=0, gpu_nodes=0, local_nodes=0)
    with pytest.raises(ClusterError, match="0 or more"):
        LocalCluster(tmp_path).up(nodes=-1)
    with pytest.raises(ClusterError, match="--local-gpus must be 0 or more"):
        LocalCluster(tmp_path).up(local_gpus=-1)
    with pytest.raises(ClusterError, match="--local-memory 'lots' is not a Kubernetes quantity"):
        LocalCluster(tmp_path).up(local_memory="lots")
    with pytest.raises(ClusterError, match="at most 128"):
        LocalCluster(tmp_path).up(local_nodes=129)
