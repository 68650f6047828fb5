from __future__ import annotations

import pytest

from fleet.model import ProbeHealth, RolloutState
from tests.tui.fakes import deployment
from tui.viewmodel.filtering import (
    RowFilter,
    SelectorError,
    fuzzy_match,
    is_problem,
    parse_selector,
)


def test_fuzzy_match_is_an_ordered_subsequence():
    assert fuzzy_match("brt", "bert-ranker")
    assert fuzzy_match("BERT", "bert-ranker")
    assert not fuzzy_match("trb", "bert-ranker")


@pytest.mark.parametrize(("selector", "labels", "ok"), [
    ("team=team-a", {"team": "team-a"}, True),
    ("team==team-a", {"team": "team-b"}, False),
    ("tier!=canary", {"tier": "prod"}, True),
    ("tier!=canary", {}, True),
    ("tier", {"tier": "x"}, True),
    ("!tier", {"tier": "x"}, False),
    ("tier in (prod, canary),team", {"tier": "prod", "team": "a"}, True),
    ("tier notin (prod)", {"tier": "prod"}, False),
])
def test_label_selectors(selector, labels, ok):
    assert all(req(labels) for req in parse_selector(selector)) is ok


def test_bad_selector_raises():
    with pytest.raises(SelectorError):
        parse_selector("a b c")


def test_row_filter_combines_words_and_selector():
    flt = RowFilter.parse("0001 -l tier=prod")
    assert flt.words == ("0001",) and flt.selector == "tier=prod"
    assert flt.matches(deployment(1))  # i=1 -> prod
    assert not flt.matches(deployment(2))
    assert RowFilter.parse("-ltier=canary").matches(deployment(2))


def test_namespace_is_searchable():
    assert RowFilter.parse("team-b/0001").matches(deployment(1, ns="team-b"))


def test_problems():
    assert is_problem(deployment(1, rollout_state=RolloutState.STALLED))
    assert is_problem(deployment(1, probe_health=ProbeHealth.CRASHLOOP))
    assert not is_problem(deployment(1))
    flt = RowFilter.parse("", problems_only=True)
    assert not flt.matches(deployment(1))
