from __future__ import annotations

from devcluster.demo import manifests
from devcluster.demo.plan import demo_plan


def test_plan_shape():
    plan = demo_plan(300)
    assert len(plan.deployments) == 300
    assert len({(d.namespace, d.name) for d in plan.deployments}) == 300
    assert len(plan.namespaces) >= 5
    assert all(2 <= len(d.revisions) <= 4 for d in plan.deployments)
    troubles = [d.trouble for d in plan.deployments if d.trouble]
    assert {"stalled", "unready", "crashloop"} <= set(troubles)
    assert any(j.gpus for j in plan.jobs) and any(not j.gpus for j in plan.jobs)
    gpus = sum(j.gpus * j.parallelism for j in plan.jobs)
    assert gpus > 8  # more than the demo cluster's 2 GPU nodes x 4: some must stay Pending


def test_plan_is_deterministic():
    assert demo_plan(50) == demo_plan(50)


def test_manifests_carry_fleet_labels_and_sim():
    plan = demo_plan(300)
    bad = next(d for d in plan.deployments if d.trouble == "crashloop")
    dep = manifests.deployment(bad, bad.revisions[0])
    labels = dep["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/component"] == "model-server"
    assert "fleet.test/sim" not in labels
    patch = manifests.revision_patch(bad, bad.revisions[-1])
    assert patch["spec"]["template"]["metadata"]["labels"]["fleet.test/sim"] == "crashloop"
    env = patch["spec"]["template"]["spec"]["containers"][0]["env"]
    assert env[0] == {"name": "MODEL_URI", "value": bad.revisions[-1].model_uri}
    ok = next(d for d in plan.deployments if not d.trouble)
    assert manifests.revision_patch(ok, ok.revisions[1])["spec"]["template"]["metadata"][
        "labels"]["fleet.test/sim"] is None


def test_gpu_jobs_request_gpus():
    plan = demo_plan(10)
    j = next(j for j in plan.jobs if j.gpus)
    res = manifests.job(j)["spec"]["template"]["spec"]["containers"][0]["resources"]
    assert res["limits"]["nvidia.com/gpu"] == str(j.gpus)
