"""Pure Deployment/ReplicaSet logic mirrored from kubectl (`polymorphichelpers/rollback.go`,
`pkg/util/deployment`): owned-ReplicaSet filtering, revisions, `equalIgnoreHash`, rollback
target choice and the annotation map a rollback writes. Inputs are raw API JSON dicts.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fleet.errors import NoRolloutHistory, RevisionNotFound
from fleet.model import REVISION_ANNOTATION

REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
POD_TEMPLATE_HASH = "pod-template-hash"
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"

# kubectl rollback.go `annotationsToSkip`: kept from the Deployment, never copied from the RS.
ANNOTATIONS_TO_SKIP = frozenset(
    {
        LAST_APPLIED,
        REVISION_ANNOTATION,
        REVISION_HISTORY,
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)

Obj = dict[str, Any]
T = TypeVar("T")


def meta(obj: Obj) -> Obj:
    return obj.get("metadata") or {}


def annotations_of(obj: Obj) -> dict[str, str]:
    return meta(obj).get("annotations") or {}


def revision_of(obj: Obj) -> int | None:
    """The revision annotation as int: missing → 0, unparsable → None (kubectl skips it)."""
    raw = annotations_of(obj).get(REVISION_ANNOTATION)
    if raw is None:
        return 0
    try:
        return int(raw)
    except ValueError:
        return None


def is_controlled_by(obj: Obj, owner_uid: str) -> bool:
    """An ownerReference with `controller: true` and the owner's UID (metav1.GetControllerOf)."""
    return any(
        ref.get("controller") and ref.get("uid") == owner_uid
        for ref in meta(obj).get("ownerReferences") or []
    )


def selector_to_query(selector: Obj | None) -> str:
    """Render a LabelSelector as a `labelSelector` query string (metav1.LabelSelectorAsSelector)."""
    if not selector:
        return ""
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In":
            parts.append(f"{key} in ({','.join(sorted(values))})")
        elif op == "NotIn":
            parts.append(f"{key} notin ({','.join(sorted(values))})")
        elif op == "Exists":
            parts.append(key)
        elif op == "DoesNotExist":
            parts.append(f"!{key}")
    return ",".join(parts)


def owned_replicasets(deployment: Obj, replicasets: list[Obj]) -> list[Obj]:
    """RSes controlled by the Deployment, sorted by creationTimestamp then name."""
    uid = meta(deployment).get("uid", "")
    owned = [rs for rs in replicasets if is_controlled_by(rs, uid)]
    owned.sort(key=lambda rs: (meta(rs).get("creationTimestamp") or "", meta(rs).get("name", "")))
    return owned


def semantic(value: Any) -> Any:
    """Normalize for `apiequality.Semantic.DeepEqual`: nil equals empty maps and slices."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            nv = semantic(v)
            if nv is None or nv == {} or nv == []:
                continue
            out[k] = nv
        return out
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def strip_hash(template: Obj) -> Obj:
    """Deep copy of a pod template without the `pod-template-hash` label."""
    t = copy.deepcopy(template or {})
    labels = (t.get("metadata") or {}).get("labels")
    if labels is not None:
        labels.pop(POD_TEMPLATE_HASH, None)
    return t


def equal_ignore_hash(a: Obj | None, b: Obj | None) -> bool:
    """kubectl `equalIgnoreHash`: templates equal once `pod-template-hash` is dropped."""
    return semantic(strip_hash(a or {})) == semantic(strip_hash(b or {}))


def find_new_replicaset(deployment: Obj, owned: list[Obj]) -> Obj | None:
    """The oldest owned RS whose template equals the Deployment's (FindNewReplicaSet)."""
    template = (deployment.get("spec") or {}).get("template")
    for rs in owned:
        if equal_ignore_hash((rs.get("spec") or {}).get("template"), template):
            return rs
    return None


def all_replicasets(deployment: Obj, owned: list[Obj]) -> list[Obj]:
    """kubectl's iteration order (`GetAllReplicaSets`): old RSes by creation, then the new RS."""
    new = find_new_replicaset(deployment, owned)
    olds = [rs for rs in owned if rs is not new]
    return olds + [new] if new is not None else olds


def pick_rollback(
    items: Sequence[T], revision: Callable[[T], int | None], to_revision: int = 0, name: str = ""
) -> T:
    """kubectl `deploymentRevision` over anything with a revision (ReplicaSets, `Revision`s):
    `to_revision` itself, or for 0 the previous revision (second highest, not current - 1).
    `items` in kubectl's order (`all_replicasets`); an unparsable revision (None) is skipped."""
    if to_revision < 0:
        raise RevisionNotFound(f"unable to find specified revision {to_revision} in history")
    if to_revision > 0:
        for item in items:
            if revision(item) == to_revision:
                return item
        raise RevisionNotFound(f"unable to find specified revision {to_revision} in history")
    latest: T | None = None
    previous: T | None = None
    latest_rev = previous_rev = -1
    for item in items:
        rev = revision(item)
        if rev is None:
            continue
        if rev > latest_rev:
            previous, previous_rev = latest, latest_rev
            latest, latest_rev = item, rev
        elif rev > previous_rev:
            previous, previous_rev = item, rev
    if previous is None:
        raise NoRolloutHistory(f'no rollout history found for deployment "{name}"')
    return previous


def rollback_target(deployment: Obj, owned: list[Obj], to_revision: int = 0) -> Obj:
    """Pick the RS `kubectl rollout undo` would restore (kubectl `deploymentRevision`).

    `owned` must be sorted as `owned_replicasets` returns them.
    """
    return pick_rollback(all_replicasets(deployment, owned), revision_of, to_revision,
                         meta(deployment).get("name", ""))


def rollback_annotations(deployment: Obj, rs: Obj) -> dict[str, str]:
    """The full annotation map kubectl's undo patch writes (rollback.go `getDeploymentPatch`)."""
    out: dict[str, str] = {}
    dep_ann = annotations_of(deployment)
    for key in ANNOTATIONS_TO_SKIP:
        if key in dep_ann:
            out[key] = dep_ann[key]
    for key, value in annotations_of(rs).items():
        if key not in ANNOTATIONS_TO_SKIP:
            out[key] = value
    return out


def rollback_patch(deployment: Obj, rs: Obj, resource_version: str | None = None) -> list[Obj]:
    """kubectl's JSON patch, optionally led by a `test` of metadata.resourceVersion."""
    ops: list[Obj] = []
    if resource_version:
        ops.append({"op": "test", "path": "/metadata/resourceVersion", "value": resource_version})
    ops.append(
        {"op": "replace", "path": "/spec/template", "value": strip_hash(rs["spec"]["template"])}
    )
    ops.append(
        {
            "op": "replace",
            "path": "/metadata/annotations",
            "value": rollback_annotations(deployment, rs),
        }
    )
    return ops
