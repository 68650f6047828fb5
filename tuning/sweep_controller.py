"""Pod-per-trial mode: one controller pod asks Optuna and runs each trial as its own Job.

For trials that need isolation, or W > 1 workers (distributed TensorFlow: an Indexed Job with
a headless Service, as `fleet train --workers`). This is Katib's execution model — a Job and
pods per trial, code installed and data staged in every trial — kept for those cases and as
the peer the worker pool is measured against (bench/tuning/bench_sweep.py).

The controller (`python -m tuning.sweep_controller`, the sweep Job's single pod):
- keeps `parallelism` trial Jobs running: a queued retry first, else a budget slot (the same
  exact cap as the pool) and `study.ask(fixed_distributions=…)`, so the trial's params exist
  before its pods start; each trial pod runs `tuning.sweep_worker` for that trial number and
  reports, prunes and tells like a pool worker (the chief, for W > 1);
- fails a trial whose Job failed while the trial was still RUNNING (a pod lost before it could
  tell) and queues its retry; stale heartbeats are failed the same way;
- publishes the sweep's summary, completes the sweep (exactly once) and auto-promotes.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
import warnings
from typing import Any

from tuning import exitcodes, sweep_store
from tuning.contract import TrainerError
from tuning.sweep_worker import (
    MAX_RETRY,
    SweepAborted,
    Worker,
    WorkerConfig,
    with_db_retry,
)

log = logging.getLogger("sweep.controller")
TRIAL_COMPONENT = "sweep-trial"
TRIAL_LABEL = "modelfleet.io/trial"
POLL_S = 1.0
STOP = threading.Event()


def trial_job_name(sweep: str, number: int) -> str:
    return f"{sweep}-t{number}"


def build_trial_objects(sweep_job: dict[str, Any], spec: Any, number: int,
                        owner_uid: str) -> list[dict[str, Any]]:
    """The trial's Job (Indexed with W pods when workers_per_trial > 1) and Service."""
    import json

    name = trial_job_name(spec.name, number)
    ns = sweep_job["metadata"]["namespace"]
    tmpl = json.loads(json.dumps(sweep_job["spec"]["template"]))
    labels = {"app.kubernetes.io/component": TRIAL_COMPONENT,
              "app.kubernetes.io/name": spec.name, "modelfleet.io/sweep": spec.name,
              TRIAL_LABEL: str(number)}
    tmpl["metadata"] = {"labels": labels}
    pod = tmpl["spec"]
    pod["serviceAccountName"] = "fleet-trainer"
    c = pod["containers"][0]
    c["command"] = ["python", "-m", "tuning.sweep_worker"]
    env = [e for e in c["env"] if e["name"] not in ("SWEEP_ROLE",)]
    env.append({"name": "SWEEP_TRIAL", "value": str(number)})
    w = spec.workers_per_trial
    job_spec: dict[str, Any] = {
        "completions": w, "parallelism": w, "backoffLimit": 0,
        "ttlSecondsAfterFinished": 3600,
        "podFailurePolicy": sweep_job["spec"].get("podFailurePolicy"),
        "template": tmpl,
    }
    objs: list[dict[str, Any]] = []
    owner = [{"apiVersion": "batch/v1", "kind": "Job", "name": spec.name, "uid": owner_uid,
              "controller": False, "blockOwnerDeletion": False}]
    if w > 1:
        svc = f"{name}-workers"
        job_spec["completionMode"] = "Indexed"
        pod["subdomain"] = svc
        env = [e for e in env if e["name"] not in ("NUM_WORKERS", "SUBDOMAIN", "TF_PORT")]
        env += [{"name": "NUM_WORKERS", "value": str(w)}, {"name": "SUBDOMAIN", "value": svc},
                {"name": "TF_PORT", "value": "2222"}]
        objs.append({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": svc, "namespace": ns, "labels": labels,
                                  "ownerReferences": owner},
                     "spec": {"clusterIP": "None", "publishNotReadyAddresses": True,
                              "selector": {"batch.kubernetes.io/job-name": name},
                              "ports": [{"name": "tf", "port": 2222}]}})
    c["env"] = env
    resources: dict[str, Any] = {}
    if spec.gpus:
        resources.setdefault("limits", {})["nvidia.com/gpu"] = str(spec.gpus)
    for key, value in (("cpu", spec.cpu), ("memory", spec.memory)):
        if value:
            resources.setdefault("requests", {})[key] = value
            resources.setdefault("limits", {})[key] = value
    if resources:
        c["resources"] = resources
    objs.append({"apiVersion": "batch/v1", "kind": "Job",
                 "metadata": {"name": name, "namespace": ns, "labels": labels,
                              "ownerReferences": owner},
                 "spec": job_spec})
    return objs


