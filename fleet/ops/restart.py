"""`kubectl rollout restart | pause | resume`: strategic-merge patches, kubectl's checks."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fleet.errors import DeploymentPaused, FleetError, PreconditionFailed
from fleet.kube import STRATEGIC_PATCH, deployment_path
from fleet.model import OpResult
from fleet.ops._common import get_deployment, ref, rfc3339_local

if TYPE_CHECKING:
    from fleet.api_client import Patcher

RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
FIELD_MANAGER = {"fieldManager": "kubectl-rollout"}


def _patch(client: Patcher, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
    return client.patch(deployment_path(namespace, name), body, STRATEGIC_PATCH, FIELD_MANAGER)


def _rv(obj: dict[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion", "")


def restart(client: Patcher, namespace: str, name: str, *, now: datetime | None = None) -> OpResult:
    """Set the template's restartedAt annotation to the local time (RFC 3339, seconds)."""
    dep = get_deployment(client, namespace, name)
    if (dep.get("spec") or {}).get("paused"):
        raise DeploymentPaused(
            f'deployments.apps "{name}" can\'t restart paused deployment (run rollout resume first)'
        )
    stamp = rfc3339_local(now)
    tmeta = ((dep.get("spec") or {}).get("template") or {}).get("metadata") or {}
    if (tmeta.get("annotations") or {}).get(RESTARTED_AT) == stamp:
        raise FleetError(
            f"failed to create patch for {name}: if restart has already been triggered within "
            "the past second, please wait before attempting to trigger another"
        )
    body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    out = _patch(client, namespace, name, body)
    return OpResult(namespace, name, f"{ref(name)} restarted", True, resource_version=_rv(out))


def pause(client: Patcher, namespace: str, name: str) -> OpResult:
    dep = get_deployment(client, namespace, name)
    if (dep.get("spec") or {}).get("paused"):
        raise DeploymentPaused(f'deployments.apps "{name}" is already paused')
    out = _patch(client, namespace, name, {"spec": {"paused": True}})
    return OpResult(namespace, name, f"{ref(name)} paused", True, resource_version=_rv(out))


def resume(client: Patcher, namespace: str, name: str) -> OpResult:
    dep = get_deployment(client, namespace, name)
    if not (dep.get("spec") or {}).get("paused"):
        raise PreconditionFailed(f'deployments.apps "{name}" is not paused')
    out = _patch(client, namespace, name, {"spec": {"paused": None}})
    return OpResult(namespace, name, f"{ref(name)} resumed", True, resource_version=_rv(out))
