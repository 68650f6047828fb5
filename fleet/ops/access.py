"""RBAC checks through SelfSubjectAccessReview (what `kubectl auth can-i` does)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleet.api_client import Poster

SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


def can_i(
    client: Poster,
    verb: str,
    resource: str,
    namespace: str,
    *,
    group: str = "apps",
    subresource: str | None = None,
    name: str | None = None,
) -> tuple[bool, str]:
    """(allowed, reason) for the client's own user."""
    attrs: dict[str, Any] = {"namespace": namespace, "verb": verb, "group": group,
                             "resource": resource}
    if subresource:
        attrs["subresource"] = subresource
    if name:
        attrs["name"] = name
    body = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attrs},
    }
    status = client.post(SSAR_PATH, body).get("status") or {}
    allowed = bool(status.get("allowed")) and not status.get("denied")
    reason = status.get("reason") or status.get("evaluationError") or ""
    return allowed, reason