class Controller:
    def __init__(self, worker: Worker, client: Any) -> None:
        self.w = worker
        self.client = client
        self.ns = worker.cfg.namespace
        self.sweep_job = client.get(f"/apis/batch/v1/namespaces/{self.ns}/jobs/"
                                    f"{worker.cfg.job}")
        self.handled: set[str] = set()

    def _jobs(self) -> list[dict[str, Any]]:
        return self.client.get(f"/apis/batch/v1/namespaces/{self.ns}/jobs", {
            "labelSelector": f"modelfleet.io/sweep={self.w.spec.name},"
                             f"app.kubernetes.io/component={TRIAL_COMPONENT}"})["items"]

    @staticmethod
    def _finished(job: dict[str, Any]) -> str:
        for c in (job.get("status") or {}).get("conditions") or []:
            if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
                return c["type"]
        return ""

    def _create(self, number: int) -> None:
        from fleet.errors import FleetError

        for obj in build_trial_objects(self.sweep_job, self.w.spec, number,
                                       self.sweep_job["metadata"]["uid"]):
            kind = "services" if obj["kind"] == "Service" else "jobs"
            base = "/api/v1" if kind == "services" else "/apis/batch/v1"
            try:
                self.client.post(f"{base}/namespaces/{self.ns}/{kind}", obj)
            except FleetError as exc:
                if exc.status != 409:
                    raise
        log.info("trial %d: job.batch/%s created", number,
                 trial_job_name(self.w.spec.name, number))

    def _reap(self, jobs: list[dict[str, Any]]) -> None:
        """A trial Job that failed while its trial is still RUNNING: fail it, queue a retry."""
        import optuna
        from optuna.storages import RetryHeartbeatStaleTrialCallback
        from optuna.trial import TrialState

        for job in jobs:
            name = job["metadata"]["name"]
            if name in self.handled or self._finished(job) != "Failed":
                continue
            number = int(job["metadata"]["labels"][TRIAL_LABEL])
            tid = self.w.storage.get_trial_id_from_study_id_trial_number(self.w.study_id,
                                                                         number)
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                if self.w.storage.set_trial_state_values(tid, state=TrialState.FAIL):
                    self.w.storage.set_trial_user_attr(
                        tid, "fail_reason", "its trial Job failed before the trial ended")
                    RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(
                        self.w.study, self.w.storage.get_trial(tid))
                    log.warning("trial %d: job %s failed; trial failed and re-queued",
                                number, name)
            self.handled.add(name)

    def _next(self) -> int | None:
        """A queued retry, else a new trial within the budget; the trial's number."""
        from tuning import sweep_spec

        tid = self.w._pop_waiting()
        if tid is not None:
            return self.w.storage.get_trial(tid).number
        self.w.check_abort()
        if sweep_store.reserve_slot(self.w.eng, self.w.cfg.study) is None:
            return None


        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            trial = self.w.study.ask(fixed_distributions=sweep_spec.distributions(self.w.spec))
        return trial.number

    def run(self) -> int:
        from optuna.storages import fail_stale_trials

        spec = self.w.spec
        while not STOP.is_set():
            row = with_db_retry("reading the sweep",
                                lambda: sweep_store.get(self.w.eng, self.w.cfg.study))
            if row is None or row.state != "running":
                if row is not None and row.state == "aborted":
                    raise SweepAborted(row.reason)
                break
            jobs = with_db_retry("listing trial jobs", self._jobs)
            with_db_retry("reaping", lambda j=jobs: self._reap(j))
            with_db_retry("failing stale trials", lambda: fail_stale_trials(self.w.study))
            active = [j for j in jobs if not self._finished(j)]
            started = 0
            while (len(active) + started < spec.effective_parallelism
                   and not self.w.timed_out(row)):
                number = with_db_retry("asking", self._next)
                if number is None:
                    break
                self._create(number)
                started += 1
            if not active and not started and not with_db_retry(
                    "checking", self.w.unfinished_elsewhere):
                break
            time.sleep(POLL_S)
        self.w.finish()
        return exitcodes.OK


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: STOP.set())
    import optuna

    # heartbeats and stale-trial retries are "experimental" in Optuna; say so once, in the
    # README, not on every trial in every pod's log
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    try:
        cfg = WorkerConfig.from_env(dict(os.environ))
        worker = Worker(cfg)
        from fleet.kube import KubeClient
        from fleet.kubeconfig import in_cluster_credentials
        from tuning.sweep_summary import SummaryPublisher

        client = KubeClient(in_cluster_credentials(cfg.namespace), timeout=30.0)
        publisher = SummaryPublisher.start_for(worker)
        try:
            return Controller(worker, client).run()
        finally:
            worker.heartbeat.stop()
            if publisher is not None:
                publisher.stop()
    except SweepAborted as exc:
        log.error("sweep aborted: %s", exc)
        return exitcodes.DETERMINISTIC
    except TrainerError as exc:
        log.error("deterministic failure: %s", exc)
        return exitcodes.DETERMINISTIC


if __name__ == "__main__":
    sys.exit(main())
