"""Training progress and re-training schedules against the real control plane.

The trainer patches `modelfleet.io/progress` onto its own Job and the re-training pod patches
`modelfleet.io/last-promotion` onto its CronJob; here the test plays both (a merge patch, as
tuning/progress.py sends) and the watch cache must carry every change, while unlabelled Jobs
and CronJobs never reach it (the API server filters them by label).
"""

from __future__ import annotations

import json
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from fleet.cache import FleetCache
from fleet.kube import KubeClient
from fleet.model import JobState
from tests.fixtures.cluster import TestCluster, wait_for
from tests.fleet.clusterkit import fleet

pytestmark = pytest.mark.cluster
MERGE = "application/merge-patch+json"


@pytest.fixture
def client(cluster: TestCluster) -> KubeClient:
    return KubeClient.from_kubeconfig(cluster.kubeconfig)


def job(name: str, ns: str, component: str | None = "training",
        annotations: dict | None = None) -> dict:
    labels = {"app.kubernetes.io/component": component} if component else {}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": ns, "labels": labels,
                     "annotations": annotations or {}},
        "spec": {"backoffLimit": 0, "template": {
            # kwok completes the pod after this long: the job stays running for the test
            "metadata": {"annotations": {"fleet.test/complete-after": "600s"}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "t", "image": "registry.invalid/train:1"}]}}},
    }


def cronjob(name: str, ns: str, component: str | None = "retraining",
            annotations: dict | None = None) -> dict:
    labels = {"app.kubernetes.io/name": "digits"}
    if component:
        labels["app.kubernetes.io/component"] = component
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": name, "namespace": ns, "labels": labels,
                     "annotations": annotations or {}},
        "spec": {"schedule": "0 3 * * *", "timeZone": "Europe/Berlin",
                 "suspend": True,  # never fires during the test
                 "jobTemplate": {"spec": {"template": {"spec": {
                     "restartPolicy": "Never",
                     "containers": [{"name": "r", "image": "registry.invalid/retrain:1"}]}}}}},
    }


PROGRESS = {"phase": "training", "epoch": 3, "epochs": 10, "metric": "accuracy",
            "value": 0.931, "loss": 0.21, "updated": "2026-12-01T12:00:00Z"}


def test_cache_sees_progress_and_schedules_and_their_changes(cluster, namespace, client):
    cluster.apply([
        job("train", namespace, annotations={"modelfleet.io/progress": json.dumps(PROGRESS)}),
        job("unrelated", namespace, component=None),
        cronjob("retrain-digits", namespace,
                annotations={"modelfleet.io/deployment": "digits-latency"}),
        cronjob("backup", namespace, component="backup"),
    ])
    changes: list = []
    cache = FleetCache(client, [namespace])
    cache.subscribe(changes.append)
    cache.start()
    try:
        assert cache.wait_synced(30)
        (j,) = wait_for(lambda: [j for j in cache.jobs() if j.state is JobState.RUNNING],
                        timeout=60, what="the training job running (kwok pod)")
        assert j.name == "train" and j.progress.epoch_text == "3/10"
        assert j.progress.metric_text == "accuracy 0.931"
        (s,) = cache.retrain_schedules()
        assert (s.name, s.model, s.deployment_key, s.schedule, s.time_zone, s.suspended) == (
            "retrain-digits", "digits", (namespace, "digits-latency"), "0 3 * * *",
            "Europe/Berlin", True)
        assert s.next_run is None and s.last_promotion is None and s.uid

        # the trainer reports the next epoch, then fails for good
        base = f"/apis/batch/v1/namespaces/{namespace}"
        client.patch(f"{base}/jobs/train", {"metadata": {"annotations": {
            "modelfleet.io/progress": json.dumps(PROGRESS | {"epoch": 4, "value": 0.94})}}},
            MERGE)
        wait_for(lambda: any(j.progress and j.progress.epoch == 4
                             for ch in list(changes) for j in ch.jobs_upserted),
                 timeout=30, what="epoch 4 in a change batch")
        client.patch(f"{base}/jobs/train", {"metadata": {"annotations": {
            "modelfleet.io/failure": "TrainerError: dataset digits@v9 not found",
            "modelfleet.io/progress": json.dumps({"phase": "failed",
                                                  "message": "dataset missing"})}}}, MERGE)
        wait_for(lambda: cache.jobs()[0].reason == "TrainerError: dataset digits@v9 not found",
                 timeout=30, what="the failure reason")

        # the re-training pod records what it did
        promo = {"result": "promoted", "detail": "accuracy 0.962 > 0.948 (live)",
                 "job": "retrain-digits-29001", "time": "2026-12-01T03:09:00Z",
                 "model_uri": "hdfs://nn/models/digits/v4"}
        client.patch(f"{base}/cronjobs/retrain-digits", {"metadata": {"annotations": {
            "modelfleet.io/last-promotion": json.dumps(promo)}}}, MERGE)
        wait_for(lambda: any(s.last_promotion and s.last_promotion.result == "promoted"
                             for ch in list(changes) for s in ch.schedules_upserted),
                 timeout=30, what="the promotion in a change batch")
        # resumed: the next run is computed in its time zone
        client.patch(f"{base}/cronjobs/retrain-digits", {"spec": {"suspend": False}}, MERGE)
        s = wait_for(lambda: (r := cache.retrain_schedules()) and r[0].next_run and r[0],
                     timeout=30, what="a next run once resumed")
        assert s.next_run.astimezone(ZoneInfo("Europe/Berlin")).hour == 3

        # nothing unlabelled ever arrived
        names = {j.name for ch in changes for j in ch.jobs_upserted}
        names |= {s.name for ch in changes for s in ch.schedules_upserted}
        assert names == {"train", "retrain-digits"}

        cluster.kubectl_run("delete", "cronjob", "retrain-digits", "-n", namespace)
        wait_for(lambda: any((namespace, "retrain-digits") in ch.schedules_deleted
                             for ch in list(changes)), timeout=30, what="the schedule deleted")
        assert cache.retrain_schedules() == []
    finally:
        cache.stop()


