"""Shared reads for operations: the Deployment, its owned ReplicaSets, kubectl naming."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from fleet import replicasets
from fleet.errors import FleetError, ManagedElsewhere
from fleet.kube import collection_path, deployment_path

if TYPE_CHECKING:
    from fleet.api_client import Reader

Obj = dict[str, Any]


def ref(name: str) -> str:
    """kubectl's NamePrinter prefix: `deployment.apps/NAME`."""
    return f"deployment.apps/{name}"


def get_deployment(client: Reader, namespace: str, name: str) -> Obj:
    """GET the Deployment; a 404 raises `NotFound` with kubectl's text."""
    return client.get(deployment_path(namespace, name))


def list_owned_replicasets(client: Reader, deployment: Obj) -> list[Obj]:
    """kubectl `GetAllReplicaSets`: selector LIST (paginated), controller filter, sorted."""
    md = deployment.get("metadata") or {}
    selector = replicasets.selector_to_query((deployment.get("spec") or {}).get("selector"))
    try:
        doc = client.list_all(
            collection_path("apps/v1", "replicasets", md.get("namespace")),
            {"labelSelector": selector} if selector else None,
        )
    except FleetError as exc:
        raise exc.wrap(f"failed to retrieve replica sets from deployment {md.get('name')}") from exc
    return replicasets.owned_replicasets(deployment, doc.get("items") or [])


def last_writer(obj: Obj) -> tuple[str, str]:
    """(manager, time) of the newest managedFields entry outside the status subresource."""
    best: tuple[str, str] = ("", "")
    for entry in (obj.get("metadata") or {}).get("managedFields") or []:
        if entry.get("subresource"):
            continue
        when = entry.get("time") or ""
        if when >= best[1]:
            best = (entry.get("manager", ""), when)
    return best


def rfc3339_local(now: datetime | None = None) -> str:
    """Go's `time.Now().Format(time.RFC3339)`: local time with offset, `Z` for UTC."""
    t = (now or datetime.now()).astimezone().replace(microsecond=0)
    text = t.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def check_not_managed(deployment: Obj, what: str) -> None:
    """Refuse to change a Deployment that another controller owns (an InferenceService, an Argo
    Rollout, ...): that controller reconciles it back, so the change would silently vanish."""
    md = deployment.get("metadata") or {}
    for owner in md.get("ownerReferences") or []:
        if owner.get("controller"):
            group = (owner.get("apiVersion") or "").split("/")[0]
            kind = owner.get("kind", "")
            raise ManagedElsewhere(
                f"{ref(md.get('name', ''))} is managed by {kind} \"{owner.get('name')}\""
                f"{f' ({group})' if group else ''}, which would revert a {what} made here; "
                f"change the {kind} instead, or pass force=True (--force) to do it anyway"
            )
