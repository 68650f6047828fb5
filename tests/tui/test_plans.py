from __future__ import annotations

import pytest

from fleet.model import RolloutState
from tests.tui.fakes import FakeBackend, deployment
from tui.plans import pause_plan, rollback_plan, rollout_plan, scale_plan, template_diff
from tui.revisions import load_revisions


def _history(d):
    return load_revisions(FakeBackend([d]), d.namespace, d.name)[1]


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
