"""Pure derivations from raw API JSON to the fleet records in `fleet.model`.

The cache calls these on every watch event, so they touch only the fields they need.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from fleet import cron
from fleet.model import (
    CHANGE_CAUSE,
    COMPONENT_LABEL,
    DEPLOYMENT_ANNOTATION,
    EPOCH,
    FAILURE_ANNOTATION,
    GPU_RESOURCE,
    IMPORTANCES_KEY,
    LAST_PROMOTION_ANNOTATION,
    MODEL_SERVER_COMPONENT,
    MODEL_URI_ENV,
    NAME_LABEL,
    PROGRESS_ANNOTATION,
    RETRAINING_COMPONENT,
    REVISION_ANNOTATION,
    SWEEP_ANNOTATION,
    SWEEP_COMPONENT,
    SWEEP_SPEC_ANNOTATION,
    TRAINING_COMPONENTS,
    TRIALS_KEY,
    VERSION_LABEL,
    Autoscaler,
    ContainerStatus,
    EventRecord,
    JobState,
    ModelDeployment,
    PodCondition,
    PodSummary,
    ProbeHealth,
    Promotion,
    RetrainSchedule,
    RolloutState,
    SweepSummary,
    SweepTrial,
    SweepTrials,
    Termination,
    TrainingJob,
    TrainingProgress,
)

Obj = dict[str, Any]


def parse_time(value: str | None) -> datetime | None:
    """RFC 3339 (`2026-01-02T03:04:05Z`, optional fraction) → aware datetime; None if absent."""
    if not value or not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)  # no zone: UTC


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def serving_container(template: Obj) -> Obj:
    """The container that serves the model: the first with a MODEL_URI env, else the first."""
    containers = ((template or {}).get("spec") or {}).get("containers") or []
    for c in containers:
        if any(e.get("name") == MODEL_URI_ENV for e in c.get("env") or []):
            return c
    return containers[0] if containers else {}


def env_value(container: Obj, name: str) -> str:
    for e in container.get("env") or []:
        if e.get("name") == name:
            return str(e.get("value") or "")
    return ""


def template_facts(template: Obj) -> tuple[str, str, str]:
    """(image, model URI, version label) of a pod template."""
    c = serving_container(template)
    labels = ((template or {}).get("metadata") or {}).get("labels") or {}
    return c.get("image", ""), env_value(c, MODEL_URI_ENV), labels.get(VERSION_LABEL, "")


def condition(status: Obj, ctype: str) -> Obj | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == ctype:
            return cond
    return None


def rollout_state(dep: Obj) -> RolloutState:
    """Paused, stalled (ProgressDeadlineExceeded), complete, or progressing."""
    spec, status = dep.get("spec") or {}, dep.get("status") or {}
    if spec.get("paused"):
        return RolloutState.PAUSED
    progressing = condition(status, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        return RolloutState.STALLED
    generation = _int((dep.get("metadata") or {}).get("generation"))
    observed = _int(status.get("observedGeneration"))
    desired = _int(spec.get("replicas"), 1)
    updated = _int(status.get("updatedReplicas"))
    if (
        generation <= observed
        and updated >= desired
        and _int(status.get("replicas")) <= updated
        and _int(status.get("availableReplicas")) >= updated
    ):
        return RolloutState.COMPLETE
    return RolloutState.PROGRESSING


def probe_health(pods: Iterable[PodSummary]) -> tuple[ProbeHealth, int, int, int]:
    """(health, unready pods, crashlooping pods, total restarts) over live pods."""
    live = [p for p in pods if not p.deleting]
    if not live:
        return ProbeHealth.NONE, 0, 0, 0
    crash = sum(1 for p in live if p.crashlooping)
    unready = sum(1 for p in live if p.phase == "Running" and not p.ready)
    pending = sum(1 for p in live if p.phase == "Pending")
    restarts = sum(p.restarts for p in live)
    if crash:
        health = ProbeHealth.CRASHLOOP
    elif unready:
        health = ProbeHealth.UNREADY
    elif pending:
        health = ProbeHealth.PENDING
    else:
        health = ProbeHealth.OK
    return health, unready, crash, restarts


def is_model_deployment(dep: Obj) -> bool:
    labels = (dep.get("metadata") or {}).get("labels") or {}
    return labels.get(COMPONENT_LABEL) == MODEL_SERVER_COMPONENT


def model_deployment(dep: Obj, pods: Iterable[PodSummary] = (),
                     hpa: Autoscaler | None = None) -> ModelDeployment:
    """Project a raw Deployment (plus its pods) onto a `ModelDeployment`."""
    md, spec, status = dep.get("metadata") or {}, dep.get("spec") or {}, dep.get("status") or {}
    labels = md.get("labels") or {}
    ann = md.get("annotations") or {}
    template = spec.get("template") or {}
    image, uri, tversion = template_facts(template)
    health, unready, crash, restarts = probe_health(pods)
    return ModelDeployment(
        namespace=md.get("namespace", ""),
        name=md.get("name", ""),
        uid=md.get("uid", ""),
        model=labels.get(NAME_LABEL) or md.get("name", ""),
        model_uri=uri,
        # The pod template's label is what runs; the Deployment's own label is not restored
        # by a rollback (kubectl undo replaces only the template and annotations).
        version=tversion or labels.get(VERSION_LABEL, ""),
        image=image,
        revision=_int(ann.get(REVISION_ANNOTATION)),
        desired=_int(spec.get("replicas"), 1),
        updated=_int(status.get("updatedReplicas")),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
        rollout_state=rollout_state(dep),
        probe_health=health,
        created=parse_time(md.get("creationTimestamp")) or EPOCH,
        change_cause=ann.get(CHANGE_CAUSE, ""),
        resource_version=md.get("resourceVersion", ""),
        paused=bool(spec.get("paused")),
        unready_pods=unready,
        crashlooping_pods=crash,
        restarts=restarts,
        labels=dict(labels),
        generation=_int(md.get("generation")),
        hpa=hpa,
    )


def _termination(t: Obj | None) -> Termination | None:
    if not t:
        return None
    return Termination(
        reason=t.get("reason", ""),
        exit_code=_int(t.get("exitCode")),
        finished_at=parse_time(t.get("finishedAt")),
        signal=_int(t.get("signal")),
        message=t.get("message", ""),
    )


def container_status(cs: Obj) -> ContainerStatus:
    state = cs.get("state") or {}
    if "running" in state:
        kind, reason = "running", ""
    elif "waiting" in state:
        kind, reason = "waiting", (state["waiting"] or {}).get("reason", "")
    elif "terminated" in state:
        kind, reason = "terminated", (state["terminated"] or {}).get("reason", "")
    else:
        kind, reason = "unknown", ""
    return ContainerStatus(
        name=cs.get("name", ""),
        ready=bool(cs.get("ready")),
        started=bool(cs.get("started")),
        restart_count=_int(cs.get("restartCount")),
        state=kind,
        state_reason=reason,
        last_termination=_termination((cs.get("lastState") or {}).get("terminated")),
    )


def controller_name(obj: Obj) -> tuple[str, str]:
    """(kind, name) of the controlling ownerReference, or ("", "")."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref.get("kind", ""), ref.get("name", "")
    return "", ""


