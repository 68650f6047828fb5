"""fleet against the real control plane: watch cache across an apiserver restart and a forced
410, RBAC view-only users, a raced rollback, probes on simulated pods, the undo wave."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest

from fleet.cache import FleetCache
from fleet.errors import Conflict, Forbidden
from fleet.kube import KubeClient
from fleet.model import ConnectionState, ProbeHealth
from fleet.ops import access, bulk, probes, restart, rollback, rollout, scale
from tests.fixtures.cluster import TestCluster, wait_for
from tests.fleet.clusterkit import fleet, kubectl, model_deployment, settled, with_history

pytestmark = pytest.mark.cluster


@pytest.fixture
def client(cluster: TestCluster) -> KubeClient:
    return KubeClient.from_kubeconfig(cluster.kubeconfig)


def _view(cache: FleetCache) -> set[tuple]:
    return {(d.namespace, d.name, d.desired, d.revision, d.image) for d in cache.deployments()}


def _fresh(client: KubeClient, ns: str) -> set[tuple]:
    return _view(FleetCache(client, [ns]).load_once())


def test_cache_survives_apiserver_restart_without_losing_updates(cluster, namespace, client):
    for i in range(3):
        cluster.apply(model_deployment(f"m{i}", namespace))
    changes = []
    cache = FleetCache(client, [namespace])
    cache.subscribe(changes.append)
    cache.start()
    try:
        assert cache.wait_synced(30)
        wait_for(lambda: len(cache.deployments()) == 3, what="3 deployments cached")
        cluster.stop_apiserver()
        wait_for(lambda: cache.connection is ConnectionState.RECONNECTING, timeout=30,
                 what="cache notices the apiserver is gone")
        cluster.start_apiserver()
        # Writes right after the restart, racing the cache's reconnect.
        cluster.kubectl_run("scale", "-n", namespace, "deployment/m0", "--replicas=4")
        cluster.kubectl_run("delete", "-n", namespace, "deployment/m1")
        cluster.apply(model_deployment("m3", namespace))
        cluster.kubectl_run("set", "image", "-n", namespace, "deployment/m2", "server=x/y:9")
        wait_for(lambda: cache.connection is ConnectionState.SYNCED, timeout=60,
                 what="cache reconnected")
        wait_for(lambda: _view(cache) == _fresh(client, namespace), timeout=30,
                 what="cache converges to a fresh LIST")
        names = {d.name for d in cache.deployments()}
        assert names == {"m0", "m2", "m3"}
        assert any(c.connection is ConnectionState.RECONNECTING for c in changes)
        assert any((namespace, "m1") in c.deployments_deleted for c in changes)
    finally:
        cache.stop()


def test_forced_410_relists_and_converges(cluster, namespace, client):
    cluster.apply(model_deployment("m0", namespace))
    cache = FleetCache(client, [namespace]).start()
    try:
        assert cache.wait_synced(30)
        wait_for(lambda: len(cache.deployments()) == 1)
        before = cache.relist_count("deployments")
        # The next watch resumes from a resourceVersion far older than the watch cache
        # window: the server answers 410 Gone and the reflector must relist.
        cache.expire_watch("deployments")
        cluster.kubectl_run("scale", "-n", namespace, "deployment/m0", "--replicas=5")
        wait_for(lambda: cache.relist_count("deployments") > before, timeout=30,
                 what="relist after 410 Gone")
        wait_for(lambda: cache.deployments()[0].desired == 5, timeout=30)
        assert _view(cache) == _fresh(client, namespace)
    finally:
        cache.stop()


def test_cache_projects_probe_health_of_simulated_pods(cluster, namespace, client):
    cluster.apply(model_deployment("ok", namespace))
    cluster.apply(model_deployment("unready", namespace, sim="unready"))
    cluster.apply(model_deployment("crash", namespace, sim="crashloop", replicas=1))
    cache = FleetCache(client, [namespace]).start()
    try:
        assert cache.wait_synced(30)

        def health():
            return {d.name: d.probe_health for d in cache.deployments()}

        wait_for(lambda: health() == {"ok": ProbeHealth.OK, "unready": ProbeHealth.UNREADY,
                                      "crash": ProbeHealth.CRASHLOOP}, timeout=90,
                 what="probe health per deployment")
        pod = cache.pods_for(namespace, "unready")[0]
        cache.watch_events(namespace)  # Events are watched for what is on screen only
        wait_for(lambda: any(e.reason == "Unhealthy"
                             for e in cache.events_for(namespace, pod.name)), timeout=60)
    finally:
        cache.stop()


def test_probe_inspection_matches_kubectl_describe(cluster, namespace, client):
    cluster.apply(model_deployment("unready", namespace, sim="unready"))
    cluster.apply(model_deployment("crash", namespace, sim="crashloop", replicas=1))
    report = wait_for(lambda: (r := probes.inspect(client, namespace, "unready")).events and r,
                      timeout=90, what="Unhealthy events")
    assert report.health is ProbeHealth.UNREADY
    assert all(p.phase == "Running" and not p.ready for p in report.pods)
    assert report.events[0].message.startswith("Readiness probe failed")
    stamps = [e.last_seen for e in report.events]
    assert stamps == sorted(stamps, reverse=True)
    describe = kubectl(cluster, "describe", "pod", report.pods[0].name, "-n", namespace).stdout
    for spec in report.probes:
        label = {"liveness": "Liveness:", "readiness": "Readiness:"}[spec.kind]
        line = next(ln for ln in describe.splitlines() if ln.strip().startswith(label))
        assert line.split(label, 1)[1].strip() == spec.describe
    out = fleet(cluster, "probes", "unready", "-n", namespace)
    assert out.returncode == 0, out.stderr
    assert "probe health: unready" in out.stdout and "Readiness probe failed" in out.stdout
    assert any(spec.describe in out.stdout for spec in report.probes)
    crash = wait_for(lambda: (r := probes.inspect(client, namespace, "crash")).health
                     is ProbeHealth.CRASHLOOP and any(e.reason == "BackOff" for e in r.events)
                     and r, timeout=90, what="CrashLoopBackOff with a BackOff event")
    c = crash.pods[0].containers[0]
    assert c.state_reason == "CrashLoopBackOff" and c.restart_count >= 1
    backoff = [e for e in crash.events if e.reason == "BackOff"]
    assert backoff and all(e.involved_name == crash.pods[0].name for e in backoff)


def test_view_only_user_gets_forbidden_and_nothing_changes(cluster, namespace, tmp_path: Path):
    with_history(cluster, namespace, "m", revisions=2)
    cluster.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "viewer", "namespace": namespace},
         "rules": [{"apiGroups": ["", "apps"],
                    "resources": ["deployments", "replicasets", "pods", "events",
                                  "deployments/scale"],
                    "verbs": ["get", "list", "watch"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "viewer", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
         "subjects": [{"kind": "User", "name": "viewer", "apiGroup": "rbac.authorization.k8s.io"}]},
    ])
    kc = cluster.user_kubeconfig("viewer", tmp_path / "viewer.kubeconfig")
    viewer = KubeClient.from_kubeconfig(kc)
    before = cluster.get_json("deployment", "m", "-n", namespace)
    assert access.can_i(viewer, "patch", "deployments", namespace)[0] is False
    assert access.can_i(viewer, "get", "deployments", namespace)[0]
    for op in (lambda: rollback.rollback(viewer, namespace, "m"),
               lambda: scale.scale(viewer, namespace, "m", 5),
               lambda: restart.restart(viewer, namespace, "m"),
               lambda: restart.pause(viewer, namespace, "m"),
               lambda: rollout.rollout(viewer, namespace, "m", image="x/y:2")):
        with pytest.raises(Forbidden, match='User "viewer" cannot patch resource "deployments'):
            op()
    f = fleet(cluster, "rollback", "m", "-n", namespace, kubeconfig=kc)
    k = cluster.kubectl_run("rollout", "undo", "deployment/m", "-n", namespace, check=False,
                            kubeconfig=kc)
    assert (f.returncode, f.stdout, f.stderr) == (k.returncode, k.stdout, k.stderr)
    after = cluster.get_json("deployment", "m", "-n", namespace)
    assert after["metadata"]["generation"] == before["metadata"]["generation"]
    assert after["spec"] == before["spec"]


def test_rollback_raced_by_another_writer_is_reported(cluster, namespace, client):
    with_history(cluster, namespace, "m", revisions=3)
    real_patch = client.patch
    raced = threading.Event()

    def patch_after_someone_else(path, body, content_type, query=None):
        if not raced.is_set():
            raced.set()
            cluster.kubectl_run("set", "image", "-n", namespace, "deployment/m",
                                "server=registry.invalid/hotfix:7")
        return real_patch(path, body, content_type, query)

    client.patch = patch_after_someone_else  # the other writer lands between our GET and PATCH
    with pytest.raises(Conflict) as info:
        rollback.rollback(client, namespace, "m")
    assert "was changed by kubectl-set" in info.value.message
    assert "nothing was rolled back" in info.value.message
    d = cluster.get_json("deployment", "m", "-n", namespace)
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.invalid/hotfix:7"


def test_undo_wave_rolls_back_recent_rollouts_only(cluster, namespace, client):
    for name in ("a", "b", "c"):
        cluster.apply(model_deployment(name, namespace))
    for name in ("a", "b", "c"):
        settled(cluster, namespace, name)
    for name in ("a", "b"):
        cluster.kubectl_run("set", "image", "-n", namespace, f"deployment/{name}",
                            "server=registry.invalid/serve:bad")
    for name in ("a", "b"):
        settled(cluster, namespace, name)  # the controller has recorded revision 2
    cands = bulk.undo_wave_candidates(client, timedelta(minutes=10), [namespace])
    assert sorted((c.name, c.revision, c.previous_revision) for c in cands) == [
        ("a", 2, 1), ("b", 2, 1)]
    res = fleet(cluster, "undo-wave", "--since", "10m", "--yes", "-n", namespace)
    assert res.returncode == 0, res.stderr
    assert "deployment.apps/a rolled back" in res.stdout
    assert "deployment.apps/b rolled back" in res.stdout
    for name in ("a", "b"):
        d = settled(cluster, namespace, name)
        assert d["spec"]["template"]["spec"]["containers"][0]["image"].endswith("serve:1")


def test_ls_shows_model_deployments_and_training_jobs(cluster, namespace):
    import json

    cluster.apply(model_deployment("m", namespace))
    other = model_deployment("web", namespace)
    other["metadata"]["labels"]["app.kubernetes.io/component"] = "frontend"
    other["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"] = "frontend"
    cluster.apply(other)
    cluster.apply({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "train", "namespace": namespace,
                     "labels": {"app.kubernetes.io/component": "training"}},
        "spec": {"parallelism": 1, "completions": 1, "template": {
            "metadata": {"annotations": {"fleet.test/complete-after": "600s"}},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "t", "image": "registry.invalid/train:1",
                "resources": {"limits": {"nvidia.com/gpu": "2"}}}]}}},
    })
    settled(cluster, namespace, "m")
    res = fleet(cluster, "ls", "-n", namespace, "-o", "json")
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout)
    assert [(r["name"], r["model"], r["desired"], r["probe_health"]) for r in rows] == [
        ("m", "m", 2, "ok")]
    table = fleet(cluster, "ls", "-n", namespace).stdout.splitlines()
    assert table[0].split()[:3] == ["NAME", "MODEL", "VERSION"] and table[1].split()[0] == "m"
    jobs = json.loads(fleet(cluster, "ls", "--jobs", "-n", namespace, "-o", "json").stdout)
    assert [(j["name"], j["kind"], j["gpus"]) for j in jobs] == [("train", "training", 2)]


def test_ls_watch_prints_a_row_per_change(cluster, namespace):
    import queue
    import signal
    import subprocess
    import sys

    cluster.apply(model_deployment("m", namespace))
    settled(cluster, namespace, "m")
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", "ls", "-w", "-n", namespace],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cluster.env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()
    try:
        assert lines.get(timeout=60).split()[:2] == ["NAME", "MODEL"]
        assert lines.get(timeout=30).split()[4] == "2/2"
        cluster.kubectl_run("scale", "-n", namespace, "deployment/m", "--replicas=3")
        seen = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            seen.append(lines.get(timeout=60).split())
            if seen[-1][4] == "3/3" and seen[-1][7] == "complete":
                break
        else:
            raise AssertionError(f"no 3/3 complete row in {seen}")
        cluster.kubectl_run("delete", "-n", namespace, "deployment/m")
        while (row := lines.get(timeout=60).split())[7] != "deleted":
            pass
        assert row[0] == "m"
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
