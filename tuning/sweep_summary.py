"""What a sweep looks like from Kubernetes: a summary on its Job, its trials in a ConfigMap.

Worker 0 keeps both current (every PUBLISH_S while it runs): the Job annotation
`modelfleet.io/sweep` (state, counts, best value) is what `fleet sweep ls` and the TUI's sweeps
view list, through the Job watch they already have; the ConfigMap `<job>-trials` holds the
trials table (params, values, intermediate values, pod) that `fleet sweep show` and the TUI's
sweep detail render. So a laptop that reaches only the Kubernetes API, not the database inside
the cluster, still sees everything. The ConfigMap is bounded (MAX_TRIALS newest trials,
MAX_STEPS intermediate values each), far below the 1 MiB object limit.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from datetime import UTC, datetime
from typing import Any

from tuning.progress import MERGE_PATCH

log = logging.getLogger("sweep.summary")
SWEEP_ANNOTATION = "modelfleet.io/sweep"
TRIALS_KEY = "trials.json"
IMPORTANCES_KEY = "importances.json"
IMPORTANCE_EVERY_S = 30.0
MIN_TRIALS_FOR_IMPORTANCE = 4
SWEEP_LABEL = "modelfleet.io/sweep"
PUBLISH_S = 3.0
MAX_TRIALS = 2000
MAX_STEPS = 50


def _iso(dt: datetime | None) -> str | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(v: Any) -> float | None:
    return round(float(v), 6) if isinstance(v, int | float) and math.isfinite(v) else None


def trial_rows(trials: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for t in sorted(trials, key=lambda t: t.number)[-MAX_TRIALS:]:
        steps = sorted(t.intermediate_values.items())[-MAX_STEPS:]
        rows.append({
            "n": t.number, "state": t.state.name.lower(), "value": _num(t.value),
            "params": t.params, "pod": t.user_attrs.get("pod", ""),
            "index": t.user_attrs.get("job_index"),
            "steps": [[s, _num(v)] for s, v in steps],
            "start": _iso(t.datetime_start), "end": _iso(t.datetime_complete),
            "model_uri": t.user_attrs.get("model_uri", ""),
            "holdout": t.user_attrs.get("holdout_accuracy"),
            "reason": t.user_attrs.get("fail_reason") or "",
            "retry_of": t.system_attrs.get("failed_trial"),
        })
    return rows


def summarize(row: Any, trials: list[Any], direction: str, metric: str) -> dict[str, Any]:
    counts = {k: 0 for k in ("complete", "running", "pruned", "failed", "waiting")}
    for t in trials:
        key = {"COMPLETE": "complete", "RUNNING": "running", "PRUNED": "pruned",
               "FAIL": "failed", "WAITING": "waiting"}[t.state.name]
        counts[key] += 1
    done = [t for t in trials if t.state.name == "COMPLETE" and t.value is not None]
    best = (max if direction == "maximize" else min)(done, key=lambda t: t.value) if done \
        else None
    promotion = json.loads(row.promotion) if row.promotion else None
    return {
        "state": row.state, "reason": row.reason, "max_trials": row.max_trials,
        "started": row.started, **counts, "metric": metric, "direction": direction,
        "best_value": _num(best.value) if best else None,
        "best_trial": best.number if best else None,
        "promotion": promotion, "updated": _iso(datetime.now(UTC)),
    }


def importances(study: Any) -> dict[str, float]:
    """Optuna's parameter importances (PED-ANOVA by default in Optuna 5), {} if too few."""
    import optuna

    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if len(done) < MIN_TRIALS_FOR_IMPORTANCE:
        return {}
    try:
        return {k: round(float(v), 4)
                for k, v in optuna.importance.get_param_importances(study).items()}
    except (ValueError, RuntimeError) as exc:
        log.info("no parameter importances yet: %s", exc)
        return {}


