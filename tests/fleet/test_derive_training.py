"""Training progress on Jobs and re-training CronJobs: derivation from untrusted annotations."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet import derive
from fleet.model import (
    FAILURE_ANNOTATION,
    LAST_PROMOTION_ANNOTATION,
    PROGRESS_ANNOTATION,
    JobState,
    Promotion,
    RetrainSchedule,
    TrainingJob,
    TrainingProgress,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def job(annotations: dict | None = None, **status) -> dict:
    return {
        "metadata": {"name": "train-digits", "namespace": "ml", "uid": "j1",
                     "resourceVersion": "42", "creationTimestamp": "2026-12-01T11:00:00Z",
                     "labels": {"app.kubernetes.io/component": "training"},
                     "annotations": annotations or {}},
        "spec": {"completions": 1, "template": {"spec": {"containers": [{"name": "t"}]}}},
        "status": status,
    }


def cronjob(annotations: dict | None = None, spec: dict | None = None, **status) -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "retrain-digits", "namespace": "ml", "uid": "c1",
                     "resourceVersion": "77", "creationTimestamp": "2026-11-01T00:00:00Z",
                     "labels": {"app.kubernetes.io/component": "retraining",
                                "app.kubernetes.io/name": "digits"},
                     "annotations": annotations or {}},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {}}, **(spec or {})},
        "status": status,
    }


FULL = {"phase": "training", "epoch": 3, "epochs": 10, "metric": "accuracy", "value": 0.931,
        "loss": 0.21, "updated": "2026-12-01T12:00:00Z", "message": "epoch 3 done",
        "model_uri": ""}


# --- progress ------------------------------------------------------------------------------------

def test_full_progress_annotation():
    j = derive.training_job(job({PROGRESS_ANNOTATION: json.dumps(FULL)}, active=1, ready=1))
    assert j.progress == TrainingProgress("training", 3, 10, "accuracy", 0.931, 0.21, NOW,
                                          "epoch 3 done", "")
    assert j.progress.fraction == pytest.approx(0.3)
    assert (j.progress.epoch_text, j.progress.metric_text) == ("3/10", "accuracy 0.931")
    assert j.failure == "" and j.reason == "" and j.state is JobState.RUNNING


def test_no_annotation_is_no_progress_and_old_constructors_still_work():
    assert derive.training_job(job()).progress is None
    old = TrainingJob("ns", "n", "u", "training", 1, 0, 0, 0, 0, JobState.PENDING, NOW)
    assert old.progress is None and old.failure == "" and old.reason == ""


@pytest.mark.parametrize("raw", [
    "", "   ", "not json", "{", "[1, 2]", "3", "null", '"training"', "{}", '{"nope": 1}',
    '{"phase": 7, "epoch": "x", "value": "NaN", "updated": 5}', "[" * 100000, "[" * 60000,
    '{"epoch": true, "epochs": false, "value": true}', '{"value": 1e999, "loss": "-inf"}',
    json.dumps({"phase": None, "message": None, "epoch": -1}),
])
def test_malformed_or_empty_progress_is_none(raw):
    assert derive.training_progress(raw) is None
    assert derive.training_job(job({PROGRESS_ANNOTATION: raw})).progress is None


@pytest.mark.parametrize("raw", [None, 3, ["x"], {"phase": "training"}])
def test_non_string_annotation_values_are_ignored(raw):
    assert derive.training_progress(raw) is None


def test_partial_progress_and_lenient_numbers():
    p = derive.training_progress(json.dumps({"phase": "Staging"}))
    assert p == TrainingProgress(phase="staging")
    assert (p.epoch_text, p.metric_text, p.fraction) == ("", "", None)
    p = derive.training_progress(json.dumps({"epoch": "4", "epochs": 8.0, "value": "0.5"}))
    assert (p.epoch, p.epochs, p.value, p.epoch_text, p.metric_text) == (4, 8, 0.5, "4/8", "0.500")
    p = derive.training_progress(json.dumps({"epoch": 7, "loss": 0.04123}))
    assert (p.epoch_text, p.metric_text, p.fraction) == ("7", "loss 0.041", None)
    p = derive.training_progress(json.dumps({"epoch": 12, "epochs": 10, "epochs_extra": 1}))
    assert p.fraction == 1.0  # clamped
    assert derive.training_progress(json.dumps({"epoch": 2, "epochs": 0})).fraction is None
    assert derive.training_progress(json.dumps({"epoch": 2.5})) is None


def test_texts_become_one_trimmed_line_and_times_are_aware():
    p = derive.training_progress(json.dumps({
        "message": "line one\nline two\t tabbed  " + "x" * 1000,
        "updated": "2026-12-01T12:00:00", "phase": "training\n"}))
    assert "\n" not in p.message and p.message.startswith("line one line two tabbed x")
    assert len(p.message) == derive.MAX_LINE and p.message.endswith("…")
    assert p.updated == NOW and p.updated.tzinfo is not None  # no zone given: UTC
    assert p.phase == "training"
    assert derive.training_progress('{"updated": "yesterday", "phase": "x"}').updated is None


def test_failure_annotation_is_the_reason():
    ann = {PROGRESS_ANNOTATION: json.dumps({"phase": "failed", "message": "bad param lr=-1"}),
           FAILURE_ANNOTATION: "TrainerError: parameter lr must be > 0\n(trace…)"}
    failed = job(ann, failed=1, conditions=[{"type": "Failed", "status": "True"}])
    j = derive.training_job(failed)
    assert j.state is JobState.FAILED
    assert j.failure == "TrainerError: parameter lr must be > 0 (trace…)"
    assert j.reason == j.failure
    # without the failure annotation, the failed phase's message explains it
    del ann[FAILURE_ANNOTATION]
    assert derive.training_job(job(ann)).reason == "bad param lr=-1"
    assert derive.training_job(job({FAILURE_ANNOTATION: 17})).failure == ""


def test_progress_change_is_a_record_change():
    a = derive.training_job(job({PROGRESS_ANNOTATION: json.dumps(FULL)}))
    b = derive.training_job(job({PROGRESS_ANNOTATION: json.dumps(FULL | {"epoch": 4})}))
    assert a != b and a == derive.training_job(job({PROGRESS_ANNOTATION: json.dumps(FULL)}))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=8), kids,
                                                              max_size=4),
    max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(FULL) + ["x"]), json_values, max_size=9))
def test_any_json_object_never_crashes(doc):
    p = derive.training_progress(json.dumps(doc))
    if p is not None:
        assert isinstance(p.phase, str) and isinstance(p.message, str)
        assert p.epoch is None or isinstance(p.epoch, int)
        assert p.value is None or isinstance(p.value, float)
        _ = (p.epoch_text, p.metric_text, p.fraction)
    derive.promotion(json.dumps(doc))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_never_crashes(raw):
    derive.training_progress(raw)
    derive.promotion(raw)


# --- re-training schedules ---------------------------------------------------------------------

PROMO = {"result": "promoted", "detail": "accuracy 0.962 > 0.948 (live)", "job": "retrain-1",
         "time": "2026-12-01T03:04:00Z", "model_uri": "hdfs://nn/models/digits/v4"}


def test_retrain_schedule_fields():
    cj = cronjob({"modelfleet.io/deployment": "serving/digits-latency",
                  LAST_PROMOTION_ANNOTATION: json.dumps(PROMO)},
                 lastScheduleTime="2026-12-01T03:00:00Z",
                 lastSuccessfulTime="2026-12-01T03:05:00Z",
                 active=[{"kind": "Job", "name": "retrain-2"}])
    s = derive.retrain_schedule(cj, now=NOW)
    assert derive.is_retrain_schedule(cj) and not derive.is_training_job(cj)
    assert s == RetrainSchedule(
        namespace="ml", name="retrain-digits", model="digits",
        deployment="serving/digits-latency", schedule="0 3 * * *", time_zone="",
        suspended=False, last_schedule=datetime(2026, 12, 1, 3, tzinfo=UTC),
        last_successful=datetime(2026, 12, 1, 3, 5, tzinfo=UTC),
        next_run=datetime(2026, 12, 2, 3, tzinfo=UTC), active=1,
        last_promotion=Promotion("promoted", "accuracy 0.962 > 0.948 (live)", "retrain-1",
                                 datetime(2026, 12, 1, 3, 4, tzinfo=UTC),
                                 "hdfs://nn/models/digits/v4"),
        uid="c1", resource_version="77", created=datetime(2026, 11, 1, tzinfo=UTC))
    assert s.key == ("ml", "retrain-digits")
    assert s.deployment_key == ("serving", "digits-latency")


def test_bare_deployment_name_is_in_the_cronjob_namespace_and_model_defaults_to_name():
    cj = cronjob({"modelfleet.io/deployment": "digits"})
    del cj["metadata"]["labels"]["app.kubernetes.io/name"]
    s = derive.retrain_schedule(cj, now=NOW)
    assert s.deployment_key == ("ml", "digits") and s.model == "retrain-digits"
    assert derive.retrain_schedule(cronjob(), now=NOW).deployment_key is None


def test_time_zone_suspend_and_invalid_schedules():
    s = derive.retrain_schedule(cronjob(spec={"timeZone": "Europe/Berlin"}), now=NOW)
    assert s.time_zone == "Europe/Berlin" and s.next_run == datetime(2026, 12, 2, 2, tzinfo=UTC)
    s = derive.retrain_schedule(cronjob(spec={"suspend": True}), now=NOW)
    assert s.suspended and s.next_run is None
    s = derive.retrain_schedule(cronjob(spec={"schedule": "61 * * * *"}), now=NOW)
    assert s.next_run is None and s.schedule == "61 * * * *"
    s = derive.retrain_schedule(cronjob(spec={"timeZone": "Mars/Olympus"}), now=NOW)
    assert s.next_run is None
    s = derive.retrain_schedule(cronjob(spec={"schedule": None}), now=NOW)
    assert s.schedule == "" and s.next_run is None


def test_next_run_counts_from_the_last_run_when_it_is_ahead_of_our_clock():
    # our clock is behind the controller's: the run it already made is not "next"
    s = derive.retrain_schedule(cronjob(lastScheduleTime="2026-12-02T03:00:00Z"), now=NOW)
    assert s.next_run == datetime(2026, 12, 3, 3, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["", "{}", "nope", "[]", '{"result": 5}', '{"time": "x"}'])
def test_malformed_last_promotion_is_none(raw):
    s = derive.retrain_schedule(cronjob({LAST_PROMOTION_ANNOTATION: raw}), now=NOW)
    assert s.last_promotion is None


def test_partial_last_promotion():
    s = derive.retrain_schedule(
        cronjob({LAST_PROMOTION_ANNOTATION: '{"result": "Kept", "detail": "a\\nb"}'}), now=NOW)
    assert s.last_promotion == Promotion(result="kept", detail="a b")


def test_never_run_cronjob_has_no_times():
    s = derive.retrain_schedule(cronjob(), now=NOW)
    assert (s.last_schedule, s.last_successful, s.active, s.last_promotion) == (None, None, 0,
                                                                                 None)
    assert s.next_run == datetime(2026, 12, 2, 3, tzinfo=UTC)
