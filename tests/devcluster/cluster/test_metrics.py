"""metrics-server on the local cluster: measured usage of runner pods, simulated usage of kwok
pods, `kubectl top`, and the pieces that make it so (APIService, scrape path, flags)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from devcluster.cluster import components
from devcluster.cluster.components import Layout, Ports
from devcluster.runner import usage
from devcluster.runner.cgroups import CgroupSupport
from devcluster.runner.pod import Checkpoint
from devcluster.runner.process import proc_start_time
from tests.devcluster.runner.runnerkit import create, pod, python_container, ready, wait_pod
from tests.fixtures.cluster import TestCluster, wait_for

# Busy 30% of every second: ~300m whatever the machine.
BURN = ("import time\n"
        "while True:\n"
        "    t = time.time()\n"
        "    while time.time() - t < 0.3: pass\n"
        "    time.sleep(0.7)\n")


def millicores(q: str) -> float:
    if q.endswith("n"):
        return int(q[:-1]) / 1e6
    if q.endswith("m"):
        return float(q[:-1])
    return float(q) * 1000


# ---- without a cluster ----------------------------------------------------------------------

def test_process_group_scan_counts_this_process() -> None:
    groups = usage.scan_process_groups()
    me = groups[os.getpgrp()]
    assert me.rss_bytes > 1 << 20
    t = time.process_time()
    while time.process_time() - t < 0.2:
        pass
    assert usage.scan_process_groups()[os.getpgrp()].cpu_seconds >= me.cpu_seconds + 0.15


def test_sample_gives_cores_from_the_second_sighting(tmp_path: Path) -> None:
    """A recorded container whose process group is ours: CPU as cores over the interval."""
    pgid = os.getpgrp()
    pod_dir = tmp_path / "local-0" / "pods" / "ns1_web_uid-1"
    pod_dir.mkdir(parents=True)
    Checkpoint("uid-1", "127.1.128.9", [], {
        "server": {"pid": pgid, "start_time": proc_start_time(pgid)},
        "gone": {"pid": 999_999_999, "start_time": 1}}).save(pod_dir / "checkpoint.json")
    rep = usage.UsageReporter(None, {"local-0": tmp_path / "local-0"},  # type: ignore[arg-type]
                              CgroupSupport(None, None, "test"))
    t0 = time.monotonic()
    assert rep.sample(t0) == {}  # baseline only
    t = time.process_time()
    while time.process_time() - t < 0.3:
        pass
    specs = rep.sample(time.monotonic())
    (u,) = specs[("ns1", "web", "uid-1")]["usages"]
    assert u["containers"] == ["server"]  # the dead pid is not measured
    assert millicores(u["usage"]["cpu"]["value"]) > 200
    assert int(u["usage"]["memory"]["value"]) > 1 << 20


def test_flags_short_hpa_windows_and_loopback_metrics_server(tmp_path: Path) -> None:
    from devcluster.cluster.binaries import Binaries
    from devcluster.cluster.pki import Pki

    b = Binaries(*(Path(f"/bin/{n}") for n in range(7)))  # type: ignore[arg-type]
    layout, pki = Layout(tmp_path), Pki(tmp_path / "pki")
    ports = Ports(1, 2, 3, 4, 5, 6, 7, kwok_runner=8, metrics_server=9)
    kcm = components.controller_manager(b, layout, ports, pki)
    assert "--horizontal-pod-autoscaler-downscale-stabilization=30s" in kcm
    ms = components.metrics_server(b, layout, ports, pki)
    assert "--bind-address=127.0.0.1" in ms and "--secure-port=9" in ms
    assert "--kubelet-insecure-tls" not in ms
    assert f"--kubelet-certificate-authority={pki.ca_cert}" in ms
    api = components.apiserver(b, layout, ports, pki)
    assert f"--requestheader-client-ca-file={pki.front_proxy_ca}" in api
    assert "--enable-aggregator-routing=false" in api
    runner = components.runner(layout, ports, pki, nodes=1, gpus=0)
    assert "--kwok-port=8" in runner  # the runner's nodes name the second kwok


# ---- on the cluster -------------------------------------------------------------------------

@pytest.mark.cluster
def test_kubectl_top_shows_measured_and_simulated_usage(cluster: TestCluster,
                                                        namespace: str) -> None:
    api = cluster.get_json("apiservice", "v1beta1.metrics.k8s.io")
    assert api["spec"]["service"]["name"] == "metrics-server"
    create(cluster, namespace, pod("burn", [python_container(
        "burn", BURN, resources={"requests": {"cpu": "100m"}, "limits": {"cpu": "1"}})]))
    cluster.apply({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "sim", "namespace": namespace,
                                "annotations": {"kwok.x-k8s.io/usage-cpu": "123m"}},
                   "spec": {"containers": [{"name": "c", "image": "busybox"}]}})
    wait_pod(cluster, namespace, "burn", ready, timeout=60)

    def top() -> dict[str, tuple[float, str]] | None:
        r = cluster.kubectl_run("top", "pods", "-n", namespace, "--no-headers", check=False)
        rows = {}
        for line in r.stdout.splitlines():
            name, cpu, mem = line.split()
            rows[name] = (millicores(cpu), mem)
        return rows if {"burn", "sim"} <= rows.keys() and rows["burn"][0] > 0 else None

    rows = wait_for(top, timeout=90, interval=2, what="kubectl top pods with both pods")
    assert 120 <= rows["burn"][0] <= 600, rows  # measured: ~300m of a busy loop
    assert abs(rows["sim"][0] - 123) <= 5, rows  # simulated from the annotation
    assert re.fullmatch(r"\d+Mi", rows["burn"][1]), rows
    assert rows["sim"][1] == "16Mi", rows
    usage_obj = cluster.get_json("resourceusages.kwok.x-k8s.io", "burn", "-n", namespace)
    assert usage_obj["metadata"]["ownerReferences"][0]["kind"] == "Pod"
    nodes = cluster.kubectl_run("top", "nodes", "--no-headers").stdout
    assert re.search(r"^local-0\s+\d+m", nodes, re.M), nodes
    status = {c.name: c.healthy for c in cluster.local.status().components}
    assert status["metrics-server"] and status["kwok-runner"], status


@pytest.mark.cluster
def test_metrics_server_and_the_runners_kwok_listen_on_loopback_only(
        cluster: TestCluster) -> None:
    from devcluster.cluster import processes

    pids = cluster.local.pids()
    for name in ("kwok-runner", "metrics-server"):
        listeners = processes.listening_addresses(pids[name])
        assert listeners, f"{name} has no listening socket"
        bad = [s for s in listeners if not processes.is_loopback(s[1])]
        assert not bad, f"{name} listens on non-loopback addresses: {bad}"


def test_usage_writes_only_significant_changes() -> None:
    from devcluster.runner.usage import _significant

    def spec(cpu: str, mem: str) -> dict:
        return {"usages": [{"containers": ["c"], "usage": {"cpu": {"value": cpu},
                                                           "memory": {"value": mem}}}]}

    base = spec("100m", "50000000")
    assert not _significant(base, spec("104m", "50000000"))  # < 5m
    assert not _significant(base, spec("108m", "51000000"))  # < 10 % and < 5 %
    assert _significant(base, spec("120m", "50000000"))
    assert _significant(base, spec("100m", "53000000"))
    assert not _significant(spec("0m", "1000"), spec("3m", "1000"))
    assert _significant(spec("0m", "1000"), spec("6m", "1000"))
