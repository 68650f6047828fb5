"""Rollout history for the detail screen and rollback plans, from the deployment's ReplicaSets.

Reads ReplicaSets through the backend (their pod templates are what the diff shows) and
prefers fleet core's `history()` fields where present.
"""

from __future__ import annotations

from typing import Any

from fleet.derive import parse_time
from fleet.model import CHANGE_CAUSE, MODEL_URI_ENV, REVISION_ANNOTATION, VERSION_LABEL
from tui.plans import RevisionView


def revision_from_replicaset(rs: dict[str, Any], current_revision: int | None) -> RevisionView:
    meta = rs.get("metadata") or {}
    ann = meta.get("annotations") or {}
    template = (rs.get("spec") or {}).get("template") or {}
    tmeta = template.get("metadata") or {}
    containers = (template.get("spec") or {}).get("containers") or [{}]
    first = containers[0] if containers else {}
    model_uri = next((e.get("value", "") for c in containers for e in c.get("env") or []
                      if e.get("name") == MODEL_URI_ENV), "")
    revision = int(ann.get(REVISION_ANNOTATION, "0") or 0)
    return RevisionView(
        revision=revision,
        version=(tmeta.get("labels") or {}).get(VERSION_LABEL, ""),
        model_uri=model_uri,
        image=first.get("image", ""),
        change_cause=ann.get(CHANGE_CAUSE, ""),
        created=parse_time(meta.get("creationTimestamp")),
        template=template,
        current=revision == current_revision,
    )


def load_revisions(backend: Any, namespace: str, name: str) -> tuple[int, list[RevisionView]]:
    """(deployment generation, all revisions oldest first, the current one flagged)."""
    generation, replicasets = backend.replicasets(namespace, name)
    revs = [revision_from_replicaset(rs, None) for rs in replicasets]
    revs = [r for r in revs if r.revision > 0]
    if not revs:
        return generation, []
    newest = max(r.revision for r in revs)
    return generation, sorted(
        (RevisionView(**{**_fields(r), "current": r.revision == newest}) for r in revs),
        key=lambda r: r.revision,
    )


def _fields(r: RevisionView) -> dict[str, Any]:
    return {f: getattr(r, f) for f in RevisionView.__dataclass_fields__}
