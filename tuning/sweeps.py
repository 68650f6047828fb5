"""`fleet sweep` against the API and the study storage.

launch: the spec is validated completely, then the study and the sweep row are created in
PostgreSQL, then the storage Secret and the Indexed Job; any failure undoes what this launch
made, so there is never a Job without a study or a study without a Job. stop suspends the Job
(its workers hand their running trials back on SIGTERM); resume continues to the same exact
budget. ls/show/promote read only Kubernetes objects (the Job's summary annotation and the
trials ConfigMap the workers keep current), so they work where the database is unreachable.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleet.errors import FleetError, NotFound
from fleet.kube import collection_path
from fleet.model import COMPONENT_LABEL, NAME_LABEL
from tuning import sweep_spec, sweep_store
from tuning.jobs import TrainSpec, build_objects
from tuning.progress import MERGE_PATCH
from tuning.sweep_summary import SWEEP_ANNOTATION, SWEEP_LABEL, TRIALS_KEY
from tuning.train_ops import ensure_rbac, largest_gpu_node, path_of

Say = Callable[[str], None]
SWEEP_COMPONENT = "sweep-worker"
STORAGE_KEY = "url"


class SweepError(FleetError):
    """A sweep operation failed; nothing half-done was left behind."""


def redact(url: str) -> str:
    """The storage URL without its password, for messages."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable storage URL>"


def secret_name(sweep: str) -> str:
    return f"{sweep}-storage"


def build_job(spec: sweep_spec.SweepSpec, namespace: str, *, runtime_class: str | None,
              webhdfs_url: str, image: str, study: str) -> dict[str, Any]:
    """The sweep's Indexed Job: `parallelism` worker pods, each with its GPUs."""
    train = TrainSpec(name=spec.name, namespace=namespace, code_uri=spec.code,
                      data_uri=spec.data, output_uri=spec.output, gpus=spec.gpus,
                      epochs=spec.epochs, image=image, runtime_class=runtime_class,
                      cpu=spec.cpu, memory=spec.memory, webhdfs_url=webhdfs_url,
                      model=spec.name, source=f"sweep {spec.name}",
                      service_account="fleet-retrainer" if spec.promotion
                      and spec.promotion.auto_promote else "fleet-trainer")
    job = build_objects(train)[-1]
    p = spec.effective_parallelism
    labels = {COMPONENT_LABEL: SWEEP_COMPONENT, NAME_LABEL: spec.name, SWEEP_LABEL: spec.name}
    job["metadata"]["labels"] = labels
    job["metadata"]["annotations"]["modelfleet.io/sweep-spec"] = json.dumps(
        sweep_spec.to_dict(spec), sort_keys=True)
    js = job["spec"]
    js.update(completionMode="Indexed", completions=p, parallelism=p,
              # a killed worker pod is replaced (its trial was handed back); a deterministic
              # error (exit 42: the sweep aborted) still fails the Job at once
              backoffLimit=max(6, 2 * p))
    tmpl = js["template"]
    tmpl["metadata"]["labels"] = labels
    c = tmpl["spec"]["containers"][0]
    c["command"] = ["python", "-m", "tuning.sweep_worker"]
    c["env"] = [e for e in c["env"] if e["name"] not in ("TRAIN_PARAMS", "EPOCHS")] + [
        {"name": "SWEEP_STUDY", "value": study},
        {"name": "FLEET_OPTUNA_STORAGE", "valueFrom": {"secretKeyRef": {
            "name": secret_name(spec.name), "key": STORAGE_KEY}}},
    ]  # JOB_COMPLETION_INDEX: the Job controller sets it in Indexed pods
    if spec.mode == "pod-per-trial":
        # the sweep's Job is its controller: one pod, no GPUs; trials get their own Jobs
        js.update(completionMode="NonIndexed", completions=1, parallelism=1, backoffLimit=3)
        tmpl["spec"]["serviceAccountName"] = "fleet-sweep-controller"
        c["command"] = ["python", "-m", "tuning.sweep_controller"]
        c.pop("resources", None)
        c.pop("ports", None)
    return job


