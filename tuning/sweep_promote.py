"""A sweep's winner into serving: the best complete trial's model through guarded promotion.

Used by `fleet sweep promote` and, with `promotion.auto_promote`, by the worker that marks the
sweep complete (exactly one: the state change is a compare-and-swap in PostgreSQL).
"""

from __future__ import annotations

import logging
from typing import Any

from tuning import sweep_store
from tuning.promote import Promotion, PromotionError, promote

log = logging.getLogger("sweep.promote")


def best_trial(trials: list[Any], direction: str, number: int | None = None) -> Any:
    """The best COMPLETE trial with a published model (or trial `number`)."""
    done = [t for t in trials if t.state.name == "COMPLETE" and t.user_attrs.get("model_uri")]
    if number is not None:
        match = [t for t in trials if t.number == number]
        if not match:
            raise PromotionError(f"the sweep has no trial {number}")
        if match[0] not in done:
            raise PromotionError(f"trial {number} is {match[0].state.name.lower()}, not a "
                                 "complete trial with a published model")
        return match[0]
    if not done:
        raise PromotionError("the sweep has no complete trial with a published model yet")
    pick = max if direction == "maximize" else min
    return pick(done, key=lambda t: t.value)


def promote_trial(client: Any, namespace: str, sweep: str, trial: Any, deployment: str, *,
                  min_delta: float, force: bool = False, webhdfs_url: str = "",
                  timeout: float = 300.0, say: Any = lambda _t: None) -> Promotion:
    return promote(client, namespace, deployment, trial.user_attrs["model_uri"],
                   min_delta=min_delta, force=force,
                   source=f"sweep {sweep} trial {trial.number}", webhdfs_url=webhdfs_url,
                   timeout=timeout, say=say)


def auto_promote(worker: Any) -> None:
    """Called once, by the worker that completed the sweep."""
    spec = worker.spec
    promo = spec.promotion
    if promo is None or not promo.auto_promote:
        return
    from fleet.kube import KubeClient
    from fleet.kubeconfig import in_cluster_available, in_cluster_credentials

    outcome: dict[str, Any]
    if not in_cluster_available():
        outcome = {"result": "failed", "detail": "no service-account token: cannot promote"}
    else:
        client = KubeClient(in_cluster_credentials(worker.cfg.namespace), timeout=30.0)
        try:
            trials = worker.storage.get_all_trials(worker.study_id, deepcopy=False)
            best = best_trial(trials, spec.objective.direction)
            p = promote_trial(client, worker.cfg.namespace, spec.name, best, promo.deployment,
                              min_delta=promo.min_delta, webhdfs_url=worker.cfg.webhdfs_url,
                              say=lambda t: log.info("promote: %s", t))
            outcome = {**p.to_dict(), "trial": best.number}
        except Exception as exc:  # recorded for the user; the sweep itself is complete
            outcome = {"result": "failed", "detail": str(exc)}
    log.info("auto-promotion: %s", outcome.get("result"))
    sweep_store.record_promotion(worker.eng, worker.cfg.study, outcome)
