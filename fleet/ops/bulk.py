"""Bulk operations with a result for every target, and the incident "undo wave"."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from fleet import replicasets
from fleet.derive import parse_time
from fleet.errors import FleetError
from fleet.kube import collection_path
from fleet.model import CHANGE_CAUSE, COMPONENT_LABEL, MODEL_SERVER_COMPONENT, OpResult
from fleet.ops.rollback import rollback

if TYPE_CHECKING:
    from fleet.api_client import Patcher, Reader

CONTROLLER_MANAGER = "kube-controller-manager"


@dataclass(frozen=True, slots=True)
class TargetResult:
    namespace: str
    name: str
    result: OpResult | None = None
    error: FleetError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def message(self) -> str:
        if self.result is not None:
            return self.result.message
        return self.error.message if self.error else ""


@dataclass(frozen=True, slots=True)
class BulkResult:
    results: tuple[TargetResult, ...]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def succeeded(self) -> list[TargetResult]:
        return [r for r in self.results if r.ok]

    @property
    def failed(self) -> list[TargetResult]:
        return [r for r in self.results if not r.ok]


def _key(target: Any) -> tuple[str, str]:
    if isinstance(target, tuple):
        return target[0], target[1]
    return target.namespace, target.name


def run_bulk(
    operation: Callable[[str, str], OpResult],
    targets: Iterable[Any],
    max_workers: int = 16,
) -> BulkResult:
    """Run `operation(namespace, name)` on every target concurrently.

    Targets are (namespace, name) tuples or objects with `.namespace`/`.name`. Results keep the
    targets' order; any exception becomes that target's error, so none goes unreported.
    """
    keys = [_key(t) for t in targets]

    def one(key: tuple[str, str]) -> TargetResult:
        try:
            return TargetResult(key[0], key[1], result=operation(*key))
        except FleetError as exc:
            return TargetResult(key[0], key[1], error=exc)
        except Exception as exc:  # noqa: BLE001 - reported per target, never swallowed
            return TargetResult(key[0], key[1], error=FleetError(f"{type(exc).__name__}: {exc}"))

    if not keys:
        return BulkResult(())
    with ThreadPoolExecutor(max_workers=max(1, min(max_workers, len(keys)))) as pool:
        return BulkResult(tuple(pool.map(one, keys)))


@dataclass(frozen=True, slots=True)
class WaveCandidate:
    namespace: str
    name: str
    revision: int
    previous_revision: int
    started_at: datetime
    change_cause: str
    generation: int
    resource_version: str


def rollout_started_at(dep: dict[str, Any], owned: list[dict[str, Any]]) -> datetime:
    """When the current rollout began: the newest of the current ReplicaSet's creation and the
    controller's last write of the revision annotation (a rollback reuses an old RS, so only
    the second moves); the Deployment's creation when neither is known."""
    times: list[datetime] = []
    new_rs = replicasets.find_new_replicaset(dep, owned)
    if new_rs is not None:
        t = parse_time(replicasets.meta(new_rs).get("creationTimestamp"))
        if t:
            times.append(t)
    for entry in replicasets.meta(dep).get("managedFields") or []:
        if entry.get("manager") == CONTROLLER_MANAGER and not entry.get("subresource"):
            t = parse_time(entry.get("time"))
            if t:
                times.append(t)
    if times:
        return max(times)
    return parse_time(replicasets.meta(dep).get("creationTimestamp")) or datetime.now(UTC)


def undo_wave_candidates(
    client: Reader,
    since: timedelta,
    namespaces: Sequence[str] | None = None,
    *,
    now: datetime | None = None,
) -> list[WaveCandidate]:
    """Model deployments whose latest rollout began within `since` and that have a revision to
    go back to, newest rollout first. Deployments another controller owns are left out."""
    now = now or datetime.now(UTC)
    cutoff = now - since
    out: list[WaveCandidate] = []
    selector = {"labelSelector": f"{COMPONENT_LABEL}={MODEL_SERVER_COMPONENT}"}
    scopes: Sequence[str | None] = namespaces or [None]  # None: every namespace
    for ns in scopes:
        deps = client.list_all(collection_path("apps/v1", "deployments", ns), selector)
        rss = client.list_all(collection_path("apps/v1", "replicasets", ns)).get("items") or []
        for dep in deps.get("items") or []:
            if any(o.get("controller") for o in replicasets.meta(dep).get("ownerReferences") or []):
                continue  # another controller (KServe, Argo) owns it: undo it there
            owned = replicasets.owned_replicasets(dep, rss)
            started = rollout_started_at(dep, owned)
            if started < cutoff:
                continue
            try:
                target = replicasets.rollback_target(dep, owned, 0)
            except FleetError:
                continue
            md = replicasets.meta(dep)
            out.append(WaveCandidate(
                namespace=md.get("namespace", ""), name=md.get("name", ""),
                revision=replicasets.revision_of(dep) or 0,
                previous_revision=replicasets.revision_of(target) or 0,
                started_at=started,
                change_cause=replicasets.annotations_of(dep).get(CHANGE_CAUSE, ""),
                generation=int(md.get("generation") or 0),
                resource_version=md.get("resourceVersion", ""),
            ))
    out.sort(key=lambda c: (c.started_at, c.namespace, c.name), reverse=True)
    return out


def undo_wave(
    client: Patcher, candidates: Sequence[WaveCandidate], max_workers: int = 16
) -> BulkResult:
    """Roll back every candidate; one whose spec changed since it was listed is a Conflict."""
    by_key = {(c.namespace, c.name): c for c in candidates}

    def op(ns: str, name: str) -> OpResult:
        return rollback(client, ns, name, expected_generation=by_key[(ns, name)].generation)

    return run_bulk(op, list(by_key), max_workers=max_workers)
