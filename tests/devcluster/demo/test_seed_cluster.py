"""The demo seeder against the real local control plane, checked with kubectl."""

from __future__ import annotations

import json

import pytest

from devcluster.demo.plan import demo_plan
from devcluster.demo.seed import seed_fleet
from fleet.kube import KubeClient
from tests.fixtures.cluster import wait_for

pytestmark = pytest.mark.cluster


def test_seed_creates_revisions_troubles_and_jobs_and_reruns_quickly(cluster, namespace):
    plan = demo_plan(6, stalled=1, unready=1, crashloop=1, revisions=(2, 3),
                     namespaces=(namespace,))
    client = KubeClient.from_kubeconfig(cluster.kubeconfig)
    reports = []
    stats = seed_fleet(client, plan, workers=6, progress=reports.append)
    assert not stats.failures
    assert stats.deployments_done == 6 and stats.revisions_written == plan.revision_count
    assert reports, "progress was reported"

    for d in plan.deployments:
        out = cluster.kubectl_run("rollout", "history", f"deployment/{d.name}",
                                  "-n", namespace).stdout
        revs = [line.split()[0] for line in out.splitlines() if line[:1].isdigit()]
        assert revs == [str(i + 1) for i in range(len(d.revisions))], (d.name, out)
        assert d.revisions[-1].change_cause in out

    stalled = next(d for d in plan.deployments if d.trouble == "stalled")

    def progressing_reason() -> str:
        dep = cluster.get_json("deployment", stalled.name, "-n", namespace)
        cond = next((c for c in dep["status"].get("conditions", [])
                     if c["type"] == "Progressing"), {})
        return cond.get("reason", "")

    wait_for(lambda: progressing_reason() == "ProgressDeadlineExceeded", timeout=90,
             what="the stalled rollout's progress deadline")

    crash = next(d for d in plan.deployments if d.trouble == "crashloop")
    wait_for(lambda: "CrashLoopBackOff" in cluster.kubectl_run(
        "get", "pods", "-n", namespace, "-l", f"app={crash.name}").stdout,
        timeout=90, what="a crash-looping pod")

    jobs = json.loads(cluster.kubectl_run("get", "jobs", "-n", namespace, "-o",
                                          "json").stdout)["items"]
    assert len(jobs) == len(plan.jobs)
    gpu_pending = wait_for(lambda: [p for p in cluster.get_json(
        "pods", "-n", namespace, "-l", "app.kubernetes.io/component in (training,sweep-worker)"
    )["items"] if p["status"].get("phase") == "Pending"], timeout=60,
        what="training pods Pending for lack of GPUs")
    assert gpu_pending

    again = seed_fleet(client, plan, workers=6)
    assert again.deployments_skipped == 6 and again.revisions_written == 0
    assert again.elapsed < 10
