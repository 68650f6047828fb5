"""`fleet.ops.access.can_i` (what `kubectl auth can-i` asks) against the in-memory API: the
SelfSubjectAccessReview it sends and how it reads the review's status."""

from __future__ import annotations

import pytest

from fleet import errors
from fleet.ops import access
from tests.fleet.fakeapi import FakeApi


def _api(status: dict | None) -> FakeApi:
    api = FakeApi()
    if status is None:
        api.review_status = lambda attrs: None
    else:
        api.review_status = lambda attrs: dict(status)
    return api


def test_review_body_names_only_the_attributes_given():
    api = FakeApi()
    assert access.can_i(api, "list", "deployments", "team-a") == (True, "")
    assert api.calls == [("POST", access.SSAR_PATH)]
    assert api.reviews == [{
        "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": {"namespace": "team-a", "verb": "list", "group": "apps",
                                        "resource": "deployments"}}}]


def test_review_body_carries_subresource_name_and_group():
    api = FakeApi()
    access.can_i(api, "patch", "deployments", "team-a", subresource="scale", name="resnet")
    access.can_i(api, "create", "pods", "team-a", group="", subresource="portforward")
    assert [r["spec"]["resourceAttributes"] for r in api.reviews] == [
        {"namespace": "team-a", "verb": "patch", "group": "apps", "resource": "deployments",
         "subresource": "scale", "name": "resnet"},
        {"namespace": "team-a", "verb": "create", "group": "", "resource": "pods",
         "subresource": "portforward"}]


def test_allowed_is_true_only_when_the_review_allows():
    assert access.can_i(_api({"allowed": True}), "get", "deployments", "ns1") == (True, "")
    reason = 'RBAC: allowed by RoleBinding "edit/team-a" of ClusterRole "edit" to User "alice"'
    assert access.can_i(_api({"allowed": True, "reason": reason}), "get", "deployments",
                        "ns1") == (True, reason)


def test_no_opinion_is_not_allowed():
    # allowed false, denied false: no authorizer had an opinion, so the request would be denied
    assert access.can_i(_api({"allowed": False}), "get", "deployments", "ns1") == (False, "")
    assert access.can_i(_api({}), "get", "deployments", "ns1") == (False, "")
    assert access.can_i(_api(None), "get", "deployments", "ns1") == (False, "")


def test_denied_with_its_reason():
    status = {"allowed": False, "denied": True, "reason": "denied by the team-a webhook"}
    assert access.can_i(_api(status), "delete", "deployments", "ns1") == (
        False, "denied by the team-a webhook")
    # an explicit denial wins over a contradictory allowed (the API never sends both)
    assert access.can_i(_api({"allowed": True, "denied": True}), "delete", "deployments",
                        "ns1") == (False, "")


def test_evaluation_error_is_the_reason_when_there_is_none():
    status = {"allowed": False, "evaluationError": "webhook authorizer unreachable"}
    assert access.can_i(_api(status), "list", "deployments", "ns1") == (
        False, "webhook authorizer unreachable")
    both = {**status, "reason": "no RBAC policy matched"}
    assert access.can_i(_api(both), "list", "deployments", "ns1") == (
        False, "no RBAC policy matched")


def test_a_failed_review_raises_for_the_caller_to_report():
    api = FakeApi()

    def refuse(attrs):
        raise errors.Forbidden("selfsubjectaccessreviews.authorization.k8s.io is forbidden",
                               status=403, reason="Forbidden")

    api.review_status = refuse
    with pytest.raises(errors.Forbidden):
        access.can_i(api, "list", "deployments", "ns1")