def _secret(spec: sweep_spec.SweepSpec, namespace: str, url: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": secret_name(spec.name), "namespace": namespace,
                         "labels": {SWEEP_LABEL: spec.name}},
            "stringData": {STORAGE_KEY: url}}


@dataclass(frozen=True)
class Launched:
    name: str
    namespace: str
    study: str
    job: str
    warnings: tuple[str, ...]


def create_study(url: str, spec: sweep_spec.SweepSpec, study: str) -> None:
    import optuna
    from optuna.storages import RDBStorage
    from sqlalchemy.pool import NullPool

    storage = RDBStorage(url, engine_kwargs={"poolclass": NullPool,
                                             "connect_args": {"connect_timeout": 5}})
    try:
        s = optuna.create_study(study_name=study, storage=storage,
                                direction=spec.objective.direction)
    except optuna.exceptions.DuplicatedStudyError:
        raise SweepError(f"a study named {study} already exists in the storage; resume it with "
                         f"`fleet sweep resume {spec.name}` or pick another --name") from None
    s.set_user_attr("modelfleet_spec", sweep_spec.to_dict(spec))


def delete_study(url: str, study: str) -> None:
    import optuna

    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=study, storage=url)


def launch(client: Any, spec: sweep_spec.SweepSpec, warnings: list[str], url: str, *,
           runtime_class: str | None, webhdfs_url: str, image: str, say: Say) -> Launched:
    ns = client.namespace if spec.namespace is None else spec.namespace
    study = sweep_store.study_name(ns, spec.name)
    with contextlib.suppress(NotFound):
        client.get(path_of("Job", ns, spec.name))
        raise SweepError(f'jobs.batch "{spec.name}" already exists in {ns}; `fleet sweep '
                         f"resume {spec.name}` continues a stopped sweep")
    if spec.gpus:
        largest = largest_gpu_node(client)
        if largest is not None and largest[0] < spec.gpus:
            raise SweepError(f"unschedulable: no node has {spec.gpus} allocatable "
                             f"nvidia.com/gpu per pod (the most on one node: {largest[0]})")
    job = build_job(spec, ns, runtime_class=runtime_class, webhdfs_url=webhdfs_url,
                    image=image, study=study)
    try:
        client.post(path_of("Job", ns), job, {"dryRun": "All"})
    except FleetError as exc:
        raise SweepError(f"the server rejects job/{spec.name}: {exc.detail or exc}. Nothing "
                         "was created.") from exc
    try:
        eng = sweep_store.engine(url)
        sweep_store.ensure_schema(eng)
    except Exception as exc:
        raise SweepError(f"storage unreachable ({redact(url)}): "
                         f"{str(exc).splitlines()[0]}. Nothing was created.") from exc
    create_study(url, spec, study)
    undo: list[Callable[[], None]] = [lambda: delete_study(url, study)]
    try:
        if not sweep_store.create(eng, ns, spec.name, sweep_spec.to_dict(spec),
                                  spec.budget.max_trials or 0):
            raise SweepError(f"sweep {study} already exists in the storage")
        undo.append(lambda: sweep_store.delete(eng, study))
        ensure_rbac(client, ns, say)
        secret = _secret(spec, ns, url)
        try:
            client.post(path_of("Secret", ns), secret)
        except FleetError as exc:
            if exc.status != 409:
                raise
            client.put(path_of("Secret", ns, secret_name(spec.name)), secret)
        undo.append(lambda: client.delete(path_of("Secret", ns, secret_name(spec.name))))
        client.post(path_of("Job", ns), job)
    except BaseException:
        for step in reversed(undo):
            with contextlib.suppress(Exception):
                step()
        raise
    say(f"sweep {spec.name}: study {study}, job.batch/{spec.name} with "
        f"{spec.effective_parallelism} worker pod(s), {spec.budget.max_trials} trials")
    return Launched(spec.name, ns, study, spec.name, tuple(warnings))


# ---- reading from Kubernetes --------------------------------------------------------------

