"""Sweeps from their Kubernetes objects: the Job's summary and spec annotations, the trials
ConfigMap, the pods the scheduler cannot place. All of it is written by pods (untrusted): a
malformed value is left unset or the row left out, never raised."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from fleet import derive
from fleet.cache import _Stores
from fleet.model import (
    SWEEP_ANNOTATION,
    SWEEP_SPEC_ANNOTATION,
    JobState,
    Promotion,
    SweepSummary,
    SweepTrial,
)

SUMMARY = {"state": "running", "reason": "", "max_trials": 100, "started": 48, "complete": 41,
           "running": 3, "pruned": 3, "failed": 1, "waiting": 0, "metric": "val_accuracy",
           "direction": "maximize", "best_value": 0.971234, "best_trial": 37,
           "promotion": None, "updated": "2026-12-01T12:00:00Z"}
SPEC = {"name": "digits", "search_space": {"learning_rate": {"type": "float", "low": 1e-4,
                                                             "high": 1e-2, "log": True},
                                           "batch_size": {"type": "categorical",
                                                          "choices": [32, 64]}},
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "budget": {"max_trials": 100}, "parallelism": 4, "gpus": 1,
        "promotion": {"deployment": "digits-latency", "min_delta": 0.0, "auto_promote": False}}


def sweep_job(annotations: dict | None = None, labels: dict | None = None, spec: dict | None = None,
              **status) -> dict:
    return {
        "metadata": {"name": "digits", "namespace": "ml", "uid": "j1", "resourceVersion": "42",
                     "creationTimestamp": "2026-12-01T11:00:00Z",
                     "labels": labels or {"app.kubernetes.io/component": "sweep-worker",
                                          "modelfleet.io/sweep": "digits"},
                     "annotations": annotations or {}},
        "spec": {"completions": 4, "parallelism": 4, "template": {"spec": {"containers": [
            {"name": "w", "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}, **(spec or {})},
        "status": status,
    }


def annotated(summary=SUMMARY, spec=SPEC, **status) -> dict:
    ann = {}
    if summary is not None:
        ann[SWEEP_ANNOTATION] = summary if isinstance(summary, str) else json.dumps(summary)
    if spec is not None:
        ann[SWEEP_SPEC_ANNOTATION] = spec if isinstance(spec, str) else json.dumps(spec)
    return sweep_job(ann, **status)


# --- the summary on the Job ----------------------------------------------------------------

def test_full_summary_and_spec():
    j = derive.training_job(annotated(active=4, ready=3))
    assert j.kind == "sweep-worker" and j.gpus == 4
    assert j.sweep == SweepSummary(
        state="running", reason="", max_trials=100, started=48, complete=41, running=3,
        pruned=3, failed=1, waiting=0, metric="val_accuracy", direction="maximize",
        best_value=0.971234, best_trial=37, promotion=None,
        updated=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
        params=("learning_rate", "batch_size"), parallelism=4, gpus=1,
        deployment="digits-latency")
    assert j.sweep.done == 45 and j.sweep.maximize
    assert (j.ready, j.pending, j.running_pods) == (3, 1, 3)
    assert j.sweep_state == "running"


def test_a_training_job_has_no_sweep_even_with_the_annotation():
    job = annotated()
    job["metadata"]["labels"] = {"app.kubernetes.io/component": "training"}
    assert derive.training_job(job).sweep is None


def test_spec_only_before_the_first_publish():
    j = derive.training_job(annotated(summary=None, active=4, ready=0))
    assert j.sweep is not None and j.sweep.state == ""
    assert j.sweep.max_trials == 100 and j.sweep.metric == "val_accuracy"
    assert j.sweep.params == ("learning_rate", "batch_size")
    assert j.sweep_state == "pending"


def test_no_annotations_at_all():
    j = derive.training_job(sweep_job())
    assert j.sweep is None and j.sweep_state == "pending" and j.ready is None
    assert j.pending == 0  # no `ready` reported: nothing is known to wait


def test_promotion_outcome():
    s = dict(SUMMARY, state="complete", promotion={
        "result": "promoted", "detail": "val_accuracy 0.97 > 0.95 (live)",
        "deployment": "digits-latency", "candidate_uri": "hdfs://nn/m/7", "trial": 37})
    j = derive.training_job(annotated(s))
    assert j.sweep.promotion == Promotion("promoted", "val_accuracy 0.97 > 0.95 (live)", "",
                                          None, "hdfs://nn/m/7")


def test_states_the_job_corrects():
    suspended = annotated(spec=SPEC)
    suspended["spec"]["suspend"] = True
    assert derive.training_job(suspended).sweep_state == "stopped"
    failed = annotated(conditions=[{"type": "Failed", "status": "True"}])
    assert derive.training_job(failed).sweep_state == "failed"
    aborted = annotated(dict(SUMMARY, state="aborted", reason="3 identical failures"),
                        conditions=[{"type": "Failed", "status": "True"}])
    j = derive.training_job(aborted)
    assert j.sweep_state == "aborted" and j.sweep.reason == "3 identical failures"
    done = annotated(summary=None, conditions=[{"type": "Complete", "status": "True"}])
    assert derive.training_job(done).sweep_state == "complete"


MALFORMED = [
    "", "   ", "null", "[]", "42", '"text"', "{", '{"state": ', "{" * 5000 + "}" * 5000,
    "x" * 70_000, json.dumps({"state": 7, "complete": -3, "running": "lots", "pruned": 1.5,
                              "best_value": "NaN", "best_trial": {}, "max_trials": True,
                              "direction": "sideways", "updated": "yesterday",
                              "promotion": "promoted", "reason": ["a"]}),
    json.dumps({"best_value": float("inf")}, allow_nan=True),
]


def test_malformed_summaries_leave_fields_unset():
    for raw in MALFORMED:
        j = derive.training_job(annotated(summary=raw, spec=None))
        assert j.sweep is None or isinstance(j.sweep, SweepSummary), raw[:40]
    j = derive.training_job(annotated(summary=MALFORMED[10], spec=None))
    s = j.sweep
    assert (s.state, s.complete, s.running, s.pruned, s.best_value, s.best_trial,
            s.max_trials, s.direction, s.updated, s.promotion, s.reason) == (
        "", 0, 0, 0, None, None, None, "", None, None, "")
    assert s.maximize  # unknown direction: maximize, like Optuna's default


def test_malformed_spec_is_ignored_but_the_summary_kept():
    for raw in ["{", "[1,2]", json.dumps({"search_space": ["lr", "bs"], "objective": "acc",
                                          "budget": 5, "parallelism": "four",
                                          "promotion": "yes"})]:
        j = derive.training_job(annotated(spec=raw))
        assert j.sweep.complete == 41 and j.sweep.params == ()
        assert j.sweep.parallelism is None and j.sweep.deployment == ""


def test_long_reason_is_one_line():
    s = dict(SUMMARY, state="aborted", reason="line one\nline two " + "x" * 1000)
    reason = derive.training_job(annotated(s)).sweep.reason
    assert "\n" not in reason and len(reason) <= 300 and reason.startswith("line one line two")


@settings(max_examples=300, deadline=None)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
                    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(), c,
                                                                        max_size=4),
                    max_leaves=20),
       st.dictionaries(st.sampled_from(list(SUMMARY) + list(SPEC)), st.none() | st.integers()
                       | st.floats() | st.text() | st.lists(st.integers()), max_size=8))
def test_any_json_never_crashes(doc, fields):
    for raw in (json.dumps(doc, allow_nan=True), json.dumps(fields, allow_nan=True)):
        j = derive.training_job(annotated(summary=raw, spec=raw))
        assert j.sweep is None or isinstance(j.sweep.complete, int)
        _ = (j.sweep_state, j.pending, j.gpu_starved)


# --- the trials ConfigMap -------------------------------------------------------------------

ROW = {"n": 3, "state": "complete", "value": 0.95, "params": {"learning_rate": 0.001,
                                                             "batch_size": 64, "act": "relu",
                                                             "bn": True, "x": None},
       "pod": "digits-1-abcde", "index": 1, "steps": [[2, 0.9], [1, 0.8], [3, 0.95]],
       "start": "2026-12-01T11:00:00Z", "end": "2026-12-01T11:04:00Z",
       "model_uri": "hdfs://nn/models/digits/4", "holdout": 0.94, "reason": "",
       "retry_of": None}


def configmap(rows, importances=None, rv="9", raw_rows=None, raw_imp=None) -> dict:
    return {"metadata": {"name": "digits-trials", "namespace": "ml", "resourceVersion": rv},
            "data": {"trials.json": raw_rows if raw_rows is not None else json.dumps(rows),
                     "importances.json": raw_imp if raw_imp is not None
                     else json.dumps(importances or {})}}


def test_trial_row():
    t = derive.sweep_trial(ROW)
    assert t == SweepTrial(
        n=3, state="complete", value=0.95,
        params=(("learning_rate", 0.001), ("batch_size", 64), ("act", "relu"), ("bn", True),
                ("x", None)),
        pod="digits-1-abcde", index=1, steps=((1, 0.8), (2, 0.9), (3, 0.95)),
        start=datetime(2026, 12, 1, 11, 0, tzinfo=UTC),
        end=datetime(2026, 12, 1, 11, 4, tzinfo=UTC), model_uri="hdfs://nn/models/digits/4",
        holdout=0.94)
    assert t.key == 3 and t.param("batch_size") == 64 and t.param("nope") is None


def test_trials_and_importances():
    rows = [dict(ROW, n=2, state="running", value=None, steps=[[1, 0.7]]), ROW,
            dict(ROW, n=1, state="fail", value=None, reason="OOM", steps=[])]
    got = derive.sweep_trials(configmap(rows, {"batch_size": 0.3, "learning_rate": 0.7}))
    assert [t.n for t in got.trials] == [1, 2, 3]
    assert [t.state for t in got.trials] == ["fail", "running", "complete"]
    assert got.importances == (("learning_rate", 0.7), ("batch_size", 0.3))
    assert got.resource_version == "9" and got.found and got.problems == 0


def test_malformed_trial_rows_are_left_out_and_counted():
    rows = [ROW, "text", 7, None, {"state": "complete"}, {"n": "x"}, {"n": -1},
            dict(ROW, n=4, state="exploded", value="high", params=["lr"], steps="many",
                 start=5, pod={"a": 1}, retry_of={"n": 2}),
            dict(ROW, n=5, steps=[[1], [1, 2, 3], ["a", 0.5], [2, "NaN"], [3, 0.5]],
                 params={"lr": float("inf"), "d": {"nested": 1}, "e": [1]})]
    got = derive.sweep_trials(configmap([], raw_rows=json.dumps(rows, allow_nan=True)))
    assert [t.n for t in got.trials] == [3, 4, 5]
    assert got.problems == 6
    odd = got.trials[1]
    assert (odd.state, odd.value, odd.params, odd.steps, odd.start, odd.pod, odd.retry_of) == (
        "unknown", None, (), (), None, "", 2)
    assert got.trials[2].steps == ((3, 0.5),)
    assert got.trials[2].params == (("lr", None), ("d", None), ("e", None))


def test_malformed_configmaps():
    for cm in (None, {}, {"data": None}, {"data": []}, configmap([], raw_rows="{"),
               configmap([], raw_rows='{"n": 1}'), configmap([], raw_imp="[1]"),
               configmap([], raw_imp=json.dumps({"lr": "big", "": 0.1, "ok": 0.2}))):
        got = derive.sweep_trials(cm)
        assert got.trials == ()
    assert derive.sweep_trials(None).found is False
    assert derive.sweep_trials(configmap([], raw_rows='{"n": 1}')).problems == 1
    assert derive.sweep_trials(configmap([], raw_imp=json.dumps(
        {"lr": "big", "ok": 0.2}))).importances == (("ok", 0.2),)


def test_duplicate_trial_numbers_keep_the_last():
    got = derive.sweep_trials(configmap([dict(ROW, value=0.1), dict(ROW, value=0.2)]))
    assert len(got.trials) == 1 and got.trials[0].value == 0.2


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(
    st.sampled_from(list(ROW)), st.none() | st.booleans() | st.integers() | st.floats()
    | st.text(max_size=5) | st.lists(st.lists(st.integers() | st.floats(), max_size=3),
                                     max_size=3)
    | st.dictionaries(st.text(max_size=3), st.integers() | st.text(max_size=3), max_size=3),
    max_size=12), max_size=6))
def test_any_rows_never_crash(rows):
    got = derive.sweep_trials(configmap([], raw_rows=json.dumps(rows, allow_nan=True)))
    numbers = [t.n for t in got.trials]
    assert numbers == sorted(set(numbers))  # one per number (a repeated one: the last)
    assert len(numbers) + got.problems <= len(rows)


# --- pods the scheduler cannot place ----------------------------------------------------------

def pod(name: str, phase: str = "Pending", scheduled: str | None = "False",
        message: str = "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        job: str = "digits", component: str = "sweep-worker") -> dict:
    conds = [] if scheduled is None else [{"type": "PodScheduled", "status": scheduled,
                                           "reason": "Unschedulable", "message": message}]
    return {"metadata": {"name": name, "namespace": "ml", "uid": f"u-{name}",
                         "labels": {"app.kubernetes.io/component": component},
                         "ownerReferences": [{"kind": "Job", "name": job, "controller": True}]},
            "spec": {}, "status": {"phase": phase, "conditions": conds}}


def test_unschedulable_pods():
    pods = [derive.pod_summary(p) for p in (
        pod("d-0", "Running", "True"), pod("d-2"), pod("d-1"), pod("d-3", scheduled=None))]
    assert derive.unschedulable(pods) == (
        2, "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.")
    assert derive.unschedulable([]) == (0, "")


def test_the_cache_puts_gpu_starved_pods_on_their_sweep():
    stores = _Stores()
    stores.apply("Pod", "ADDED", pod("digits-0"))  # a pod may arrive before its Job
    stores.apply("Job", "ADDED", annotated(active=2, ready=0))
    j = stores.jobs[("ml", "digits")]
    assert j.unschedulable == 1 and j.gpu_starved and j.pending == 2
    stores.apply("Pod", "ADDED", pod("digits-1", message="0/3 nodes: 3 Insufficient memory."))
    assert stores.jobs[("ml", "digits")].unschedulable == 2
    stores.take_change()
    # scheduled now: the Job's record changes once, and only because of that
    stores.apply("Pod", "MODIFIED", pod("digits-0", "Running", "True"))
    stores.apply("Pod", "MODIFIED", pod("digits-1", "Running", "True"))
    change = stores.take_change()
    assert [(j.name, j.unschedulable, j.gpu_starved) for j in change.jobs_upserted] == [
        ("digits", 0, False)]
    stores.apply("Pod", "MODIFIED", pod("digits-1", "Running", "True"))
    assert stores.take_change().jobs_upserted == []  # nothing changed: nothing sent
    stores.apply("Pod", "ADDED", pod("digits-2"))
    stores.apply("Pod", "DELETED", pod("digits-2"))
    assert stores.jobs[("ml", "digits")].unschedulable == 0
    # other Jobs' pods (not training/sweep workers) are not kept at all
    stores.apply("Pod", "ADDED", pod("etl-0", job="etl", component="batch"))
    assert ("ml", "etl-0") not in stores.job_pod_owner
    # a relist that no longer has a pod deletes it like any other
    stores.apply("Pod", "ADDED", pod("digits-3"))
    assert stores.jobs[("ml", "digits")].unschedulable == 1
    stores.replace("Pod", "ml", [pod("digits-0", "Running", "True")])
    assert stores.jobs[("ml", "digits")].unschedulable == 0
    assert set(stores.job_pod_owner) == {("ml", "digits-0")}
    stores.apply("Job", "DELETED", annotated())
    assert ("ml", "digits") not in stores.jobs and ("ml", "digits") not in stores.job_base


def test_job_state_is_kept_for_sweeps():
    j = derive.training_job(annotated(active=4, ready=0))
    assert j.state is JobState.PENDING and j.sweep_state == "running"


def test_digit_lookalikes_are_no_numbers():
    """`"²".isdigit()` is true but `int("²")` raises: found by the property test above."""
    got = derive.sweep_trials(configmap([], raw_rows=json.dumps([{"n": "²"}, {"n": "٣"},
                                                                   {"n": " 7 "}])))
    assert [t.n for t in got.trials] == [7] and got.problems == 2
    j = derive.training_job(annotated(dict(SUMMARY, complete="²", max_trials="１０")))
    assert j.sweep.complete == 0 and j.sweep.max_trials == 100  # the spec's budget
