"""Scheduled re-training: a CronJob whose Job trains on the newest data, then promotes.

`fleet retrain MODEL --deployment D --schedule CRON …` writes the CronJob `retrain-MODEL`
(concurrencyPolicy Forbid, a starting deadline, the trainer Job template of manifests/training
with PROMOTE_DEPLOYMENT set and the fleet-retrainer service account). Its pod:

1. resolves the newest dataset version under --data; if the live model was already trained on
   that version with the same code, it records "skipped" and exits 0 (idempotent);
2. trains and publishes the next model version, as `fleet train` does;
3. runs the guarded promotion (`tuning.promote`) against D with --min-delta;
4. records the outcome on its CronJob (`modelfleet.io/last-promotion`), which the TUI shows.

`fleet retrain MODEL --now` creates one Job from the CronJob, like
`kubectl create job --from=cronjob/retrain-MODEL`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from fleet.model import COMPONENT_LABEL, NAME_LABEL
from tuning.jobs import TrainSpec, build_objects
from tuning.progress import MERGE_PATCH, utc_now
from tuning.train_ops import path_of

RETRAIN_COMPONENT = "retraining"
DEPLOYMENT_ANNOTATION = "modelfleet.io/deployment"
LAST_PROMOTION_ANNOTATION = "modelfleet.io/last-promotion"
STARTING_DEADLINE_S = 300


def cronjob_name(model: str) -> str:
    return f"retrain-{model}"


def build_cronjob(spec: TrainSpec, *, deployment: str, schedule: str, min_delta: float,
                  time_zone: str | None = None, suspend: bool = False) -> dict[str, Any]:
    """The CronJob for `spec` (spec.name is the CronJob's name, spec.model the model)."""
    objs = build_objects(TrainSpec(**{**spec.__dict__, "workers": 1,
                                      "service_account": "fleet-retrainer"}))
    job = objs[-1]
    container = job["spec"]["template"]["spec"]["containers"][0]
    container["env"] += [
        {"name": "PROMOTE_DEPLOYMENT", "value": deployment},
        {"name": "PROMOTE_MIN_DELTA", "value": repr(float(min_delta))},
        {"name": "CRONJOB_NAME", "value": spec.name},
    ]
    labels = {COMPONENT_LABEL: RETRAIN_COMPONENT, NAME_LABEL: spec.model or spec.name}
    job_md = job["metadata"]
    cron: dict[str, Any] = {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": spec.name, "namespace": spec.namespace, "labels": labels,
                     "annotations": {DEPLOYMENT_ANNOTATION: deployment}},
        "spec": {
            "schedule": schedule, "concurrencyPolicy": "Forbid",
            "startingDeadlineSeconds": STARTING_DEADLINE_S, "suspend": suspend,
            "successfulJobsHistoryLimit": 3, "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": job_md["labels"],
                                         "annotations": job_md.get("annotations", {})},
                            "spec": job["spec"]},
        },
    }
    if time_zone:
        cron["spec"]["timeZone"] = time_zone
    return cron


def job_from_cronjob(cron: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    """A Job like `kubectl create job --from=cronjob/NAME` makes (manual instantiation)."""
    md = cron["metadata"]
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d%H%M%S")
    tmpl = json.loads(json.dumps(cron["spec"]["jobTemplate"]))
    annotations = {**(tmpl.get("metadata") or {}).get("annotations", {}),
                   "cronjob.kubernetes.io/instantiate": "manual"}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {
            "name": f"{md['name']}-manual-{stamp}"[:63].rstrip("-"),
            "namespace": md["namespace"],
            "labels": (tmpl.get("metadata") or {}).get("labels", {}),
            "annotations": annotations,
            "ownerReferences": [{"apiVersion": "batch/v1", "kind": "CronJob",
                                 "name": md["name"], "uid": md["uid"], "controller": True,
                                 "blockOwnerDeletion": True}],
        },
        "spec": tmpl["spec"],
    }


def record_outcome(client: Any, namespace: str, cronjob: str, outcome: dict[str, Any]) -> None:
    """Patch the CronJob's last-promotion annotation (the TUI's jobs view shows it)."""
    doc = {**outcome, "time": utc_now()}
    client.patch(path_of("CronJob", namespace, cronjob),
                 {"metadata": {"annotations": {LAST_PROMOTION_ANNOTATION:
                                               json.dumps(doc, sort_keys=True)}}}, MERGE_PATCH)


def already_trained(live_meta: dict[str, Any], data_version_uri: str, code_uri: str) -> bool:
    prov = live_meta.get("provenance") or {}
    dataset = prov.get("dataset") or {}
    return (isinstance(dataset, dict) and dataset.get("uri") == data_version_uri
            and prov.get("code_uri") == code_uri)