def summary_of(job: dict[str, Any]) -> dict[str, Any]:
    raw = (job["metadata"].get("annotations") or {}).get(SWEEP_ANNOTATION, "")
    try:
        doc = json.loads(raw) if raw else {}
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}


def spec_of(job: dict[str, Any]) -> dict[str, Any]:
    raw = (job["metadata"].get("annotations") or {}).get("modelfleet.io/sweep-spec", "{}")
    try:
        return json.loads(raw)
    except ValueError:
        return {}


def list_sweeps(client: Any, namespace: str | None) -> list[dict[str, Any]]:
    jobs = client.get(collection_path("batch/v1", "jobs", namespace),
                      {"labelSelector": f"{COMPONENT_LABEL}={SWEEP_COMPONENT}"})["items"]
    return [job_row(j) for j in jobs]


def job_row(job: dict[str, Any]) -> dict[str, Any]:
    md, st = job["metadata"], job.get("status") or {}
    s = summary_of(job)
    spec = spec_of(job)
    conds = {c["type"]: c for c in st.get("conditions") or [] if c.get("status") == "True"}
    state = s.get("state") or "pending"
    if job["spec"].get("suspend") and state == "running":
        state = "stopped"
    if "Failed" in conds and state == "running":
        state = "failed"
    return {"name": md["name"], "namespace": md["namespace"], "state": state,
            "reason": s.get("reason", "") or (conds.get("Failed") or {}).get("message", ""),
            "max_trials": s.get("max_trials") or (spec.get("budget") or {}).get("max_trials"),
            **{k: s.get(k, 0) for k in ("complete", "running", "pruned", "failed", "waiting")},
            "best_value": s.get("best_value"), "best_trial": s.get("best_trial"),
            "metric": s.get("metric", ""), "direction": s.get("direction", ""),
            "pods_active": st.get("active", 0), "pods_ready": st.get("ready", 0),
            "created": md.get("creationTimestamp"), "promotion": s.get("promotion")}


def pod_states(client: Any, namespace: str, name: str) -> dict[str, Any]:
    """Worker pods running / pending, and why the pending ones wait (e.g. no free GPUs)."""
    pods = client.get(collection_path("v1", "pods", namespace),
                      {"labelSelector": f"batch.kubernetes.io/job-name={name}"})["items"]
    running = pending = 0
    why = ""
    for p in pods:
        phase = (p.get("status") or {}).get("phase")
        if phase == "Running":
            running += 1
        elif phase == "Pending":
            pending += 1
            for c in (p.get("status") or {}).get("conditions") or []:
                if c.get("type") == "PodScheduled" and c.get("status") == "False":
                    why = (c.get("message") or c.get("reason") or "").strip()
    return {"running": running, "pending": pending, "pending_reason": why}


