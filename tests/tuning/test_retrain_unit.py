"""The re-training CronJob and the Job `--now` makes from it."""

from __future__ import annotations

from datetime import UTC, datetime

from tuning import retrain
from tuning.jobs import TrainSpec


def _cron() -> dict:
    spec = TrainSpec(name="retrain-digits", namespace="ml", code_uri="/c/t-1.0-py3-none-any.whl",
                     data_uri="/data", output_uri="/models/d", model="digits")
    return retrain.build_cronjob(spec, deployment="digits-latency", schedule="0 3 * * *",
                                 min_delta=0.01, time_zone="Europe/Berlin")


def test_cronjob_forbids_overlap_and_promotes_into_the_deployment() -> None:
    cron = _cron()
    assert cron["metadata"]["labels"] == {"app.kubernetes.io/component": "retraining",
                                          "app.kubernetes.io/name": "digits"}
    assert cron["metadata"]["annotations"]["modelfleet.io/deployment"] == "digits-latency"
    s = cron["spec"]
    assert (s["concurrencyPolicy"], s["startingDeadlineSeconds"]) == ("Forbid", 300)
    assert s["timeZone"] == "Europe/Berlin" and s["schedule"] == "0 3 * * *"
    pod = s["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "fleet-retrainer"
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["PROMOTE_DEPLOYMENT"] == "digits-latency"
    assert float(env["PROMOTE_MIN_DELTA"]) == 0.01 and env["CRONJOB_NAME"] == "retrain-digits"
    assert s["jobTemplate"]["spec"]["podFailurePolicy"]["rules"]


def test_manual_job_is_owned_by_the_cronjob() -> None:
    cron = _cron()
    cron["metadata"]["uid"] = "u-1"
    job = retrain.job_from_cronjob(cron, datetime(2026, 12, 1, 10, 0, 5, tzinfo=UTC))
    assert job["metadata"]["name"] == "retrain-digits-manual-20261201100005"
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"], owner["controller"]) == ("CronJob", "u-1", True)
    assert job["spec"] == cron["spec"]["jobTemplate"]["spec"]
    assert job["spec"] is not cron["spec"]["jobTemplate"]["spec"]


def test_already_trained_needs_the_same_data_version_and_code() -> None:
    meta = {"provenance": {"dataset": {"uri": "/data/2"}, "code_uri": "/c/t.whl"}}
    assert retrain.already_trained(meta, "/data/2", "/c/t.whl")
    assert not retrain.already_trained(meta, "/data/3", "/c/t.whl")
    assert not retrain.already_trained(meta, "/data/2", "/c/t2.whl")
    assert not retrain.already_trained({}, "/data/2", "/c/t.whl")
