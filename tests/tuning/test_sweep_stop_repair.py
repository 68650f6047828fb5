"""What `fleet sweep stop` repairs once every worker pod is gone, on real PostgreSQL: trials
left RUNNING, and an interrupted trial whose worker died before it queued the retry."""

from __future__ import annotations

from typing import Any

import pytest

from tuning import sweep_store, sweeps

pytestmark = pytest.mark.postgres


def _study(url: str, name: str) -> Any:
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    s = optuna.create_study(study_name=name, storage=url, direction="maximize")
    dist = {"lr": FloatDistribution(0.0, 1.0)}

    def add(state: TrialState, lr: float, reason: str, **system: Any) -> None:
        s.add_trial(create_trial(state=state, params={"lr": lr}, distributions=dist,
                                 value=0.9 if state == TrialState.COMPLETE else None,
                                 user_attrs={"fail_reason": reason}, system_attrs=system))

    add(TrialState.FAIL, 0.5, sweep_store.INTERRUPTED)  # 0: its worker died before the retry
    add(TrialState.FAIL, 0.2, "trial process exited with 1")  # 1: a real failure
    add(TrialState.FAIL, 0.3, sweep_store.INTERRUPTED)  # 2: interrupted and already retried
    add(TrialState.WAITING, 0.3, sweep_store.INTERRUPTED, failed_trial=2, retry_history=[2])
    add(TrialState.FAIL, 0.4, sweep_store.INTERRUPTED,  # 4: retried MAX_RETRY times already
        failed_trial=10, retry_history=[10, 11])
    add(TrialState.COMPLETE, 0.6, "")  # 5
    # 6: left RUNNING by a pod that vanished without SIGTERM (not ask(): it pops trial 3)
    s._storage.create_new_trial(s._study_id)
    return s


def _waiting(s: Any) -> dict[int, tuple[float, list[int]]]:
    from optuna.trial import TrialState

    return {t.system_attrs["failed_trial"]: (t.params["lr"] if t.params else None,
                                             t.system_attrs["retry_history"])
            for t in s.get_trials(states=(TrialState.WAITING,))}


def test_stop_requeues_an_orphaned_interrupted_trial_once_and_fails_what_still_runs(
        postgres_url: str) -> None:
    s = _study(postgres_url, "ml.repair")
    said: list[str] = []
    sweeps._fail_leftovers(postgres_url, "ml.repair", said.append)
    assert said == ["trial 6 was still running: failed and re-queued",
                    "trial 0 was interrupted but not re-queued: re-queued"]
    assert _waiting(s) == {0: (0.5, [0]), 2: (0.3, [2]), 6: (None, [6])}
    # a second stop finds nothing more to do: no trial is queued twice
    sweeps._fail_leftovers(postgres_url, "ml.repair", said.append)
    assert len(said) == 2 and len(_waiting(s)) == 3


def test_an_aborted_sweep_gets_no_retries(postgres_url: str) -> None:
    from optuna.trial import TrialState

    s = _study(postgres_url, "ml.aborted")
    said: list[str] = []
    sweeps._fail_leftovers(postgres_url, "ml.aborted", said.append, requeue_interrupted=False)
    assert said == ["trial 6 was still running: failed"]
    assert _waiting(s) == {2: (0.3, [2])}  # only the retry that was already queued
    assert s.get_trials()[6].state == TrialState.FAIL
