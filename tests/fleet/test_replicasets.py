"""kubectl `rollout undo` target choice, equalIgnoreHash and annotation computation."""

from __future__ import annotations

import copy

import pytest

from fleet import replicasets
from fleet.errors import NoRolloutHistory, RevisionNotFound
from tests.fleet.objects import deployment, history_set, replicaset, template


def test_owned_filters_by_controller_uid_and_sorts_by_creation_then_name():
    dep, rss = history_set()
    stranger = replicaset("other-x", 9, template(), created="2026-11-27T00:00:00Z",
                          owner_uid="someone-else")
    tie = replicaset("resnet-000", 0, template(), created="2026-11-27T01:05:00Z")
    owned = replicasets.owned_replicasets(dep, [rss[2], stranger, rss[1], tie, rss[0]])
    assert [replicasets.meta(r)["name"] for r in owned] == [
        "resnet-aaa1", "resnet-000", "resnet-bbb2", "resnet-ccc3"]


def test_default_target_is_second_highest_revision_not_current_minus_one():
    dep, rss = history_set()
    # Revision 2 was rolled back to and re-numbered 4: history is 1, 3, 4 (current = 4).
    rss[1]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "4"
    dep["spec"]["template"] = copy.deepcopy(rss[1]["spec"]["template"])
    target = replicasets.rollback_target(dep, replicasets.owned_replicasets(dep, rss))
    assert replicasets.revision_of(target) == 3


def test_target_to_revision_and_missing_revision_messages():
    dep, rss = history_set()
    owned = replicasets.owned_replicasets(dep, rss)
    assert replicasets.meta(replicasets.rollback_target(dep, owned, 1))["name"] == "resnet-aaa1"
    with pytest.raises(RevisionNotFound, match=r"^unable to find specified revision 7 in history$"):
        replicasets.rollback_target(dep, owned, 7)
    with pytest.raises(RevisionNotFound, match="revision -1"):
        replicasets.rollback_target(dep, owned, -1)


def test_single_revision_has_no_history():
    dep, rss = history_set()
    owned = replicasets.owned_replicasets(dep, rss[2:])
    msg = r'^no rollout history found for deployment "resnet"$'
    with pytest.raises(NoRolloutHistory, match=msg):
        replicasets.rollback_target(dep, owned)


def test_unparsable_revision_is_skipped_missing_counts_as_zero():
    dep, rss = history_set()
    rss[1]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "abc"
    del rss[0]["metadata"]["annotations"]["deployment.kubernetes.io/revision"]
    owned = replicasets.owned_replicasets(dep, rss)
    assert replicasets.revision_of(rss[0]) == 0 and replicasets.revision_of(rss[1]) is None
    assert replicasets.meta(replicasets.rollback_target(dep, owned))["name"] == "resnet-aaa1"


def test_equal_ignore_hash_drops_hash_and_treats_empty_as_nil():
    dep, rss = history_set()
    assert replicasets.equal_ignore_hash(rss[2]["spec"]["template"], dep["spec"]["template"])
    assert not replicasets.equal_ignore_hash(rss[1]["spec"]["template"], dep["spec"]["template"])
    t = copy.deepcopy(dep["spec"]["template"])
    t["metadata"]["annotations"] = {}
    t["spec"]["containers"][0]["args"] = []
    assert replicasets.equal_ignore_hash(t, rss[2]["spec"]["template"])
    t["metadata"]["annotations"] = {"a": "b"}
    assert not replicasets.equal_ignore_hash(t, rss[2]["spec"]["template"])


def test_new_replicaset_is_oldest_matching_and_goes_last_in_iteration():
    dep, rss = history_set()
    dup = replicaset("resnet-ddd4", 5, dep["spec"]["template"], created="2026-11-27T02:00:00Z")
    owned = replicasets.owned_replicasets(dep, rss + [dup])
    assert replicasets.meta(replicasets.find_new_replicaset(dep, owned))["name"] == "resnet-ccc3"
    order = [replicasets.meta(r)["name"] for r in replicasets.all_replicasets(dep, owned)]
    assert order == ["resnet-aaa1", "resnet-bbb2", "resnet-ddd4", "resnet-ccc3"]


def test_rollback_annotations_keep_skip_keys_from_deployment_rest_from_rs():
    dep, rss = history_set()
    ann = replicasets.rollback_annotations(dep, rss[0])
    assert ann == {
        "kubectl.kubernetes.io/last-applied-configuration": "{}",
        "deployment.kubernetes.io/revision": "3",
        "kubernetes.io/change-cause": "initial",
    }
    assert "dep-only" not in ann  # Deployment annotations on neither side are dropped


def test_rollback_patch_shape_and_precondition():
    dep, rss = history_set()
    ops = replicasets.rollback_patch(dep, rss[1], resource_version="1234")
    assert ops[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "1234"}
    assert [o["path"] for o in ops[1:]] == ["/spec/template", "/metadata/annotations"]
    assert "pod-template-hash" not in ops[1]["value"]["metadata"]["labels"]
    assert "pod-template-hash" in rss[1]["spec"]["template"]["metadata"]["labels"]  # not mutated
    assert replicasets.rollback_patch(dep, rss[1])[0]["op"] == "replace"


def test_selector_query_renders_match_labels_and_expressions():
    sel = {"matchLabels": {"b": "2", "a": "1"},
           "matchExpressions": [{"key": "tier", "operator": "In", "values": ["y", "x"]},
                                {"key": "gone", "operator": "DoesNotExist"},
                                {"key": "has", "operator": "Exists"}]}
    assert replicasets.selector_to_query(sel) == "a=1,b=2,tier in (x,y),!gone,has"
    assert replicasets.selector_to_query(deployment()["spec"]["selector"]) == "app=m"
