"""`kubectl rollout status` for a Deployment: the same conditions and messages, optional watch."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fleet import replicasets
from fleet.derive import condition
from fleet.errors import FleetError, Gone, NotFound, Timeout
from fleet.kube import collection_path
from fleet.model import StatusResult
from fleet.ops._common import get_deployment

if TYPE_CHECKING:
    from fleet.api_client import RolloutWatcher


class DeadlineExceeded(FleetError):
    """The Deployment's Progressing condition says ProgressDeadlineExceeded."""


def status_message(dep: dict[str, Any], revision: int = 0) -> tuple[str, bool]:
    """(message, done) for one observation (kubectl `DeploymentStatusViewer.Status`)."""
    md, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    name = md.get("name", "")
    if revision > 0:
        running = replicasets.revision_of(dep)
        if running != revision:
            raise FleetError(
                f"desired revision ({revision}) is different from the running revision ({running})"
            )
    if int(md.get("generation") or 0) <= int(status.get("observedGeneration") or 0):
        cond = condition(status, "Progressing")
        if cond and cond.get("reason") == "ProgressDeadlineExceeded":
            raise DeadlineExceeded(f'deployment "{name}" exceeded its progress deadline')
        replicas = spec.get("replicas")
        updated = int(status.get("updatedReplicas") or 0)
        total = int(status.get("replicas") or 0)
        available = int(status.get("availableReplicas") or 0)
        if replicas is not None and updated < int(replicas):
            return (
                f'Waiting for deployment "{name}" rollout to finish: {updated} out of {replicas} '
                "new replicas have been updated...",
                False,
            )
        if total > updated:
            return (
                f'Waiting for deployment "{name}" rollout to finish: {total - updated} old '
                "replicas are pending termination...",
                False,
            )
        if available < updated:
            return (
                f'Waiting for deployment "{name}" rollout to finish: {available} of {updated} '
                "updated replicas are available...",
                False,
            )
        return f'deployment "{name}" successfully rolled out', True
    return "Waiting for deployment spec update to be observed...", False


def rollout_status(
    client: RolloutWatcher,
    namespace: str,
    name: str,
    *,
    watch: bool = False,
    timeout: float | None = None,
    revision: int = 0,
    on_message: Callable[[str], None] | None = None,
) -> StatusResult:
    """Print-once (watch=False) or follow until done; every observation's message is recorded.

    Raises `Timeout` ("timed out waiting for the condition"), `DeadlineExceeded`, or `NotFound`
    ("object has been deleted") like kubectl.
    """
    messages: list[str] = []

    def emit(dep: dict[str, Any]) -> bool:
        msg, done = status_message(dep, revision)
        messages.append(msg)
        if on_message:
            on_message(msg)
        return done

    dep = get_deployment(client, namespace, name)
    done = emit(dep)
    if done or not watch:
        return StatusResult(namespace, name, tuple(messages), done=done)
    deadline = None if not timeout else time.monotonic() + timeout
    rv = (dep.get("metadata") or {}).get("resourceVersion", "")
    path = collection_path("apps/v1", "deployments", namespace)
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            raise Timeout("timed out waiting for the condition")
        server_timeout = int(min(left, 300)) + 1 if left is not None else 300
        try:
            stream = client.watch(
                path,
                {"fieldSelector": f"metadata.name={name}", "resourceVersion": rv,
                 "allowWatchBookmarks": "true", "timeoutSeconds": server_timeout},
                read_timeout=server_timeout + 10,
            )
        except Gone:  # our resourceVersion expired: observe afresh, then watch from there
            dep = get_deployment(client, namespace, name)
            rv = (dep.get("metadata") or {}).get("resourceVersion", "")
            if emit(dep):
                return StatusResult(namespace, name, tuple(messages), True)
            continue
        try:
            for ev in stream:
                etype, obj = ev.get("type"), ev.get("object") or {}
                rv = (obj.get("metadata") or {}).get("resourceVersion", rv)
                if etype == "DELETED":
                    raise NotFound("object has been deleted")
                if etype == "ERROR":
                    # 410: the resourceVersion expired; start over from a fresh GET.
                    dep = get_deployment(client, namespace, name)
                    rv = (dep.get("metadata") or {}).get("resourceVersion", "")
                    if emit(dep):
                        return StatusResult(namespace, name, tuple(messages), True)
                    break
                if etype in ("ADDED", "MODIFIED") and emit(obj):
                    return StatusResult(namespace, name, tuple(messages), True)
                if deadline is not None and time.monotonic() >= deadline:
                    raise Timeout("timed out waiting for the condition")
        finally:
            stream.close()

