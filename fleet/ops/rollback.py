"""`kubectl rollout undo`, exactly, plus a precondition so a concurrent writer is reported."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fleet import replicasets
from fleet.errors import Conflict, DeploymentPaused, FleetError, RevisionNotFound
from fleet.kube import JSON_PATCH, deployment_path
from fleet.model import OpResult
from fleet.ops._common import (
    check_not_managed,
    get_deployment,
    last_writer,
    list_owned_replicasets,
    ref,
)

if TYPE_CHECKING:
    from fleet.api_client import Patcher, Reader

LAST_APPLIED_WARNING = (
    "Warning: resource deployments/{name} was previously managed with 'kubectl apply'. "
    "Rolling back will not update the kubectl.kubernetes.io/last-applied-configuration "
    "annotation, which may cause unexpected behavior on future 'kubectl apply' operations. "
    "Consider using 'kubectl apply' with your previous configuration file instead."
)
PAUSED_MESSAGE = (
    "you cannot rollback a paused deployment; resume it first with 'kubectl rollout resume' "
    "and try again"
)
MAX_ATTEMPTS = 3  # status-only changes between read and write are retried, spec changes are not


def _generation(obj: dict[str, Any]) -> int | str:
    gen = (obj.get("metadata") or {}).get("generation")
    return gen if isinstance(gen, str) else int(gen or 0)


def _rv(obj: dict[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("resourceVersion", "")


def changed_by_other(name: str, seen: dict[str, Any], now: dict[str, Any], what: str) -> Conflict:
    """A Conflict naming who changed the Deployment and how, for a 3 a.m. reader."""
    manager, when = last_writer(now)
    who = f" by {manager}" if manager else ""
    at = f" at {when}" if when else ""
    moved = []
    if _generation(seen) != "?":
        moved.append(f"generation {_generation(seen)} -> {_generation(now)}")
    if _rv(seen) != "?":
        moved.append(f"resourceVersion {_rv(seen)} -> {_rv(now)}")
    return Conflict(
        f"{ref(name)} was changed{who}{at} after it was read ({', '.join(moved)}); "
        f"nothing was {what}. Review `fleet history {name}` and retry.",
        status=409, reason="Conflict",
    )


def reread_if_raced(
    client: Reader, namespace: str, name: str, seen: dict[str, Any], exc: FleetError
) -> dict[str, Any] | None:
    """After a PATCH led by a resourceVersion `test` failed: the fresh object if it moved on
    since `seen` (the test failed: a race), else None (a genuine error to report as is).

    The apiserver answers a failed JSON-patch `test` with a bare 422 ("the server rejected our
    request..."), so the resourceVersion comparison, not the message, decides.
    """
    if exc.status not in (409, 422):
        return None
    try:
        fresh = get_deployment(client, namespace, name)
    except FleetError:
        return None
    return fresh if _rv(fresh) != _rv(seen) else None


def check_expected(
    name: str,
    dep: dict[str, Any],
    expected_resource_version: str | None,
    expected_generation: int | None,
    what: str,
) -> None:
    """Raise Conflict if the caller's view is stale: a different spec generation, or a different
    resourceVersion when no generation was given (a status-only change then still conflicts)."""
    if expected_generation is not None:
        if _generation(dep) != expected_generation:
            seen = {"metadata": {"generation": expected_generation,
                                 "resourceVersion": "?"}}
            raise changed_by_other(name, seen, dep, what)
        return
    if expected_resource_version and _rv(dep) != expected_resource_version:
        seen = {"metadata": {"generation": "?", "resourceVersion": expected_resource_version}}
        raise changed_by_other(name, seen, dep, what)


def rollback(
    client: Patcher,
    namespace: str,
    name: str,
    to_revision: int = 0,
    *,
    expected_resource_version: str | None = None,
    expected_generation: int | None = None,
    dry_run: bool = False,  # server-side (`?dryRun=All`), like kubectl --dry-run=server
    on_warning: Callable[[str], None] | None = None,
    force: bool = False,
) -> OpResult:
    """Undo to the previous revision (or `to_revision`) with kubectl's target, template,
    annotations and messages. The PATCH carries a `test` of metadata.resourceVersion, so a write
    by anyone else between our read and our write fails as `Conflict` instead of being lost.
    `on_warning` receives kubectl's last-applied-configuration warning as soon as it is known
    (before any error), as kubectl prints it; it is also kept in `OpResult.warning`.
    A Deployment owned by another controller raises `ManagedElsewhere` unless `force`.
    """
    if to_revision < 0:
        raise RevisionNotFound(f"unable to find specified revision {to_revision} in history")
    dep = get_deployment(client, namespace, name)
    warning = ""
    if replicasets.LAST_APPLIED in replicasets.annotations_of(dep):
        warning = LAST_APPLIED_WARNING.format(name=name)
        if on_warning is not None:
            on_warning(warning)
    check_expected(name, dep, expected_resource_version, expected_generation, "rolled back")
    if not force:
        check_not_managed(dep, "rollback")
    for attempt in range(MAX_ATTEMPTS):
        owned = list_owned_replicasets(client, dep)
        rs = replicasets.rollback_target(dep, owned, to_revision)
        if (dep.get("spec") or {}).get("paused"):
            raise DeploymentPaused(PAUSED_MESSAGE)
        if replicasets.equal_ignore_hash(rs["spec"]["template"], dep["spec"]["template"]):
            return OpResult(
                namespace, name,
                f"{ref(name)} skipped rollback (current template already matches revision "
                f"{to_revision})",
                changed=False, revision=replicasets.revision_of(rs), resource_version=_rv(dep),
                warning=warning,
            )
        patch = replicasets.rollback_patch(dep, rs, resource_version=_rv(dep))
        query = {"dryRun": "All"} if dry_run else None
        try:
            out = client.patch(deployment_path(namespace, name), patch, JSON_PATCH, query)
        except FleetError as exc:
            fresh = reread_if_raced(client, namespace, name, dep, exc)
            if fresh is None:  # kubectl names the *requested* revision here (0 = previous)
                raise exc.wrap(f"failed restoring revision {to_revision}") from exc
            if _generation(fresh) != _generation(dep) or attempt == MAX_ATTEMPTS - 1:
                raise changed_by_other(name, dep, fresh, "rolled back") from exc
            dep = fresh  # only status moved: decide again on the fresh object
            continue
        if dry_run:  # kubectl --dry-run=server: the server validated it, nothing persisted
            return OpResult(namespace, name, f"{ref(name)} rolled back (server dry run)", False,
                            revision=replicasets.revision_of(rs), warning=warning)
        return OpResult(
            namespace, name, f"{ref(name)} rolled back", changed=True,
            revision=replicasets.revision_of(rs), resource_version=_rv(out), warning=warning,
        )
    raise AssertionError("unreachable")
