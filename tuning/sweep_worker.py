"""A sweep worker pod: install the code once, stage the data once, run trials until the budget
is spent. `python -m tuning.sweep_worker` (the trainer image), one per index of the sweep's
Indexed Job; 0 Kubernetes objects per trial.

Per trial: reserve a budget slot (exact cap, `tuning.sweep_store`), ask Optuna, run the trial in
its own process of the per-pod environment (`tuning.trial_process`: forked from a zygote that
imported TensorFlow once, so a trial pays no import; GPU memory is released and crashes are
contained when it exits), relay each epoch's metric as an intermediate value, let the pruner
decide across all workers, and tell the result as soon as the model is published. A heartbeat
thread keeps the trial alive in storage; a pod killed mid-trial stops it, and any surviving
worker fails the stale trial and re-queues it (`fail_stale_trials`
+ `RetryHeartbeatStaleTrialCallback`) within the grace period.

Failures: the trainer's deterministic error (exit 42) fails the trial with its reason; when the
first K trials all fail with the same reason, or failures exceed max_failed, the sweep is
aborted with that reason and the workers exit 42 (the Job's podFailurePolicy fails it). A
database outage is waited out with backoff.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tuning import exitcodes, sweep_store
from tuning.contract import TrainerError
from tuning.trial_process import SpawnedTrial, TrialHandle, Zygote

log = logging.getLogger("sweep")
T = TypeVar("T")
HEARTBEAT_S = 2
GRACE_S = 6
MAX_RETRY = sweep_store.MAX_RETRY
POOL_SIZE = 2  # database connections per worker pod, at most
DB_PATIENCE_S = 300.0


class Terminated(BaseException):
    """SIGTERM (the pod is being deleted or the sweep stopped): hand the trial back."""


TERMINATING = threading.Event()
CURRENT_CHILD: list[TrialHandle] = []  # the running trial's process, if any
TRIAL_START_ENV = "FLEET_TRIAL_START"  # "fork" (a zygote, the pool's default) or "spawn"


def on_sigterm(_sig: int, _frame: Any) -> None:
    """Only set a flag and stop the trial process: the main thread then hands the trial back
    at a safe point (never in the middle of a storage call)."""
    TERMINATING.set()
    for handle in CURRENT_CHILD:
        handle.kill()


class SweepAborted(Exception):
    """The sweep was aborted (by this worker or another); the reason is the message."""


def _transient(exc: BaseException) -> bool:
    """A lost or refused database connection (worth waiting out), not a bad statement."""
    from optuna.exceptions import StorageInternalError
    from sqlalchemy.exc import DBAPIError, OperationalError

    if isinstance(exc, StorageInternalError) and exc.__cause__ is not None:
        return _transient(exc.__cause__)
    if isinstance(exc, OperationalError):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def with_db_retry(what: str, fn: Callable[[], T], patience: float = DB_PATIENCE_S) -> T:
    """Run a storage call, waiting out a database outage with capped exponential backoff."""
    deadline = time.monotonic() + patience
    delay = 0.5
    while True:
        try:
            return fn()
        except Exception as exc:
            if not _transient(exc) or time.monotonic() >= deadline:
                raise
            log.warning("database unavailable during %s (%s); retrying in %.1f s", what,
                        str(exc).splitlines()[0][:200], delay)
            time.sleep(delay)
            delay = min(delay * 2, 10.0)


@dataclass
class WorkerConfig:
    study: str
    storage_url: str
    job: str
    pod: str
    namespace: str
    index: int
    webhdfs_url: str = ""
    work_dir: Path = field(default_factory=lambda: Path("/scratch"))
    gpus: int = 0
    trial: int | None = None  # pod-per-trial: run just this trial number
    workers: int = 1  # pod-per-trial with W > 1: this pod's share of a distributed trial
    tf_config: dict[str, Any] | None = None

    @classmethod
    def from_env(cls, env: dict[str, str]) -> WorkerConfig:
        missing = [k for k in ("SWEEP_STUDY", "FLEET_OPTUNA_STORAGE") if not env.get(k)]
        if missing:
            raise TrainerError(f"{', '.join(missing)} not set (the sweep's Job sets them)")
        gpus_env = env.get("CUDA_VISIBLE_DEVICES", "")
        trial = env.get("SWEEP_TRIAL")
        workers, tf_config = 1, None
        index = int(env.get("JOB_COMPLETION_INDEX", "0") or 0)
        if trial is not None and env.get("NUM_WORKERS", "1") != "1":
            from tuning import distributed

            index, workers, tf_config = distributed.from_env(env)
        return cls(study=env["SWEEP_STUDY"], storage_url=env["FLEET_OPTUNA_STORAGE"],
                   job=env.get("JOB_NAME", ""), pod=env.get("POD_NAME", ""),
                   namespace=env.get("POD_NAMESPACE", ""),
                   index=index, trial=int(trial) if trial is not None else None,
                   workers=workers, tf_config=tf_config,
                   webhdfs_url=env.get("WEBHDFS_URL", ""),
                   work_dir=Path(env.get("WORK_DIR") or "/scratch"),
                   gpus=len([g for g in gpus_env.split(",") if g.strip()]) if gpus_env else 0)


class Heartbeat:
    """Records the running trial's heartbeat every HEARTBEAT_S (RDB storage), and fails the
    trials of workers whose heartbeat stopped (a pod that vanished without SIGTERM), so a
    dead pod's trial is failed and re-queued within GRACE_S + HEARTBEAT_S even while every
    surviving worker is busy in a long trial."""

    def __init__(self, storage: Any, study: Any = None) -> None:
        self.storage = storage
        self.study = study
        self.trial_id: int | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            tid = self.trial_id
            try:
                if tid is not None:
                    self.storage.record_heartbeat(tid)
                if self.study is not None:
                    from optuna.storages import fail_stale_trials

                    fail_stale_trials(self.study)
            except Exception as exc:  # an outage: the trial may go stale; tell() copes
                log.warning("heartbeat for trial id %s failed: %s", tid, exc)

    def stop(self) -> None:
        self._stop.set()


class Worker:
    def __init__(self, cfg: WorkerConfig) -> None:
        import optuna
        from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

        from tuning import sweep_spec

        self.cfg = cfg
        # One engine for Optuna and the sweep table, at most POOL_SIZE connections per worker
        # (the trial loop, the heartbeat and the summary threads share them). Kept open:
        # a new connection per call (TCP + SCRAM) was ~80 sessions per trial. pre_ping makes
        # a connection that a database restart broke a fresh one instead of an error.
        self.storage = with_db_retry("opening the storage", lambda: RDBStorage(
            cfg.storage_url,
            engine_kwargs={"pool_size": POOL_SIZE, "max_overflow": 0, "pool_pre_ping": True,
                           "pool_timeout": 60, "connect_args": {"connect_timeout": 5}},
            heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                max_retry=MAX_RETRY)))
        self.eng = self.storage.engine
        row = with_db_retry("reading the sweep", lambda: sweep_store.get(self.eng, cfg.study))
        if row is None:
            raise TrainerError(f"sweep {cfg.study} does not exist in the storage (launch it "
                               "with `fleet sweep launch`)")
        self.spec = sweep_spec.from_dict(row.spec)
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.study = with_db_retry("loading the study", lambda: optuna.load_study(
            study_name=cfg.study, storage=self.storage,
            sampler=sweep_spec.make_sampler(self.spec, worker_index=cfg.index),
            pruner=sweep_spec.make_pruner(self.spec)))
        self.study_id = self.storage.get_study_id_from_name(cfg.study)
        self.heartbeat = Heartbeat(self.storage, self.study)
        self.python: Path | None = None
        self.data_dir: Path | None = None
        self.entry_point = ""
        self.code_version = ""
        self.data_info: dict[str, Any] = {}
        self.spare: SpawnedTrial | None = None
        self.zygote: Zygote | None = None
        self.fork_failed = False
        self.retrying = False  # the trial next_trial() returned re-runs a failed one
        self.trials_run = 0

    # -- setup ---------------------------------------------------------------------------
    def prepare(self) -> None:
        from tuning.code_install import install
        from tuning.staging import stage

        code = install(self.spec.code, self.cfg.work_dir / "code", self.cfg.webhdfs_url)
        log.info("installed %s once for this pod: %.1f kB in %.2f s + %.2f s", code.code_version,
                 code.bytes / 1e3, code.fetch_seconds, code.install_seconds)
        data = stage(self.spec.data, self.cfg.work_dir / "data", self.cfg.webhdfs_url)
        log.info("staged dataset %s version %s once for this pod: %.2f MB in %.2f s "
                 "(%.1f MB/s)", data.info.get("name", "?"), data.version, data.bytes / 1e6,
                 data.seconds, data.mb_per_s)
        self.python, self.entry_point = code.python, code.entry_point
        self.code_version = code.code_version
        self.data_dir, self.data_info = data.local_dir, {**data.info, "uri": data.uri}

    def _child_env(self) -> dict[str, str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
        if self.cfg.tf_config:
            env["TF_CONFIG"] = json.dumps(self.cfg.tf_config)
        return env

    def _warm(self) -> SpawnedTrial:
        assert self.python is not None
        return SpawnedTrial(self.python, self._child_env())

    def _forks(self) -> bool:
        """Pool trials of one process each fork from a zygote unless FLEET_TRIAL_START=spawn
        (pod-per-trial pods run one trial: a fresh interpreter costs the same there)."""
        return (self.cfg.trial is None and self.cfg.workers == 1
                and os.environ.get(TRIAL_START_ENV, "fork") != "spawn")

    def _start_trial(self, cfg: dict[str, Any]) -> TrialHandle:
        if self._forks() and not self.fork_failed:
            assert self.python is not None
            for _attempt in range(2):
                if self.zygote is None or self.zygote.dead:
                    if self.zygote is not None:
                        log.warning("the trial zygote died (exit %s); starting a new one",
                                    self.zygote.proc.poll())
                    self.zygote = Zygote(self.python, self._child_env())
                try:
                    return self.zygote.start(cfg)
                except RuntimeError as exc:
                    log.warning("cannot fork a trial process: %s", exc)
                    self.zygote.kill()
                    self.zygote = None
            log.warning("forking trial processes failed twice: this pod spawns a fresh "
                        "interpreter per trial from now on")
            self.fork_failed = True
        child = (self.spare or self._warm()).start(cfg)
        self.spare = None
        if self.cfg.trial is None:  # pool: ready for the next trial while this one runs
            self.spare = self._warm()
        return child

    def close_processes(self) -> None:
        """The spare or the zygote, at the end of this worker."""
        if self.spare is not None:
            self.spare.dismiss()
            self.spare = None
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None

    # -- trial acquisition -----------------------------------------------------------------
    def _pop_waiting(self) -> int | None:
        from optuna.trial import TrialState

        for t in self.storage.get_all_trials(self.study_id, deepcopy=False,
                                             states=(TrialState.WAITING,)):
            if self.storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                return t._trial_id
        return None

    def next_trial(self) -> Any | None:
        """A retry waiting in storage, else a new trial if a budget slot is left."""
        import optuna
        from optuna.storages import fail_stale_trials

        with_db_retry("failing stale trials", lambda: fail_stale_trials(self.study))
        # the abort rules first: after this worker's own failure, and before any retry runs
        with_db_retry("checking abort rules", self.check_abort)
        tid = with_db_retry("popping a retry", self._pop_waiting)
        self.retrying = tid is not None
        if tid is not None:
            return optuna.Trial(self.study, tid)
        slot = with_db_retry("reserving a slot",
                             lambda: sweep_store.reserve_slot(self.eng, self.cfg.study))
        if slot is None:
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "heartbeat is supposed to be used with optimize"
            trial = with_db_retry("asking for a trial", self.study.ask)
        if "failed_trial" in self.storage.get_trial_system_attrs(trial._trial_id):
            # ask() popped a retry queued meanwhile: that is not a new trial
            self.retrying = True
            with_db_retry("releasing a slot",
                          lambda: sweep_store.release_slot(self.eng, self.cfg.study))
        return trial

    def unfinished_elsewhere(self) -> int:
        from optuna.trial import TrialState

        return len(self.storage.get_all_trials(
            self.study_id, deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)))

    # -- running one trial -----------------------------------------------------------------
    def run_trial(self, trial: Any) -> tuple[str, float | None, str]:
        """(state, value, reason) of one trial, already told to the study."""
        from optuna.trial import TrialState

        from tuning import sweep_spec

        spec = self.spec
        params = sweep_spec.suggest(trial, spec)
        attrs: list[tuple[str, Any]] = [("pod", self.cfg.pod), ("job", self.cfg.job),
                                        ("job_index", self.cfg.index)]
        if self.retrying:  # a retry inherits the failed trial's user attrs: reset the outcome
            attrs += [("fail_reason", ""), ("deterministic", False)]
        for key, value in attrs:
            trial.set_user_attr(key, value)
        all_params = {**dict(spec.params), **params}
        work = self.cfg.work_dir / "trials" / str(trial.number)
        result_file = work / "result.json"
        cfg = {
            "entry_point": self.entry_point, "data_dir": str(self.data_dir),
            "work_dir": str(work), "params": all_params, "epochs": spec.epochs,
            "workers": self.cfg.workers, "index": self.cfg.index if self.cfg.workers > 1 else 0,
            "tf_config": self.cfg.tf_config, "collective_timeout_s": 120.0,
            "gpus": self.cfg.gpus, "output_uri": spec.output,
            "webhdfs_url": self.cfg.webhdfs_url, "result_file": str(result_file),
            "provenance": {"job": self.cfg.job, "pod": self.cfg.pod,
                           "namespace": self.cfg.namespace, "code_uri": spec.code,
                           "code_version": self.code_version, "data_uri": spec.data,
                           "dataset": self.data_info, "params": all_params,
                           "epochs": spec.epochs,
                           "source": f"sweep {spec.name} trial {trial.number}",
                           "sweep": spec.name, "trial": trial.number},
        }
        self.heartbeat.trial_id = trial._trial_id
        started = time.perf_counter()
        child = self._start_trial(cfg)
        metric = spec.objective.metric
        CURRENT_CHILD[:] = [child]
        if TERMINATING.is_set():
            child.kill()
        pruned, last, reason = self._follow(trial, child, metric)
        code = child.finish()  # 0 at once when the result was handed over
        CURRENT_CHILD.clear()
        result = child.result
        if result is None and (TERMINATING.is_set() or code == -signal.SIGTERM):
            self._hand_back(trial, child)
            raise Terminated()
        self.heartbeat.trial_id = None
        wall = time.perf_counter() - started
        trial.set_user_attr("wall_s", round(wall, 3))
        if pruned:
            state, value = TrialState.PRUNED, last
        elif code == 0 and result is not None:
            trial.set_user_attr("model_uri", result.get("model_uri", ""))
            trial.set_user_attr("holdout_accuracy", result.get("value"))
            if last is None or not math.isfinite(last):
                state, value = TrialState.FAIL, None
                reason = reason or f"the trainer reported no finite {metric!r}"
            else:
                state, value = TrialState.COMPLETE, last
        else:
            state, value = TrialState.FAIL, None
            if code == exitcodes.DETERMINISTIC:
                reason = reason or "deterministic trainer error"
            else:
                reason = reason or f"trial process exited with {code}"
        if reason:
            trial.set_user_attr("fail_reason", reason[:500])
            trial.set_user_attr("deterministic", code == exitcodes.DETERMINISTIC)
        self._tell(trial, state, value)
        log.info("trial %d %s%s in %.1f s %s", trial.number, state.name.lower(),
                 f" {metric}={value:.4f}" if value is not None else "", wall,
                 json.dumps(params, sort_keys=True) + (f" ({reason})" if reason else ""))
        return state.name, value, reason

    def _follow(self, trial: Any, child: TrialHandle, metric: str
                ) -> tuple[bool, float | None, str]:
        """Relay the child's epochs to the study until it hands over its result, ends or is
        pruned."""
        last: float | None = None
        pruned = False
        reason = ""
        for event in child.events():
            if event.get("phase") == "failed":
                reason = str(event.get("message", ""))
            metrics = event.get("metrics") or {}
            if metric in metrics and event.get("epoch"):
                last = float(metrics[metric])
                step = int(event["epoch"])
                with_db_retry("reporting", lambda v=last, s=step: trial.report(v, s))
                if with_db_retry("pruning", trial.should_prune):
                    pruned = True
                    child.kill()
                    break
        return pruned, last, reason

    def _hand_back(self, trial: Any, child: TrialHandle) -> None:
        """Fail the interrupted trial and queue its retry, so nothing stays RUNNING. An aborted
        sweep gets no retry: its Job failing is what terminated this pod, and a WAITING trial
        would be left behind for nobody (a stopped sweep's retry is what `resume` runs)."""
        from optuna.storages import RetryHeartbeatStaleTrialCallback
        from optuna.trial import TrialState

        child.kill()
        with contextlib.suppress(RuntimeError):
            child.finish()
        self.heartbeat.trial_id = None
        trial.set_user_attr("fail_reason", sweep_store.INTERRUPTED)
        self._tell(trial, TrialState.FAIL, None)
        try:
            row = with_db_retry("reading the sweep",
                                lambda: sweep_store.get(self.eng, self.cfg.study), patience=10.0)
        except Exception as exc:  # noqa: BLE001 - then re-queue, as a stale trial would be
            log.warning("cannot read the sweep's state (%s): re-queueing", exc)
            row = None
        if row is not None and row.state == "aborted":
            log.warning("trial %d interrupted by SIGTERM: failed, not re-queued (the sweep "
                        "was aborted: %s)", trial.number, row.reason)
            return
        frozen = self.storage.get_trial(trial._trial_id)
        RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)(self.study, frozen)
        log.warning("trial %d interrupted by SIGTERM: failed and re-queued", trial.number)

    def _tell(self, trial: Any, state: Any, value: float | None) -> None:
        import optuna
        from optuna.trial import TrialState

        def tell() -> None:
            try:
                if state == TrialState.COMPLETE:
                    self.study.tell(trial, value)
                elif state == TrialState.PRUNED:
                    self.study.tell(trial, state=TrialState.PRUNED)
                else:
                    self.study.tell(trial, state=TrialState.FAIL)
            except optuna.exceptions.UpdateFinishedTrialError:
                log.warning("trial %d was already finished by another worker (stale during an "
                            "outage); result dropped", trial.number)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with_db_retry("telling the result", tell)

    # -- abort rules -------------------------------------------------------------------------
    def check_abort(self) -> None:
        from optuna.trial import TrialState

        spec = self.spec
        trials = self.storage.get_all_trials(self.study_id, deepcopy=False)
        failed = [t for t in trials if t.state == TrialState.FAIL]
        k = spec.abort_after_identical_failures
        first = sorted(trials, key=lambda t: t.number)[:k] if k else []
        reasons = {t.user_attrs.get("fail_reason", "") for t in first}
        why = ""
        if (k and len(first) == k and all(t.state == TrialState.FAIL for t in first)
                and len(reasons) == 1 and all(t.user_attrs.get("deterministic") for t in first)):
            why = f"the first {k} trials failed the same way: {reasons.pop()}"
        elif len(failed) > spec.budget.effective_max_failed:
            last = failed[-1].user_attrs.get("fail_reason", "")
            why = (f"{len(failed)} failed trials exceed max_failed "
                   f"{spec.budget.effective_max_failed} (last: {last})")
        if why and sweep_store.set_state(self.eng, self.cfg.study, "aborted", why,
                                         expect=("running",)):
            log.error("sweep aborted: %s", why)
        row = sweep_store.get(self.eng, self.cfg.study)
        if row is not None and row.state == "aborted":
            raise SweepAborted(row.reason)

    # -- the loop ----------------------------------------------------------------------------
    def timed_out(self, row: Any) -> bool:
        """The spec's timeout counts from the sweep's creation, for every pod (a replacement
        pod does not restart the clock)."""
        return bool(self.spec.budget.timeout) and row.age_s >= float(self.spec.budget.timeout)

    def run(self) -> int:
        try:
            self.prepare()
        except TrainerError as exc:
            why = f"pod setup failed: {exc}"
            if sweep_store.set_state(self.eng, self.cfg.study, "aborted", why,
                                     expect=("running",)):
                log.error("sweep aborted: %s", why)
            raise SweepAborted(why) from exc
        try:
            while True:
                if TERMINATING.is_set():
                    raise Terminated()
                row = with_db_retry("reading the sweep",
                                    lambda: sweep_store.get(self.eng, self.cfg.study))
                if row is None or row.state != "running":
                    log.info("sweep is %s; this worker stops", row.state if row else "gone")
                    if row is not None and row.state == "aborted":
                        raise SweepAborted(row.reason)
                    break
                if self.timed_out(row):
                    log.info("the sweep's timeout passed; no new trials")
                    break
                trial = self.next_trial()
                if trial is None:
                    if with_db_retry("checking", self.unfinished_elsewhere) == 0:
                        break
                    # trials elsewhere may still fail and be re-queued: keep watching them
                    time.sleep(HEARTBEAT_S)
                    continue
                self.run_trial(trial)
                self.trials_run += 1  # the abort rules are checked before the next trial
        finally:
            self.heartbeat.stop()
            self.close_processes()
        self.finish()
        log.info("worker %d done after %d trials", self.cfg.index, self.trials_run)
        return exitcodes.OK

    def run_one(self, number: int) -> int:
        """Pod-per-trial: run trial `number` (the controller asked for it) and exit."""
        import optuna

        self.prepare()
        tid = with_db_retry("finding the trial", lambda: self.storage
                            .get_trial_id_from_study_id_trial_number(self.study_id, number))
        trial = optuna.Trial(self.study, tid)
        self.retrying = True  # this pod may be the Job's retry of the trial: reset its outcome
        if self.cfg.workers > 1 and self.cfg.index != 0:
            return self._run_peer(trial)
        try:
            self.run_trial(trial)
        finally:
            self.heartbeat.stop()
            self.close_processes()
        return exitcodes.OK

    def _run_peer(self, trial: Any) -> int:
        """A non-chief worker of a distributed trial: train the same params, report nothing
        (the chief reports and tells; a prune on the chief ends the collective for all)."""
        self._wait_for_peers()
        params = {**dict(self.spec.params), **trial.params}
        work = self.cfg.work_dir / "trials" / str(trial.number)
        cfg = {"entry_point": self.entry_point, "data_dir": str(self.data_dir),
               "work_dir": str(work), "params": params, "epochs": self.spec.epochs,
               "workers": self.cfg.workers, "index": self.cfg.index,
               "tf_config": self.cfg.tf_config, "collective_timeout_s": 120.0,
               "gpus": self.cfg.gpus, "output_uri": self.spec.output,
               "webhdfs_url": self.cfg.webhdfs_url, "result_file": str(work / "result.json"),
               "provenance": {}}
        self.heartbeat.stop()
        child = self._warm().start(cfg)
        for _event in child.events():
            pass
        return child.finish()

    def _wait_for_peers(self) -> None:
        if self.cfg.tf_config:
            from tuning import distributed

            distributed.wait_for_peers(distributed.hosts_of(self.cfg.tf_config), timeout_s=120)

    def finish(self) -> None:
        """The last worker to see the budget spent marks the sweep complete (exactly once)."""
        if with_db_retry("checking", self.unfinished_elsewhere):
            return
        row = sweep_store.get(self.eng, self.cfg.study)
        if row is None:
            return
        if row.started >= row.max_trials:
            why = "budget spent"
        elif self.timed_out(row):
            why = f"timeout ({self.spec.budget.timeout:.0f} s) after {row.started} trials"
        else:
            return
        if sweep_store.set_state(self.eng, self.cfg.study, "complete", why,
                                 expect=("running",)):
            log.info("sweep complete: %s", why)
            from tuning import sweep_promote, sweep_summary

            sweep_promote.auto_promote(self)
            # worker 0 may have exited already: the finisher publishes the final summary
            sweep_summary.publish_final(self)