def trials_of(client: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    try:
        cm = client.get(path_of("ConfigMap", namespace, f"{name}-trials"))
    except NotFound:
        return []
    try:
        return json.loads((cm.get("data") or {}).get(TRIALS_KEY, "[]"))
    except ValueError:
        return []


def get_job(client: Any, namespace: str, name: str) -> dict[str, Any]:
    try:
        return client.get(path_of("Job", namespace, name))
    except NotFound:
        raise SweepError(f'no sweep "{name}" in {namespace} (fleet sweep ls lists them)'
                         ) from None


# ---- stop / resume --------------------------------------------------------------------------

def stop(client: Any, namespace: str, name: str, url: str | None, say: Say,
         timeout: float = 90.0) -> None:
    get_job(client, namespace, name)
    study = sweep_store.study_name(namespace, name)
    if url:
        sweep_store.set_state(sweep_store.engine(url), study, "stopped", "stopped by user",
                              expect=("running",))
    client.patch(path_of("Job", namespace, name), {"spec": {"suspend": True}}, MERGE_PATCH)
    say(f"job.batch/{name} suspended: its worker pods hand back their running trials")
    deadline = time.monotonic() + timeout
    while _pods(client, namespace, name):
        if time.monotonic() >= deadline:
            raise SweepError(f"worker pods of {name} still running after {timeout:.0f} s")
        time.sleep(0.5)
    if url:
        row = sweep_store.get(sweep_store.engine(url), study)
        # an aborted sweep's interrupted trials stay failed: nothing is to run them again
        _fail_leftovers(url, study, say,
                        requeue_interrupted=row is not None and row.state == "stopped")


def _pods(client: Any, namespace: str, name: str) -> list[dict[str, Any]]:
    pods = client.get(collection_path("v1", "pods", namespace),
                      {"labelSelector": f"batch.kubernetes.io/job-name={name}"})["items"]
    return [p for p in pods if (p.get("status") or {}).get("phase") in ("Pending", "Running")]


def _fail_leftovers(url: str, study: str, say: Say, *,
                    requeue_interrupted: bool = True) -> None:
    """Trials still RUNNING after every worker stopped (a pod that died without SIGTERM):
    fail them and queue their retries, so the study holds no zombie. Also an interrupted
    trial without its retry (a worker killed between failing it and queueing the retry, e.g.
    past its grace period): queue it now, so `resume` runs it."""
    import optuna
    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    s = optuna.load_study(study_name=study, storage=url)
    storage = s._storage
    with warnings.catch_warnings():  # "experimental" in Optuna: said once in the README
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=sweep_store.MAX_RETRY)

    def requeue(t: Any) -> bool:
        """Queue the retry unless the trial has had MAX_RETRY already (the callback's rule)."""
        if len(t.system_attrs.get("retry_history", ())) >= sweep_store.MAX_RETRY:
            return False
        retry(s, t)
        return True

    for t in s.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            if storage.set_trial_state_values(t._trial_id, state=TrialState.FAIL):
                again = requeue_interrupted and requeue(storage.get_trial(t._trial_id))
                say(f"trial {t.number} was still running: failed"
                    + (" and re-queued" if again else ""))
    if not requeue_interrupted:
        return
    trials = s.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    for t in trials:
        if (t.state == TrialState.FAIL and t.number not in retried
                and str(t.user_attrs.get("fail_reason", "")).startswith(sweep_store.INTERRUPTED)
                and requeue(t)):
            say(f"trial {t.number} was interrupted but not re-queued: re-queued")


def resume(client: Any, namespace: str, name: str, url: str | None, say: Say) -> None:
    job = get_job(client, namespace, name)
    study = sweep_store.study_name(namespace, name)
    if url:
        eng = sweep_store.engine(url)
        row = sweep_store.get(eng, study)
        if row is None:
            raise SweepError(f"no study {study} in the storage")
        if row.state == "complete":
            raise SweepError(f"sweep {name} is complete ({row.max_trials} trials); nothing to "
                             "resume")
        sweep_store.set_state(eng, study, "running", "", expect=("stopped", "aborted"))
    conds = {c["type"] for c in (job.get("status") or {}).get("conditions") or []
             if c.get("status") == "True"}
    if conds & {"Complete", "Failed"}:
        fresh = {k: v for k, v in job.items() if k in ("apiVersion", "kind")}
        md = job["metadata"]
        fresh["metadata"] = {k: md[k] for k in ("name", "namespace", "labels", "annotations")
                             if k in md}
        spec = json.loads(json.dumps(job["spec"]))
        spec.pop("selector", None)
        spec["suspend"] = False
        tmpl_labels = spec["template"]["metadata"].get("labels", {})
        for key in list(tmpl_labels):
            if key.startswith(("batch.kubernetes.io/", "controller-uid", "job-name")):
                tmpl_labels.pop(key)
        fresh["spec"] = spec
        client.delete(path_of("Job", namespace, name), {"propagationPolicy": "Background"})
        deadline = time.monotonic() + 60
        while True:
            try:
                client.get(path_of("Job", namespace, name))
            except NotFound:
                break
            if time.monotonic() >= deadline:
                raise SweepError(f"old job {name} not gone after 60 s")
            time.sleep(0.3)
        client.post(path_of("Job", namespace), fresh)
        say(f"job.batch/{name} recreated")
    else:
        client.patch(path_of("Job", namespace, name), {"spec": {"suspend": False}}, MERGE_PATCH)
        say(f"job.batch/{name} resumed")
