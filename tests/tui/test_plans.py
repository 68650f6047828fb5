from __future__ import annotations

import pytest

from fleet.model import RolloutState
from tests.tui.fakes import FakeBackend, deployment
from tui.plans import (
    bulk_rollback_plan,
    pause_plan,
    rollback_plan,
    rollout_plan,
    scale_plan,
    template_diff,
    template_yaml,
)


def _history(d, **fake):
    fb = FakeBackend([d])
    for k, v in fake.items():
        setattr(fb, k, v)
    return fb.history(d.namespace, d.name)[1]


def test_rollback_plan_targets_previous_revision_and_shows_diff():
    d = deployment(2, revision=3, rollout_state=RolloutState.STALLED)
    plan = rollback_plan(d, _history(d))
    assert plan.params["to_revision"] == 2
    text = "\n".join(str(line) for line in plan.lines)
    assert "revision 3" in text and "revision 2" in text
    assert "-      value: hdfs://nn/models/model-2/v3" in text
    assert "+      value: hdfs://nn/models/model-2/v2" in text


def test_rollback_to_chosen_and_missing_revision():
    d = deployment(2, revision=3)
    assert rollback_plan(d, _history(d), 1).params["to_revision"] == 1
    with pytest.raises(ValueError, match="revision 9"):
        rollback_plan(d, _history(d), 9)
    with pytest.raises(ValueError, match="no rollout history"):
        one = deployment(3, revision=1)
        rollback_plan(one, _history(one))


def test_identical_templates_say_so():
    d = deployment(2, revision=2)
    h = _history(d)
    assert "identical" in template_diff(h[0], h[0]).plain


def test_scale_plan_lists_each_change():
    plan = scale_plan([deployment(1, desired=2), deployment(2, desired=5)], 5)
    lines = [str(x) for x in plan.lines]
    assert "replicas 2 → 5" in lines[0]
    assert "(unchanged)" in lines[1]
    assert plan.params["current"][("team-a", "model-0001")] == 2


def test_pause_and_rollout_plans():
    assert "spec.paused false → true" in str(pause_plan([deployment(1)], True).lines[0])
    d = deployment(1)
    plan = rollout_plan(d, "hdfs://nn/models/x/v9", d.image, "")
    assert plan.params == {"model_uri": "hdfs://nn/models/x/v9", "reason": None}
    with pytest.raises(ValueError):
        rollout_plan(d, d.model_uri, d.image, "")


def test_rollback_plan_carries_the_generation_it_was_read_at():
    d = deployment(2, revision=3)
    plan = rollback_plan(d, _history(d), 0, generation=17)
    assert plan.params == {"to_revision": 2, "generation": 17}


def test_template_diff_ignores_pod_template_hash():
    d = deployment(2, revision=3)
    h = _history(d)
    assert "pod-template-hash" not in template_yaml({"metadata": {"labels": {
        "pod-template-hash": "abc", "app": "x"}}})
    assert "pod-template-hash" not in template_diff(h[0], h[2]).plain
    assert "app.kubernetes.io/version: v3" in template_diff(h[0], h[2]).plain


def test_template_yaml_is_block_style_with_sorted_keys():
    # the API's key order differs between objects; sorted keys keep a diff to what changed
    text = template_yaml({"spec": {"containers": [{"name": "s", "image": "i:1"}]},
                          "metadata": {"labels": {"b": "2", "a": "1"}}})
    assert text == ("metadata:\n  labels:\n    a: '1'\n    b: '2'\nspec:\n  containers:\n"
                    "  - image: i:1\n    name: s\n")


def test_sidecar_first_shows_the_serving_image_like_fleet_history():
    d = deployment(2, revision=2, image="registry.local/serving:2")
    h = _history(d, sidecars={d.key})
    assert h[0].template["spec"]["containers"][0]["image"] == "istio/proxyv2:1.24"
    assert [r.image for r in h] == ["registry.local/serving:2"] * 2


def test_bulk_rollback_names_each_target_and_carries_generations():
    a, b, c = deployment(1, revision=3), deployment(2, revision=2), deployment(3, revision=1)
    fb = FakeBackend([a, b, c])
    fb.generations = {a.key: 7, b.key: 9}
    histories = {d.key: fb.history(*d.key) for d in (a, b, c)}
    histories[("team-a", "model-0004")] = RuntimeError("boom")
    d4 = deployment(4, revision=2)
    plan = bulk_rollback_plan([a, b, c, d4], histories)
    assert plan.targets == [a.key, b.key]
    assert plan.params["to_revision"] == {a.key: 2, b.key: 1}
    assert plan.params["generation"] == {a.key: 7, b.key: 9}
    lines = [str(x) for x in plan.lines]
    assert "revision 3" in lines[0] and "→ revision 2" in lines[0]
    assert "→ revision 1" in lines[1]
    assert "skipped" in lines[2] and "no rollout history" in lines[2]
    assert "skipped" in lines[3] and "boom" in lines[3]
    assert plan.title.startswith("Roll back 2 deployments")