def configmap(name: str, namespace: str, sweep: str, rows: list[dict[str, Any]],
              imp: dict[str, float] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace,
                         "labels": {SWEEP_LABEL: sweep,
                                    "app.kubernetes.io/component": "sweep-trials"}},
            "data": {TRIALS_KEY: json.dumps(rows, separators=(",", ":")),
                     IMPORTANCES_KEY: json.dumps(imp or {}, sort_keys=True)}}


def publish(client: Any, namespace: str, job: str, sweep: str, summary: dict[str, Any],
            rows: list[dict[str, Any]], imp: dict[str, float] | None = None) -> None:
    from fleet.errors import NotFound

    client.patch(f"/apis/batch/v1/namespaces/{namespace}/jobs/{job}",
                 {"metadata": {"annotations": {SWEEP_ANNOTATION: json.dumps(
                     summary, sort_keys=True)}}}, MERGE_PATCH)
    cm_name = f"{sweep}-trials"
    body = configmap(cm_name, namespace, sweep, rows, imp)
    path = f"/api/v1/namespaces/{namespace}/configmaps"
    try:
        client.put(f"{path}/{cm_name}", body)
    except NotFound:
        client.post(path, body)


class SummaryPublisher:
    """Worker 0's thread that republishes the summary while the sweep runs."""

    def __init__(self, worker: Any, client: Any, *, background: bool = True) -> None:
        self.worker = worker
        self.client = client
        self._stop = threading.Event()
        self._last = ""
        self._importances: dict[str, float] = {}
        self._importances_at = float("-inf")
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(target=self._run, name="summary", daemon=True)
            self._thread.start()

    @classmethod
    def start_for(cls, worker: Any) -> SummaryPublisher | None:
        cfg = worker.cfg
        if cfg.index != 0 or not cfg.job or not cfg.namespace:
            return None
        from fleet.kube import KubeClient
        from fleet.kubeconfig import in_cluster_available, in_cluster_credentials

        if not in_cluster_available():
            return None
        return cls(worker, KubeClient(in_cluster_credentials(cfg.namespace), timeout=10.0))

    def publish_once(self) -> None:
        from tuning import sweep_store

        w = self.worker
        row = sweep_store.get(w.eng, w.cfg.study)
        if row is None:
            return
        trials = w.storage.get_all_trials(w.study_id, deepcopy=False)
        summary = summarize(row, trials, w.spec.objective.direction, w.spec.objective.metric)
        rows = trial_rows(trials)
        now = time.monotonic()
        if now - self._importances_at >= IMPORTANCE_EVERY_S or row.state != "running":
            self._importances = importances(w.study)
            self._importances_at = now
        key = json.dumps([summary | {"updated": None}, rows, self._importances], sort_keys=True,
                         default=str)
        if key == self._last:
            return
        publish(self.client, w.cfg.namespace, w.cfg.job, w.spec.name, summary, rows,
                self._importances)
        self._last = key

    def _run(self) -> None:
        while not self._stop.wait(PUBLISH_S):
            try:
                self.publish_once()
            except Exception as exc:  # best effort: the sweep runs on regardless
                log.warning("sweep summary not published: %s", exc)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            self.publish_once()  # the final state
        except Exception as exc:
            log.warning("final sweep summary not published: %s", exc)


def publish_final(worker: Any) -> None:
    """One last summary by whichever worker completed the sweep (state, promotion): worker 0,
    which publishes while the sweep runs, may have exited before the promotion ended."""
    cfg = worker.cfg
    if not cfg.job or not cfg.namespace:
        return
    from fleet.kube import KubeClient
    from fleet.kubeconfig import in_cluster_available, in_cluster_credentials

    if not in_cluster_available():
        return
    pub = SummaryPublisher(worker, KubeClient(in_cluster_credentials(cfg.namespace),
                                              timeout=10.0), background=False)
    try:
        pub.publish_once()
    except Exception as exc:  # best effort, as the periodic publisher
        log.warning("final sweep summary not published: %s", exc)
