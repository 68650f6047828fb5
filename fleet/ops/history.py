"""`kubectl rollout history` for a Deployment: revisions from its owned ReplicaSets."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from fleet import replicasets
from fleet.derive import parse_time, template_facts
from fleet.errors import RevisionNotFound
from fleet.model import CHANGE_CAUSE, Revision
from fleet.ops._common import get_deployment, list_owned_replicasets, ref

if TYPE_CHECKING:
    from fleet.api_client import Reader


def history(client: Reader, namespace: str, name: str) -> list[Revision]:
    """Revisions ascending; for a duplicated number the later RS wins (kubectl's map)."""
    return history_at(client, namespace, name)[1]


def history_at(client: Reader, namespace: str, name: str) -> tuple[int, list[Revision]]:
    """(the Deployment's metadata.generation, its revisions) from one read: a rollback chosen
    from these revisions passes the generation as `expected_generation`."""
    dep = get_deployment(client, namespace, name)
    owned = list_owned_replicasets(client, dep)
    return int(replicasets.meta(dep).get("generation") or 0), revisions_of(dep, owned)


def revisions_of(dep: dict[str, Any], owned: list[dict[str, Any]]) -> list[Revision]:
    by_rev: dict[int, dict[str, Any]] = {}
    for rs in replicasets.all_replicasets(dep, owned):
        rev = replicasets.revision_of(rs)
        if rev is not None:
            by_rev[rev] = rs
    current = max(by_rev, default=None)
    out = []
    for rev in sorted(by_rev):
        rs = by_rev[rev]
        md = rs.get("metadata") or {}
        template = (rs.get("spec") or {}).get("template") or {}
        image, uri, version = template_facts(template)
        out.append(
            Revision(
                revision=rev,
                change_cause=replicasets.annotations_of(rs).get(CHANGE_CAUSE, ""),
                replicaset=md.get("name", ""),
                created=parse_time(md.get("creationTimestamp")),
                replicas=int((rs.get("status") or {}).get("replicas") or 0),
                image=image,
                model_uri=uri,
                version=version,
                current=rev == current,
                template=replicasets.strip_hash(template),
            )
        )
    return out


def tabwrite(rows: list[list[str]], padding: int = 2) -> str:
    """Go text/tabwriter (minwidth 0, padding 2, ' '): every cell but the last is padded."""
    widths: dict[int, int] = {}
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            widths[i] = max(widths.get(i, 0), len(cell))
    lines = []
    for row in rows:
        cells = [c.ljust(widths[i] + padding) for i, c in enumerate(row[:-1])]
        lines.append("".join(cells) + row[-1])
    return "\n".join(lines) + "\n"


def format_history(name: str, revisions: list[Revision]) -> str:
    """kubectl's exact output, including the trailing space and the blank line after the table."""
    if not revisions:
        return f"{ref(name)} No rollout history found.\n"
    rows = [["REVISION", "CHANGE-CAUSE"]]
    rows += [[str(r.revision), r.change_cause or "<none>"] for r in revisions]
    return f"{ref(name)} \n{tabwrite(rows)}\n"


def revision_template(client: Reader, namespace: str, name: str, revision: int) -> dict[str, Any]:
    """The pod template of one revision, with its RS's change-cause, as kubectl prints it."""
    dep = get_deployment(client, namespace, name)
    by_rev: dict[int, dict[str, Any]] = {}
    for rs in replicasets.all_replicasets(dep, list_owned_replicasets(client, dep)):
        rev = replicasets.revision_of(rs)
        if rev is not None:
            by_rev[rev] = rs
    if revision not in by_rev:
        raise RevisionNotFound("unable to find the specified revision")
    rs = by_rev[revision]
    template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
    cause = replicasets.annotations_of(rs).get(CHANGE_CAUSE)
    if cause:
        template.setdefault("metadata", {}).setdefault("annotations", {})[
            CHANGE_CAUSE] = cause
    return template


def format_revision(name: str, revision: int, template: dict[str, Any]) -> str:
    """`kubectl rollout history --revision=N` output."""
    from fleet.pod_template_text import describe_pod_template

    return f"{ref(name)} with revision #{revision}\n{describe_pod_template(template)}\n"