def pod_summary(pod: Obj) -> PodSummary:
    md, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    conds = tuple(
        PodCondition(
            c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", "")
        )
        for c in status.get("conditions") or []
    )
    by_type = {c.type: c.status for c in conds}
    return PodSummary(
        namespace=md.get("namespace", ""),
        name=md.get("name", ""),
        uid=md.get("uid", ""),
        phase=status.get("phase", ""),
        ready=by_type.get("Ready") == "True",
        containers_ready=by_type.get("ContainersReady") == "True",
        node=spec.get("nodeName", ""),
        pod_ip=status.get("podIP", ""),
        owner=controller_name(pod)[1],
        created=parse_time(md.get("creationTimestamp")),
        deleting=bool(md.get("deletionTimestamp")),
        containers=tuple(container_status(cs) for cs in status.get("containerStatuses") or []),
        conditions=conds,
    )


def _gpus(template: Obj) -> int:
    total = 0
    for c in ((template or {}).get("spec") or {}).get("containers") or []:
        res = c.get("resources") or {}
        value = (res.get("limits") or {}).get(GPU_RESOURCE) or (res.get("requests") or {}).get(
            GPU_RESOURCE
        )
        total += _int(value)
    return total


def job_state(job: Obj) -> JobState:
    spec, status = job.get("spec") or {}, job.get("status") or {}
    for ctype, state in (("Complete", JobState.COMPLETE), ("Failed", JobState.FAILED)):
        cond = condition(status, ctype)
        if cond and cond.get("status") == "True":
            return state
    if spec.get("suspend"):
        return JobState.SUSPENDED
    if _int(status.get("active")) > 0:
        # `active` counts Pending pods too (e.g. waiting for GPUs). `ready` (Kubernetes >= 1.29)
        # tells whether any of them actually runs; without it, trust `active`.
        if "ready" in status and _int(status.get("ready")) == 0:
            return JobState.PENDING
        return JobState.RUNNING
    return JobState.PENDING


