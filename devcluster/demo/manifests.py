"""Kubernetes objects for the demo plan (pure functions returning dicts)."""

from __future__ import annotations

from typing import Any

from devcluster.demo.plan import SEED_LABEL, DeploymentPlan, JobPlan, RevisionPlan
from fleet.model import (
    CHANGE_CAUSE,
    COMPONENT_LABEL,
    MODEL_SERVER_COMPONENT,
    MODEL_URI_ENV,
    NAME_LABEL,
    VERSION_LABEL,
)

SIM_LABEL = "fleet.test/sim"
GPU = "nvidia.com/gpu"


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": name, "labels": {SEED_LABEL: "1", "team": name}}}


def pod_template(d: DeploymentPlan, r: RevisionPlan) -> dict[str, Any]:
    labels = {"app": d.name, COMPONENT_LABEL: MODEL_SERVER_COMPONENT, NAME_LABEL: d.model,
              VERSION_LABEL: r.version}
    if r.sim:
        labels[SIM_LABEL] = r.sim
    probe_path = f"/v1/models/{d.model}"
    return {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [{
                "name": "server",
                "image": r.image,
                "args": ["--model-name", d.model, "--port", "8501"],
                "env": [{"name": MODEL_URI_ENV, "value": r.model_uri},
                        {"name": "MODEL_NAME", "value": d.model}],
                "ports": [{"name": "http", "containerPort": 8501}],
                "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": probe_path, "port": 8501},
                                   "initialDelaySeconds": 5, "periodSeconds": 10,
                                   "failureThreshold": 3},
                "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8501},
                                  "initialDelaySeconds": 15, "periodSeconds": 20,
                                  "failureThreshold": 3},
            }],
        },
    }


def deployment(d: DeploymentPlan, r: RevisionPlan) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": d.name, "namespace": d.namespace,
            # The version lives on the pod template only, so a rollback (which restores the
            # template) also restores the version the fleet shows.
            "labels": {COMPONENT_LABEL: MODEL_SERVER_COMPONENT, NAME_LABEL: d.model,
                       SEED_LABEL: "1", "team": d.namespace},
            "annotations": {CHANGE_CAUSE: r.change_cause},
        },
        "spec": {
            "replicas": d.replicas,
            "progressDeadlineSeconds": d.progress_deadline,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": d.name}},
            "template": pod_template(d, r),
        },
    }


def revision_patch(d: DeploymentPlan, r: RevisionPlan) -> dict[str, Any]:
    """Strategic-merge patch moving the deployment to revision `r` (template + change-cause)."""
    tpl = pod_template(d, r)
    labels: dict[str, Any] = dict(tpl["metadata"]["labels"])
    if not r.sim:
        labels[SIM_LABEL] = None  # delete a sim label from an earlier revision
    return {
        "metadata": {"annotations": {CHANGE_CAUSE: r.change_cause}},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": tpl["spec"]}},
    }


def job(j: JobPlan) -> dict[str, Any]:
    annotations = {}
    labels = {COMPONENT_LABEL: j.kind, NAME_LABEL: j.name.rsplit("-", 1)[0], SEED_LABEL: "1"}
    # kwok completes Job pods after this delay (its default is 5s): "" means "keeps running".
    annotations["fleet.test/complete-after"] = j.complete_after or "8760h"
    if j.fail:
        labels[SIM_LABEL] = "fail"
    resources: dict[str, Any] = {"requests": {"cpu": "500m", "memory": "1Gi"}}
    if j.gpus:
        resources = {"requests": {"cpu": "2", "memory": "8Gi", GPU: str(j.gpus)},
                     "limits": {GPU: str(j.gpus)}}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": j.name, "namespace": j.namespace,
                     "labels": {COMPONENT_LABEL: j.kind, SEED_LABEL: "1"}},
        "spec": {
            "parallelism": j.parallelism,
            "completions": j.parallelism,
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels, "annotations": annotations},
                "spec": {"restartPolicy": "Never", "containers": [{
                    "name": "trainer",
                    "image": "registry.fleet.local/modelfleet/trainer:0.3.0",
                    "args": ["--job", j.name],
                    "resources": resources,
                }]},
            },
        },
    }