def test_ls_jobs_shows_progress_and_schedules_and_survives_no_cronjob_access(
        cluster, namespace, tmp_path: Path):
    cluster.apply([
        job("train", namespace, annotations={"modelfleet.io/progress": json.dumps(PROGRESS)}),
        cronjob("retrain-digits", namespace, annotations={
            "modelfleet.io/deployment": "digits-latency",
            "modelfleet.io/last-promotion": json.dumps({"result": "kept",
                                                        "detail": "0.94 <= 0.948 (live)"})}),
    ])
    res = fleet(cluster, "ls", "--jobs", "-n", namespace)
    assert res.returncode == 0, res.stderr
    jobs, schedules = res.stdout.split("\n\n")
    header, row = jobs.splitlines()
    assert header.split()[:6] == ["NAME", "KIND", "STATE", "PHASE", "EPOCH", "METRIC"]
    assert row.split()[3:7] == ["training", "3/10", "accuracy", "0.931"]
    head, sched = schedules.splitlines()
    assert head.split()[:4] == ["NAME", "MODEL", "DEPLOYMENT", "SCHEDULE"]
    assert sched.split()[:3] == ["retrain-digits", "digits", "digits-latency"]
    assert "(Europe/Berlin)" in sched and "suspended" in sched and "kept" in sched
    docs = json.loads(fleet(cluster, "ls", "--schedules", "-n", namespace, "-o", "json").stdout)
    assert [(d["name"], d["last_promotion"]["result"]) for d in docs] == [
        ("retrain-digits", "kept")]

    # a user who may read Jobs but not CronJobs: the jobs, no schedules, no error
    cluster.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "jobs-only", "namespace": namespace},
         "rules": [
             {"apiGroups": ["apps"], "resources": ["deployments", "replicasets"],
              "verbs": ["get", "list", "watch"]},
             {"apiGroups": [""], "resources": ["pods", "events"],
              "verbs": ["get", "list", "watch"]},
             {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get", "list", "watch"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "jobs-only", "namespace": namespace},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": "jobs-only"},
         "subjects": [{"kind": "User", "name": "jobs-only",
                       "apiGroup": "rbac.authorization.k8s.io"}]},
    ])
    kc = cluster.user_kubeconfig("jobs-only", tmp_path / "jobs-only.kubeconfig")
    res = fleet(cluster, "ls", "--jobs", "-n", namespace, kubeconfig=kc)
    assert res.returncode == 0, res.stderr
    assert "train" in res.stdout and "SCHEDULE" not in res.stdout

    cache = FleetCache(KubeClient.from_kubeconfig(kc), [namespace]).start()
    try:
        assert cache.wait_synced(30)
        wait_for(lambda: [j.name for j in cache.jobs()] == ["train"], timeout=30)
        assert cache.retrain_schedules() == []
        assert any("cronjobs" in f for f in cache.forbidden())
        assert cache.connection.value == "synced"
    finally:
        cache.stop()


def test_ls_jobs_watch_prints_progress_rows_and_a_schedules_table_when_one_appears(
        cluster, namespace):
    import queue
    import signal
    import subprocess
    import sys
    import threading
    import time

    cluster.apply(job("train", namespace,
                      annotations={"modelfleet.io/progress": json.dumps(PROGRESS)}))
    proc = subprocess.Popen([sys.executable, "-m", "fleet.cli", "ls", "--jobs", "-w", "-n",
                             namespace], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=cluster.env)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True).start()

    def until_line(pred, what: str) -> list[str]:
        seen, deadline = [], time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=5)
            except queue.Empty:
                continue
            seen.append(line.rstrip("\n"))
            if pred(line.split()):
                return line.split()
        raise AssertionError(f"no {what} in {seen}")

    try:
        assert until_line(lambda c: c[:1] == ["NAME"], "header")[3:6] == [
            "PHASE", "EPOCH", "METRIC"]
        until_line(lambda c: c[:1] == ["train"] and c[4:5] == ["3/10"], "epoch 3 row")
        patch = json.dumps({"metadata": {"annotations": {
            "modelfleet.io/progress": json.dumps(PROGRESS | {"epoch": 5})}}})
        cluster.kubectl_run("patch", "job", "train", "-n", namespace, "--type=merge", "-p", patch)
        until_line(lambda c: c[:1] == ["train"] and c[4:5] == ["5/10"], "epoch 5 row")
        cluster.apply(cronjob("retrain-digits", namespace))
        until_line(lambda c: c[:3] == ["NAME", "MODEL", "DEPLOYMENT"], "schedules header")
        row = until_line(lambda c: c[:1] == ["retrain-digits"], "schedule row")
        assert "suspended" in row
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 130
