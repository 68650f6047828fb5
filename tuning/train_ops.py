"""`fleet train` against the API: preflight, create the run's objects, follow it to the end.

Creation is all-or-nothing: every object passes a server-side dry run first, and if creating
one fails, the ones this call created are deleted again. Following a run reads the Job (its
`modelfleet.io/progress` annotation and conditions) and its pods once a second; it ends on
Complete, Failed (with the reason in one line), a pod that stays unschedulable, or the timeout.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from fleet.derive import condition
from fleet.errors import FleetError, NotFound
from fleet.kube import collection_path
from fleet.model import GPU_RESOURCE
from tuning.jobs import TrainSpec, build_objects, rbac_objects
from tuning.progress import FAILURE_ANNOTATION, PROGRESS_ANNOTATION

Obj = dict[str, Any]
Say = Callable[[str], None]
PATHS = {"Job": ("batch/v1", "jobs"), "Service": ("v1", "services"),
         "ServiceAccount": ("v1", "serviceaccounts"),
         "Role": ("rbac.authorization.k8s.io/v1", "roles"),
         "RoleBinding": ("rbac.authorization.k8s.io/v1", "rolebindings"),
         "CronJob": ("batch/v1", "cronjobs"), "Secret": ("v1", "secrets"),
         "ConfigMap": ("v1", "configmaps")}


class TrainFailed(FleetError):
    """The run ended Failed (or can never start); `message` is the one-line reason."""


def path_of(kind: str, namespace: str, name: str | None = None) -> str:
    gv, plural = PATHS[kind]
    p = collection_path(gv, plural, namespace)
    return p if name is None else f"{p}/{quote(name, safe='')}"


def ensure_rbac(client: Any, namespace: str, say: Say) -> bool:
    """Create the trainer's ServiceAccount/Role/RoleBinding where missing.

    Returns False (and says why, once) when the caller may not create them: the run still
    works, its progress is then in its log only."""
    ok = True
    for obj in rbac_objects(namespace):
        name = obj["metadata"]["name"]
        try:
            have = client.get(path_of(obj["kind"], namespace, name))
        except NotFound:
            have = None
        if have is not None:
            if obj["kind"] == "Role" and have.get("rules") != obj["rules"]:
                # an older release's Role: bring its rules up to date where we may
                with contextlib.suppress(FleetError):
                    client.put(path_of("Role", namespace, name),
                               {**obj, "metadata": {**obj["metadata"], "resourceVersion":
                                                    have["metadata"]["resourceVersion"]}})
            continue
        try:
            client.post(path_of(obj["kind"], namespace), obj)
        except FleetError as exc:
            if exc.status == 409:
                continue
            if exc.status == 403 and obj["kind"] != "ServiceAccount":
                if ok:
                    say(f"warning: cannot create {obj['kind']} {name} in {namespace} "
                        f"({exc.detail or exc}); progress will be in the log only. An admin "
                        f"can apply manifests/training/rbac.")
                ok = False
                continue
            raise
    return ok


def largest_gpu_node(client: Any) -> tuple[int, str] | None:
    """(most allocatable GPUs on one schedulable node, its name); None if nodes are unreadable."""
    try:
        nodes = client.get("/api/v1/nodes").get("items", [])
    except FleetError:
        return None
    best = (0, "")
    for n in nodes:
        if (n.get("spec") or {}).get("unschedulable"):
            continue
        raw = ((n.get("status") or {}).get("allocatable") or {}).get(GPU_RESOURCE, "0")
        try:
            count = int(raw)
        except ValueError:
            continue
        best = max(best, (count, n["metadata"]["name"]))
    return best


def preflight(client: Any, spec: TrainSpec) -> None:
    try:
        client.get(f"/api/v1/namespaces/{quote(spec.namespace, safe='')}")
    except NotFound:
        raise FleetError(f'namespaces "{spec.namespace}" not found; create it with '
                         f"`kubectl create namespace {spec.namespace}`") from None
    except FleetError as exc:
        if exc.status != 403:
            raise
    try:
        client.get(path_of("Job", spec.namespace, spec.name))
        raise FleetError(f'jobs.batch "{spec.name}" already exists in {spec.namespace}; pick '
                         f"another name or delete it (kubectl delete job -n {spec.namespace} "
                         f"{spec.name})")
    except NotFound:
        pass
    if spec.gpus:
        largest = largest_gpu_node(client)
        if largest is not None and largest[0] < spec.gpus:
            where = f" (the most on one node: {largest[0]} on {largest[1]})" if largest[1] \
                else " (no node has any)"
            raise TrainFailed(f"unschedulable: no node has {spec.gpus} allocatable "
                              f"{GPU_RESOURCE}{where}; ask for fewer with --gpus")


def create(client: Any, spec: TrainSpec, say: Say, *, rbac: bool = True) -> list[Obj]:
    """Create the run's objects (dry run first; all or nothing). Returns what was created."""
    preflight(client, spec)
    if rbac and not ensure_rbac(client, spec.namespace, say):
        spec = TrainSpec(**{**spec.__dict__, "service_account": "default"})
    objs = build_objects(spec)
    for obj in objs:
        try:
            client.post(path_of(obj["kind"], spec.namespace), obj, {"dryRun": "All"})
        except FleetError as exc:
            raise FleetError(f"the server rejects {obj['kind'].lower()}/"
                             f"{obj['metadata']['name']}: {exc.detail or exc}. Nothing was "
                             "created.", status=exc.status) from exc
    created: list[Obj] = []
    try:
        for obj in objs:
            created.append(client.post(path_of(obj["kind"], spec.namespace), obj))
            say(f"{obj['kind'].lower()}/{obj['metadata']['name']} created")
    except BaseException:
        for done in reversed(created):
            md = done["metadata"]
            with contextlib.suppress(FleetError):
                client.delete(path_of(done["kind"], spec.namespace, md["name"]),
                              {"propagationPolicy": "Background"})
        raise
    return created


