"""Hyperparameter sweeps, read from the Kubernetes objects their workers keep current.

A sweep is one Indexed Job (label `app.kubernetes.io/component: sweep-worker`) whose worker 0
publishes a summary on the Job (`modelfleet.io/sweep`) and the trials table in the ConfigMap
`<sweep>-trials`. These reads need only the Kubernetes API, never the study database (which a
laptop usually cannot reach), so the TUI's sweep detail works from anywhere `kubectl` does.
Writing (launch, stop, resume, promote) belongs to `fleet sweep` (the `tuning` package).
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING
from urllib.parse import quote

from fleet import derive
from fleet.errors import NotFound
from fleet.kube import collection_path
from fleet.model import (
    COMPONENT_LABEL,
    JOB_NAME_LABEL,
    SWEEP_COMPONENT,
    PodSummary,
    SweepTrials,
    TrainingJob,
)

if TYPE_CHECKING:
    from fleet.api_client import Reader

TRIALS_SUFFIX = "-trials"


def trials_configmap(sweep: str) -> str:
    """The name of the ConfigMap holding a sweep's trials."""
    return f"{sweep}{TRIALS_SUFFIX}"


def _item(group_version: str, plural: str, ns: str, name: str) -> str:
    return f"{collection_path(group_version, plural, ns)}/{quote(name, safe='')}"


def list_sweeps(client: Reader, namespace: str | None = None) -> list[TrainingJob]:
    """Every sweep (its Job's record with `.sweep`), by namespace and name."""
    doc = client.list_all(collection_path("batch/v1", "jobs", namespace),
                          {"labelSelector": f"{COMPONENT_LABEL}={SWEEP_COMPONENT}"})
    jobs = [derive.training_job(j) for j in doc.get("items") or []]
    return sorted(jobs, key=lambda j: j.key)


def get_sweep(client: Reader, namespace: str, name: str) -> TrainingJob:
    """One sweep's Job record; `NotFound` (kubectl's words) when there is no such sweep."""
    try:
        job = client.get(_item("batch/v1", "jobs", namespace, name))
    except NotFound as exc:
        raise NotFound(f'no sweep "{name}" in namespace {namespace}', status=404) from exc
    rec = derive.training_job(job)
    if rec.kind != SWEEP_COMPONENT:
        raise NotFound(f'job "{name}" in namespace {namespace} is not a sweep (label '
                       f"{COMPONENT_LABEL}={rec.kind or '<none>'})", status=404)
    return rec


def sweep_trials(client: Reader, namespace: str, name: str,
                 known: SweepTrials | None = None) -> SweepTrials:
    """The sweep's trials (`.trials`, by number) and parameter importances (`.importances`,
    largest first) from its ConfigMap; `found=False` when the workers have not written it yet.
    Rows that are not trials are counted in `.problems` and left out.

    `known`: what an earlier call returned; when the ConfigMap's resourceVersion is still the
    same, that very object comes back without parsing the trials again (a poller's fast path).
    """
    try:
        cm = client.get(_item("v1", "configmaps", namespace, trials_configmap(name)))
    except NotFound:
        return SweepTrials(found=False)
    rv = str((cm.get("metadata") or {}).get("resourceVersion") or "")
    if known is not None and known.found and rv and known.resource_version == rv:
        return known
    got = derive.sweep_trials(cm)
    if known is not None and known.trials:
        # a running sweep changes a few trials per publish: keep the known objects of the
        # others, so a poller holds (and the garbage collector scans) only what changed
        old = {t.n: t for t in known.trials}
        shared = tuple(o if (o := old.get(t.n)) is not None and o == t else t
                       for t in got.trials)
        got = replace(got, trials=shared)
    return got


def sweep_pods(client: Reader, namespace: str, name: str) -> list[PodSummary]:
    """The sweep's worker pods (the Job controller's `batch.kubernetes.io/job-name` label),
    by name; a Pending pod's PodScheduled condition carries the scheduler's message (e.g.
    `0/3 nodes are available: 3 Insufficient nvidia.com/gpu.`)."""
    doc = client.list_all(collection_path("v1", "pods", namespace),
                          {"labelSelector": f"{JOB_NAME_LABEL}={name}"})
    pods = [derive.pod_summary(p) for p in doc.get("items") or []]
    return sorted(pods, key=lambda p: p.name)
