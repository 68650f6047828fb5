"""`kubectl scale deployment` through the scale subresource, with kubectl's preconditions."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from fleet.errors import Conflict, InvalidReplicas, PreconditionFailed
from fleet.kube import MERGE_PATCH, deployment_path
from fleet.model import OpResult
from fleet.ops._common import ref

if TYPE_CHECKING:
    from fleet.api_client import Writer

CONFLICT_RETRY_INTERVAL = 1.0
CONFLICT_RETRY_TIMEOUT = 300.0


def validate(replicas: int, current_replicas: int | None) -> None:
    if replicas is None or replicas < 0:
        raise InvalidReplicas(
            "The --replicas=COUNT flag is required, and COUNT must be greater than or equal to 0"
        )
    if current_replicas is not None and current_replicas < -1:
        raise InvalidReplicas("The --current-replicas must specify an integer of -1 or greater")


def scale(
    client: Writer,
    namespace: str,
    name: str,
    replicas: int,
    *,
    current_replicas: int | None = None,
    resource_version: str | None = None,
    retry_timeout: float = CONFLICT_RETRY_TIMEOUT,
) -> OpResult:
    """Set spec.replicas. With `current_replicas` (>= 0) or `resource_version`, GET the Scale,
    check, and PUT it (retrying only 409s every second, re-checking each time); otherwise a
    merge PATCH of the Scale, exactly like kubectl.
    """
    validate(replicas, current_replicas)
    path = deployment_path(namespace, name, "scale")
    if current_replicas in (None, -1) and not resource_version:
        out = client.patch(path, {"spec": {"replicas": replicas}}, MERGE_PATCH)
        rv = (out.get("metadata") or {}).get("resourceVersion", "")
        return OpResult(namespace, name, f"{ref(name)} scaled", True, resource_version=rv)
    deadline = time.monotonic() + retry_timeout
    while True:
        sc = client.get(path)
        md, spec = sc.get("metadata") or {}, sc.setdefault("spec", {})
        was = int(spec.get("replicas") or 0)
        if current_replicas not in (None, -1) and was != current_replicas:
            raise PreconditionFailed(f"Expected replicas to be {current_replicas}, was {was}")
        if resource_version and md.get("resourceVersion") != resource_version:
            raise PreconditionFailed(
                f"Expected resource version to be {resource_version}, was "
                f"{md.get('resourceVersion')}"
            )
        spec["replicas"] = replicas
        try:
            out = client.put(path, sc)
        except Conflict:
            if time.monotonic() >= deadline:
                raise
            time.sleep(CONFLICT_RETRY_INTERVAL)
            continue
        rv = (out.get("metadata") or {}).get("resourceVersion", "")
        return OpResult(namespace, name, f"{ref(name)} scaled", was != replicas,
                        resource_version=rv)