def is_training_job(job: Obj) -> bool:
    labels = (job.get("metadata") or {}).get("labels") or {}
    return labels.get(COMPONENT_LABEL) in TRAINING_COMPONENTS


# --- annotations written by pods (untrusted: any shape, any size) -------------------------------

MAX_LINE = 300  # characters kept of a one-line text (message, failure reason, detail)


def one_line(value: Any, limit: int = MAX_LINE) -> str:
    """A string as one trimmed line of at most `limit` characters ("" for a non-string)."""
    if not isinstance(value, str):
        return ""
    text = " ".join(value.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _opt_int(value: Any) -> int | None:
    """A count in [0, 10**9) from an int, an integral float or a string of ASCII digits
    (`"²".isdigit()` is true, but it is no number)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not (math.isfinite(value) and value.is_integer()):
            return None
        n = int(value)
    elif isinstance(value, int):
        n = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        n = int(value)
    else:
        return None
    return n if 0 <= n < 10**9 else None


def _opt_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        f = float(value)
    except (ValueError, OverflowError):
        return None
    return f if math.isfinite(f) else None


def _json_object(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > 64 * 1024:
        return None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return doc if isinstance(doc, dict) else None


def training_progress(raw: Any) -> TrainingProgress | None:
    """The `modelfleet.io/progress` JSON; None when absent, malformed or empty."""
    doc = _json_object(raw)
    if doc is None:
        return None
    progress = TrainingProgress(
        phase=one_line(doc.get("phase"), 24).lower(),
        epoch=_opt_int(doc.get("epoch")),
        epochs=_opt_int(doc.get("epochs")),
        metric=one_line(doc.get("metric"), 40),
        value=_opt_float(doc.get("value")),
        loss=_opt_float(doc.get("loss")),
        updated=parse_time(doc.get("updated")),
        message=one_line(doc.get("message")),
        model_uri=one_line(doc.get("model_uri"), 1000),
    )
    return None if progress == TrainingProgress() else progress


def training_job(job: Obj) -> TrainingJob:
    md, spec, status = job.get("metadata") or {}, job.get("spec") or {}, job.get("status") or {}
    ann = md.get("annotations") or {}
    completions = spec.get("completions")
    kind = (md.get("labels") or {}).get(COMPONENT_LABEL, "")
    return TrainingJob(
        namespace=md.get("namespace", ""),
        name=md.get("name", ""),
        uid=md.get("uid", ""),
        kind=kind,
        completions=None if completions is None else _int(completions),
        active=_int(status.get("active")),
        succeeded=_int(status.get("succeeded")),
        failed=_int(status.get("failed")),
        gpus=_gpus(spec.get("template") or {}) * _int(spec.get("parallelism"), 1),
        state=job_state(job),
        created=parse_time(md.get("creationTimestamp")) or EPOCH,
        resource_version=md.get("resourceVersion", ""),
        progress=training_progress(ann.get(PROGRESS_ANNOTATION)),
        failure=one_line(ann.get(FAILURE_ANNOTATION)),
        ready=_opt_int(status.get("ready")) if "ready" in status else None,
        suspended=spec.get("suspend") is True,
        sweep=sweep_summary(ann.get(SWEEP_ANNOTATION), ann.get(SWEEP_SPEC_ANNOTATION))
        if kind == SWEEP_COMPONENT else None,
    )


# --- sweeps (summary and spec on the Job, trials in a ConfigMap: untrusted) ---------------------

MAX_SWEEP_JSON = 256 * 1024  # the spec annotation carries the whole search space
MAX_PARAMS = 64
MAX_STEPS = 500


def _json_doc(raw: Any, limit: int) -> Any:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > limit:
        return None
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        return None


def _count(value: Any) -> int:
    n = _opt_int(value)
    return 0 if n is None else n


def _promotion_of(doc: Any) -> Promotion | None:
    if not isinstance(doc, dict):
        return None
    rec = Promotion(
        result=one_line(doc.get("result"), 24).lower(),
        detail=one_line(doc.get("detail")),
        job=one_line(doc.get("job"), 253),
        time=parse_time(doc.get("time")),
        model_uri=one_line(doc.get("model_uri") or doc.get("candidate_uri"), 1000),
    )
    return None if rec == Promotion() else rec


def sweep_summary(raw: Any, raw_spec: Any = None) -> SweepSummary | None:
    """The `modelfleet.io/sweep` summary and `modelfleet.io/sweep-spec` spec JSON of a sweep's
    Job; None when neither is a usable JSON object. A bad field is left unset, never raised."""
    got, got_spec = _json_doc(raw, 64 * 1024), _json_doc(raw_spec, MAX_SWEEP_JSON)
    doc: dict[str, Any] = got if isinstance(got, dict) else {}
    spec: dict[str, Any] = got_spec if isinstance(got_spec, dict) else {}
    if not doc and not spec:
        return None
    objective, budget, promo = (spec[k] if isinstance(spec.get(k), dict) else {}
                                for k in ("objective", "budget", "promotion"))
    space = spec.get("search_space")
    params = tuple(one_line(k, 64) for k in list(space)[:MAX_PARAMS]
                   if isinstance(k, str) and k.strip()) if isinstance(space, dict) else ()
    direction = one_line(doc.get("direction") or objective.get("direction"), 16).lower()
    best = _opt_float(doc.get("best_value"))
    return SweepSummary(
        state=one_line(doc.get("state"), 24).lower(),
        reason=one_line(doc.get("reason")),
        max_trials=_opt_int(doc.get("max_trials")) or _opt_int(budget.get("max_trials")),
        started=_count(doc.get("started")),
        complete=_count(doc.get("complete")),
        running=_count(doc.get("running")),
        pruned=_count(doc.get("pruned")),
        failed=_count(doc.get("failed")),
        waiting=_count(doc.get("waiting")),
        metric=one_line(doc.get("metric") or objective.get("metric"), 64),
        direction=direction if direction in ("maximize", "minimize") else "",
        best_value=best,
        best_trial=_opt_int(doc.get("best_trial")) if best is not None else None,
        promotion=_promotion_of(doc.get("promotion")),
        updated=parse_time(doc.get("updated")),
        params=params,
        parallelism=_opt_int(spec.get("parallelism")),
        gpus=_opt_int(spec.get("gpus")),
        deployment=one_line(promo.get("deployment"), 253),
    )


def _param_value(v: Any) -> float | int | str | bool | None:
    if v is None or isinstance(v, bool | str):
        return one_line(v, 80) if isinstance(v, str) else v
    if isinstance(v, int):
        return v
    return _opt_float(v)


_TRIAL_STATES = {"complete", "running", "pruned", "fail", "failed", "waiting"}


def sweep_trial(row: Any) -> SweepTrial | None:
    """One entry of `trials.json`; None when it has no trial number."""
    if not isinstance(row, dict):
        return None
    n = _opt_int(row.get("n"))
    if n is None:
        return None
    state = one_line(row.get("state"), 16).lower()
    state = "fail" if state == "failed" else state if state in _TRIAL_STATES else "unknown"
    raw_params = row.get("params")
    params: tuple[tuple[str, Any], ...] = ()
    if isinstance(raw_params, dict):
        params = tuple((one_line(k, 64), _param_value(v))
                       for k, v in list(raw_params.items())[:MAX_PARAMS] if isinstance(k, str))
    steps: list[tuple[int, float]] = []
    raw_steps = row.get("steps")
    if isinstance(raw_steps, list):
        for item in raw_steps[-MAX_STEPS:]:
            if isinstance(item, list | tuple) and len(item) == 2:
                step, value = _opt_int(item[0]), _opt_float(item[1])
                if step is not None and value is not None:
                    steps.append((step, value))
        steps.sort()
    retry = row.get("retry_of")
    return SweepTrial(
        n=n, state=state, value=_opt_float(row.get("value")), params=params,
        pod=one_line(row.get("pod"), 253), index=_opt_int(row.get("index")),
        steps=tuple(steps), start=parse_time(row.get("start")), end=parse_time(row.get("end")),
        model_uri=one_line(row.get("model_uri"), 1000), holdout=_opt_float(row.get("holdout")),
        reason=one_line(row.get("reason")),
        retry_of=_opt_int(retry) if not isinstance(retry, dict) else _opt_int(retry.get("n")),
    )


def sweep_trials(configmap: Obj | None) -> SweepTrials:
    """The trials ConfigMap (`<sweep>-trials`) → trials by number (one per number, the last
    wins) and importances (largest first). Malformed data gives what could be read."""
    if not isinstance(configmap, dict):
        return SweepTrials(found=False)
    md = configmap.get("metadata") or {}
    data = configmap.get("data") or {}
    data = data if isinstance(data, dict) else {}
    rows = _json_doc(data.get(TRIALS_KEY), 16 * 1024 * 1024)
    by_n: dict[int, SweepTrial] = {}
    problems = 0
    for row in rows if isinstance(rows, list) else ():
        trial = sweep_trial(row)
        if trial is None:
            problems += 1
        else:
            by_n[trial.n] = trial
    if rows is not None and not isinstance(rows, list):
        problems += 1
    imp = _json_doc(data.get(IMPORTANCES_KEY), 64 * 1024)
    importances: list[tuple[str, float]] = []
    if isinstance(imp, dict):
        for k, v in imp.items():
            f = _opt_float(v)
            if isinstance(k, str) and f is not None:
                importances.append((one_line(k, 64), f))
    importances.sort(key=lambda kv: (-kv[1], kv[0]))
    return SweepTrials(trials=tuple(by_n[n] for n in sorted(by_n)),
                       importances=tuple(importances[:MAX_PARAMS]),
                       resource_version=str(md.get("resourceVersion") or ""),
                       problems=problems)


def unschedulable(pods: Iterable[PodSummary]) -> tuple[int, str]:
    """(pods the scheduler could not place, its message for one of them): Pending pods with
    PodScheduled=False, e.g. `0/3 nodes are available: 3 Insufficient nvidia.com/gpu.`"""
    count, reason = 0, ""
    for p in sorted(pods, key=lambda p: p.name):
        if p.phase != "Pending" or p.deleting:
            continue
        for c in p.conditions:
            if c.type == "PodScheduled" and c.status == "False":
                count += 1
                reason = reason or one_line(c.message or c.reason)
                break
    return count, reason


# --- re-training CronJobs ----------------------------------------------------------------------

def is_retrain_schedule(cronjob: Obj) -> bool:
    labels = (cronjob.get("metadata") or {}).get("labels") or {}
    return labels.get(COMPONENT_LABEL) == RETRAINING_COMPONENT


def promotion(raw: Any) -> Promotion | None:
    """The `modelfleet.io/last-promotion` JSON; None when absent, malformed or empty."""
    doc = _json_object(raw)
    if doc is None:
        return None
    rec = Promotion(
        result=one_line(doc.get("result"), 24).lower(),
        detail=one_line(doc.get("detail")),
        job=one_line(doc.get("job"), 253),
        time=parse_time(doc.get("time")),
        model_uri=one_line(doc.get("model_uri"), 1000),
    )
    return None if rec == Promotion() else rec


def retrain_schedule(cronjob: Obj, now: datetime | None = None) -> RetrainSchedule:
    """Project a CronJob (batch/v1); `next_run` is the first run after `now` (default: the
    clock), None when suspended or when the schedule or time zone cannot be evaluated."""
    md = cronjob.get("metadata") or {}
    spec, status = cronjob.get("spec") or {}, cronjob.get("status") or {}
    labels, ann = md.get("labels") or {}, md.get("annotations") or {}
    raw_schedule, raw_zone = spec.get("schedule"), spec.get("timeZone")
    schedule = raw_schedule if isinstance(raw_schedule, str) else ""
    time_zone = raw_zone if isinstance(raw_zone, str) else ""
    suspended = bool(spec.get("suspend"))
    last = parse_time(status.get("lastScheduleTime"))
    now = now or datetime.now(UTC)
    next_run = None
    if not suspended and schedule:
        next_run = cron.next_run(schedule, max(now, last) if last else now, time_zone or None)
    return RetrainSchedule(
        namespace=md.get("namespace", ""),
        name=md.get("name", ""),
        model=labels.get(NAME_LABEL) or md.get("name", ""),
        deployment=one_line(ann.get(DEPLOYMENT_ANNOTATION), 253),
        schedule=schedule,
        time_zone=time_zone,
        suspended=suspended,
        last_schedule=last,
        last_successful=parse_time(status.get("lastSuccessfulTime")),
        next_run=next_run,
        active=len(status.get("active") or []),
        last_promotion=promotion(ann.get(LAST_PROMOTION_ANNOTATION)),
        uid=md.get("uid", ""),
        resource_version=md.get("resourceVersion", ""),
        created=parse_time(md.get("creationTimestamp")),
    )


def event_record(ev: Obj) -> EventRecord:
    md = ev.get("metadata") or {}
    inv = ev.get("involvedObject") or ev.get("regarding") or {}
    series = ev.get("series") or {}
    last = (
        ev.get("lastTimestamp")
        or series.get("lastObservedTime")
        or ev.get("eventTime")
        or md.get("creationTimestamp")
    )
    first = ev.get("firstTimestamp") or ev.get("eventTime") or md.get("creationTimestamp")
    source = (ev.get("source") or {}).get("component") or ev.get("reportingComponent") or ""
    return EventRecord(
        namespace=md.get("namespace", ""),
        name=md.get("name", ""),
        type=ev.get("type", ""),
        reason=ev.get("reason", ""),
        message=ev.get("message") or ev.get("note") or "",
        count=_int(ev.get("count") or series.get("count"), 1),
        first_seen=parse_time(first),
        last_seen=parse_time(last),
        involved_kind=inv.get("kind", ""),
        involved_name=inv.get("name", ""),
        involved_uid=inv.get("uid", ""),
        field_path=inv.get("fieldPath", ""),
        source=source,
    )


# --- HorizontalPodAutoscalers (autoscaling/v2) ---------------------------------------------------

def _metric_value(m: Obj | None, utilization: bool) -> str:
    m = m or {}
    if utilization and m.get("averageUtilization") is not None:
        return f"{_int(m.get('averageUtilization'))}%"
    for key in ("averageValue", "value"):
        if m.get(key) is not None:
            return str(m[key])
    return "<unknown>"


def _metric_name(spec: Obj) -> tuple[str, str]:
    """(type key, metric name) of one autoscaling/v2 MetricSpec/MetricStatus."""
    mtype = str(spec.get("type") or "")
    key = {"Resource": "resource", "ContainerResource": "containerResource", "Pods": "pods",
           "Object": "object", "External": "external"}.get(mtype, mtype.lower())
    body = spec.get(key) or {}
    name = body.get("name") or (body.get("metric") or {}).get("name") or mtype
    return key, str(name)


def hpa_targets(hpa: Obj) -> tuple[str, ...]:
    """kubectl get hpa's TARGETS, one per metric: `cpu: 12%/70%`, `cpu: <unknown>/70%`."""
    spec, status = hpa.get("spec") or {}, hpa.get("status") or {}
    current = {_metric_name(m): m for m in status.get("currentMetrics") or []}
    out = []
    for m in spec.get("metrics") or []:
        key, name = _metric_name(m)
        target = (m.get(key) or {}).get("target") or {}
        util = target.get("type") == "Utilization"
        cur = (current.get((key, name)) or {}).get(key) or {}
        out.append(f"{name}: {_metric_value(cur.get('current'), util)}/"
                   f"{_metric_value(target, util)}")
    return tuple(out)


def hpa_target(hpa: Obj) -> tuple[str, str]:
    """(kind, name) of the HPA's scaleTargetRef."""
    ref = (hpa.get("spec") or {}).get("scaleTargetRef") or {}
    return ref.get("kind", ""), ref.get("name", "")


def autoscaler(hpa: Obj) -> Autoscaler:
    md, spec, status = hpa.get("metadata") or {}, hpa.get("spec") or {}, hpa.get("status") or {}
    return Autoscaler(
        name=md.get("name", ""),
        min_replicas=_int(spec.get("minReplicas"), 1),
        max_replicas=_int(spec.get("maxReplicas")),
        current_replicas=_int(status.get("currentReplicas")),
        desired_replicas=_int(status.get("desiredReplicas")),
        targets=hpa_targets(hpa),
        last_scale=parse_time(status.get("lastScaleTime")),
        conditions=tuple(PodCondition(c.get("type", ""), c.get("status", ""),
                                      c.get("reason", ""), c.get("message", ""))
                         for c in status.get("conditions") or []),
    )