@dataclass
class RunState:
    """What `follow` saw last; `result` is the published model's URI on success."""

    phase: str = ""
    progress: dict[str, Any] = field(default_factory=dict)
    state: str = "pending"  # pending | running | complete | failed
    reason: str = ""
    result: str = ""
    pods: list[Obj] = field(default_factory=list)


def progress_of(job: Obj) -> dict[str, Any]:
    raw = ((job.get("metadata") or {}).get("annotations") or {}).get(PROGRESS_ANNOTATION, "")
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def progress_text(p: dict[str, Any]) -> str:
    phase = p.get("phase", "")
    parts = [phase] if phase else []
    if p.get("epoch") is not None and p.get("epochs"):
        parts.append(f"epoch {p['epoch']}/{p['epochs']}")
    if p.get("metric") and p.get("value") is not None:
        parts.append(f"{p['metric']} {float(p['value']):.4f}")
    if p.get("loss") is not None:
        parts.append(f"loss {float(p['loss']):.4f}")
    if p.get("message") and phase in ("installing", "staging", "done", "failed"):
        parts.append(str(p["message"]))
    return " · ".join(parts)


def _termination_reason(pods: list[Obj]) -> str:
    """The most recent failed container's termination message (the trainer's own reason)."""
    best = ("", "")
    for pod in pods:
        for cs in (pod.get("status") or {}).get("containerStatuses") or []:
            term = ((cs.get("state") or {}).get("terminated")
                    or (cs.get("lastState") or {}).get("terminated") or {})
            if term and term.get("exitCode", 0) != 0:
                msg = " ".join((term.get("message") or "").split())
                when = term.get("finishedAt") or ""
                text = (f"exit code {term.get('exitCode')}"
                        + (f": {msg[-400:]}" if msg else ""))
                best = max(best, (when, text))
    return best[1]


def failure_reason(job: Obj, pods: list[Obj]) -> str:
    cond = condition(job.get("status") or {}, "Failed") or {}
    why = cond.get("reason", "Failed")
    ann = ((job.get("metadata") or {}).get("annotations") or {}).get(FAILURE_ANNOTATION, "")
    detail = ann or _termination_reason(pods) or (cond.get("message") or "")
    policy = {"PodFailurePolicy": "failed at once (deterministic error, not retried)",
              "BackoffLimitExceeded": "failed after its retries (backoffLimit)",
              "DeadlineExceeded": "exceeded its deadline"}.get(why, why)
    return f"{policy}: {detail}" if detail else policy


def unschedulable(pods: list[Obj], since: dict[str, float], now: float,
                  grace: float) -> str:
    """The scheduler's message for a pod Pending-unschedulable longer than `grace` seconds."""
    for pod in pods:
        name = pod["metadata"]["name"]
        sched = condition(pod.get("status") or {}, "PodScheduled") or {}
        if sched.get("status") == "False" and sched.get("reason") == "Unschedulable":
            first = since.setdefault(name, now)
            if now - first >= grace:
                return f"pod {name} is unschedulable: {(sched.get('message') or '').strip()}"
        else:
            since.pop(name, None)
    return ""


def follow(client: Any, namespace: str, name: str, *, timeout: float | None,
           on_progress: Say, unschedulable_after: float = 30.0,
           interval: float = 1.0) -> RunState:
    """Follow the run until it ends; raises TrainFailed (failed/unschedulable) or FleetError
    (timeout), with the run left in place."""
    run = RunState()
    deadline = None if not timeout else time.monotonic() + timeout
    pending_since: dict[str, float] = {}
    last_line = ""
    while True:
        job = client.get(path_of("Job", namespace, name))
        pods = client.get(collection_path("v1", "pods", namespace),
                          {"labelSelector": f"batch.kubernetes.io/job-name={name}"}
                          ).get("items", [])
        run.pods = pods
        run.progress = progress_of(job)
        line = progress_text(run.progress)
        if line and line != last_line:
            on_progress(line)
            last_line = line
        status = job.get("status") or {}
        if (condition(status, "Complete") or {}).get("status") == "True":
            run.state = "complete"
            run.result = str(run.progress.get("model_uri", ""))
            return run
        if (condition(status, "Failed") or {}).get("status") == "True":
            run.state, run.reason = "failed", failure_reason(job, pods)
            raise TrainFailed(run.reason)
        stuck = unschedulable(pods, pending_since, time.monotonic(), unschedulable_after)
        if stuck:
            run.state, run.reason = "failed", stuck
            raise TrainFailed(f"{stuck}. The Job stays queued; delete it with "
                              f"`kubectl delete job -n {namespace} {name}` or free the "
                              "resources")
        if deadline is not None and time.monotonic() >= deadline:
            raise FleetError(f"timed out after {timeout:.0f} s waiting for job {name} "
                             f"({line or 'no progress reported yet'}); it keeps running")
        time.sleep(interval)