def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stdout,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    signal.signal(signal.SIGTERM, on_sigterm)
    import optuna

    # heartbeats and stale-trial retries are "experimental" in Optuna; say so once, in the
    # README, not on every trial in every pod's log
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    try:
        cfg = WorkerConfig.from_env(dict(os.environ))
        cfg.work_dir.mkdir(parents=True, exist_ok=True)
        worker = Worker(cfg)
        from tuning.sweep_summary import SummaryPublisher

        if cfg.trial is not None:
            if cfg.workers > 1 and cfg.index == 0:
                worker._wait_for_peers()
            return worker.run_one(cfg.trial)
        publisher = SummaryPublisher.start_for(worker)
        try:
            return worker.run()
        finally:
            if publisher is not None:
                publisher.stop()
    except Terminated:
        log.warning("terminated (SIGTERM): the running trial was handed back")
        return 143
    except SweepAborted as exc:
        log.error("sweep aborted: %s", exc)
        _termination(str(exc))
        return exitcodes.DETERMINISTIC
    except TrainerError as exc:
        log.error("deterministic failure: %s", exc)
        _termination(str(exc))
        return exitcodes.DETERMINISTIC


def _termination(text: str) -> None:
    try:
        with open(os.environ.get("TERMINATION_LOG", "/dev/termination-log"), "w") as fh:
            fh.write(text[:4000])
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
