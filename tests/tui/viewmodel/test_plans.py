from __future__ import annotations

import pytest

from fleet.model import RolloutState
from tests.tui.fakes import FakeBackend, deployment
from tui.viewmodel.plans import (
    bulk_rollback_plan,
    pause_plan,
    rollback_plan,
    rollout_plan,
    scale_plan,
    template_diff,
    template_yaml,
    undo_plan,
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


def test_template_diff_colours_added_removed_and_hunk_lines():
    d = deployment(2, revision=3)
    h = _history(d)
    styles = {}
    for line in template_diff(h[2], h[1]).split("\n"):
        styles.setdefault(line.plain[:3], {str(span.style) for span in line.spans})
    assert styles["---"] == set() and styles["+++"] == set()
    assert styles["@@ "] == {"cyan"}
    removed = next(k for k in styles if k.startswith("-") and k != "---")
    added = next(k for k in styles if k.startswith("+") and k != "+++")
    assert styles[removed] == {"red"} and styles[added] == {"green"}


def test_rollback_plan_of_a_paused_deployment_says_it_will_be_refused():
    d = deployment(2, revision=3, paused=True)
    text = "\n".join(str(line) for line in rollback_plan(d, _history(d)).lines)
    assert "the deployment is paused: the rollback will be refused" in text
    d = deployment(2, revision=3)
    text = "\n".join(str(line) for line in rollback_plan(d, _history(d)).lines)
    assert "paused" not in text


def test_undo_plan_lists_each_rollout_or_says_there_is_none():
    from types import SimpleNamespace

    c = SimpleNamespace(namespace="team-a", name="m", revision=3, previous_revision=2,
                        change_cause="bump")
    plan = undo_plan([c], "15m")
    assert plan.title == "Undo 1 rollout from the last 15m?" and plan.targets == [("team-a", "m")]
    assert [str(line) for line in plan.lines] == ["team-a/m  revision 3 → 2  (bump)"]
    empty = undo_plan([], "15m")
    assert empty.targets == [] and [str(line) for line in empty.lines] == [
        "no rollouts in the last 15m"]


def test_rollback_plan_without_a_generation_asks_for_no_precondition():
    d = deployment(2, revision=3)
    assert rollback_plan(d, _history(d)).params == {"to_revision": 2, "generation": 0}


def test_rollout_plan_lines_version_and_change_cause():
    d = deployment(1)  # version v2, revision 2
    plan = rollout_plan(d, d.model_uri, d.image, "canary v3", version="v3")
    assert plan.params == {"version": "v3", "reason": "canary v3"}
    lines = [str(line) for line in plan.lines]
    assert lines[1:] == ["  version label  v2 → v3",
                         "  change-cause   'canary v3'; creates revision 3"]
    with pytest.raises(ValueError, match="nothing to roll out"):
        rollout_plan(d, d.model_uri, d.image, "", version=d.version)
    plan = rollout_plan(d, "hdfs://nn/models/x/v9", "", "")
    assert str(plan.lines[-1]) == "  change-cause   'fleet rollout'; creates revision 3"
