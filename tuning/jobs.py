"""Training Jobs as objects: validate a `fleet train` request, render its Job (and Service).

Rendered from `manifests/training` (the same files `kubectl kustomize` gives), then this run's
name, labels, env, GPUs and parallelism are set. Single-worker runs are a plain Job; W >= 2
workers are an Indexed Job (completions = parallelism = W) with a headless Service as the
pods' subdomain, so each pod can build TF_CONFIG from its index and the peer hostnames.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet import kustomize
from fleet.model import COMPONENT_LABEL, GPU_RESOURCE, NAME_LABEL
from fleet.ops.deploy import manifests_dir

Obj = dict[str, Any]

TRAINING_COMPONENT = "training"
DEFAULT_IMAGE = "modelfleet/trainer:0.1.0"
TF_PORT = 2222
MAX_NAME = 52  # like CronJob names: leaves room for `-<index>` hostnames and pod suffixes
MAX_WORKERS = 64
SOURCE_ANNOTATION = "modelfleet.io/source"
SPEC_ANNOTATION = "modelfleet.io/train-spec"
_NAME = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_PARAM_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")
_QUANTITY = re.compile(r"^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_URI = re.compile(r"^(/|\./|\.\./|file://|hdfs://|webhdfs://)")


@dataclass(frozen=True)
class TrainSpec:
    name: str
    namespace: str
    code_uri: str
    data_uri: str
    output_uri: str
    gpus: int = 0  # per pod
    workers: int = 1
    params: tuple[tuple[str, str], ...] = ()
    epochs: int = 10
    image: str = DEFAULT_IMAGE
    runtime_class: str | None = None
    cpu: str | None = None
    memory: str | None = None
    backoff_limit: int = 2
    webhdfs_url: str = ""
    collective_timeout: int = 120
    model: str = ""  # the model name label; defaults to the job name
    source: str = ""  # who asked: "fleet train", "retrain <cronjob>", "sweep <name>"
    service_account: str = "fleet-trainer"
    env: tuple[tuple[str, str], ...] = ()

    @property
    def service_name(self) -> str:
        return f"{self.name}-workers"

    def params_json(self) -> str:
        return json.dumps(dict(self.params), sort_keys=True)


def parse_params(items: list[str]) -> tuple[tuple[str, str], ...]:
    """`k=v` pairs (later ones win) into a sorted tuple; ValueError names the bad item."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--param {item!r} must look like name=value")
        out[key.strip()] = value.strip()
    return tuple(sorted(out.items()))


def validate(spec: TrainSpec) -> list[str]:
    """Every problem with the request, as user-facing messages (empty: valid)."""
    p: list[str] = []
    if not _NAME.match(spec.name) or len(spec.name) > MAX_NAME:
        p.append(f"name {spec.name!r} must be a DNS label of at most {MAX_NAME} characters "
                 "(lowercase letters, digits, '-', starting with a letter)")
    for flag, uri in (("--code", spec.code_uri), ("--data", spec.data_uri),
                      ("--output", spec.output_uri)):
        if not uri:
            p.append(f"{flag} is required")
        elif not _URI.match(uri):
            p.append(f"{flag} {uri!r} must be an absolute path, file://, hdfs:// or webhdfs:// "
                     "URI (the pod reads it, so it must name shared storage)")
    if spec.code_uri and not spec.code_uri.rstrip("/").endswith((".whl", ".tar.gz", ".zip")):
        p.append(f"--code {spec.code_uri!r} must name a wheel or sdist (.whl, .tar.gz, .zip); "
                 "`fleet train publish-example --to URI` uploads one")
    if spec.gpus < 0:
        p.append(f"--gpus {spec.gpus} must be >= 0")
    if not 1 <= spec.workers <= MAX_WORKERS:
        p.append(f"--workers {spec.workers} must be between 1 and {MAX_WORKERS}")
    if not 1 <= spec.epochs <= 100_000:
        p.append(f"--epochs {spec.epochs} must be between 1 and 100000")
    if spec.backoff_limit < 0:
        p.append(f"--backoff-limit {spec.backoff_limit} must be >= 0")
    if not 10 <= spec.collective_timeout <= 3600:
        p.append(f"--collective-timeout {spec.collective_timeout} must be 10..3600 seconds")
    for key, value in spec.params:
        if not _PARAM_NAME.match(key):
            p.append(f"--param name {key!r} must be an identifier-like name")
        if _looks_float(value) and not math.isfinite(float(value)):
            p.append(f"--param {key}={value} is not a finite value")
    for flag, q in (("--cpu", spec.cpu), ("--memory", spec.memory)):
        if q is not None and not _QUANTITY.match(q):
            p.append(f"{flag} {q!r} is not a Kubernetes quantity (e.g. 500m, 2, 1Gi)")
    if spec.runtime_class is not None and not _NAME.match(spec.runtime_class):
        p.append(f"--runtime-class {spec.runtime_class!r} is not a valid name")
    return p


def _looks_float(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def _env(spec: TrainSpec) -> list[Obj]:
    pairs = [("CODE_URI", spec.code_uri), ("DATA_URI", spec.data_uri),
             ("OUTPUT_URI", spec.output_uri), ("EPOCHS", str(spec.epochs)),
             ("TRAIN_PARAMS", spec.params_json()),
             ("NUM_WORKERS", str(spec.workers)), ("TRAIN_SOURCE", spec.source or "fleet train"),
             ("COLLECTIVE_TIMEOUT", str(spec.collective_timeout))]
    if spec.workers > 1:
        pairs += [("SUBDOMAIN", spec.service_name), ("TF_PORT", str(TF_PORT))]
    if spec.webhdfs_url:
        pairs.append(("WEBHDFS_URL", spec.webhdfs_url))
    pairs += list(spec.env)
    return [{"name": k, "value": v} for k, v in pairs]


def build_objects(spec: TrainSpec, manifests: Path | None = None) -> list[Obj]:
    """[Service (W >= 2 only), Job] for this run, rendered from manifests/training."""
    objs = kustomize.render((manifests or manifests_dir()) / "training")
    job = next(o for o in objs if o["kind"] == "Job")
    svc = next(o for o in objs if o["kind"] == "Service")
    model = spec.model or spec.name
    labels = {COMPONENT_LABEL: TRAINING_COMPONENT, NAME_LABEL: model}
    job["metadata"].update(name=spec.name, namespace=spec.namespace)
    job["metadata"]["labels"] = {**job["metadata"].get("labels", {}), **labels}
    job["metadata"]["annotations"] = {
        SOURCE_ANNOTATION: spec.source or "fleet train",
        SPEC_ANNOTATION: json.dumps({"code": spec.code_uri, "data": spec.data_uri,
                                     "output": spec.output_uri, "params": dict(spec.params),
                                     "epochs": spec.epochs, "workers": spec.workers,
                                     "gpus": spec.gpus}, sort_keys=True)}
    jspec = job["spec"]
    jspec["backoffLimit"] = spec.backoff_limit
    tmpl = jspec["template"]
    tmpl["metadata"]["labels"] = {**tmpl["metadata"].get("labels", {}), **labels}
    pod = tmpl["spec"]
    pod["serviceAccountName"] = spec.service_account
    if spec.runtime_class:
        pod["runtimeClassName"] = spec.runtime_class
    container = pod["containers"][0]
    container["image"] = spec.image
    container["env"] = _env(spec) + container.get("env", [])
    resources: Obj = {}
    if spec.gpus:
        resources.setdefault("limits", {})[GPU_RESOURCE] = str(spec.gpus)
    for key, value in (("cpu", spec.cpu), ("memory", spec.memory)):
        if value:
            resources.setdefault("requests", {})[key] = value
            resources.setdefault("limits", {})[key] = value
    if resources:
        container["resources"] = resources
    out = []
    if spec.workers > 1:
        jspec.update(completions=spec.workers, parallelism=spec.workers, completionMode="Indexed")
        # A lost peer breaks the collective for everyone: fail the whole run with the reason
        # instead of re-running one index against survivors that already gave up.
        jspec["backoffLimit"] = 0
        pod["subdomain"] = spec.service_name
        container["ports"] = [{"name": "tf", "containerPort": TF_PORT}]
        svc["metadata"].update(name=spec.service_name, namespace=spec.namespace)
        svc["metadata"]["labels"] = {**svc["metadata"].get("labels", {}), **labels}
        svc["spec"]["selector"] = {"batch.kubernetes.io/job-name": spec.name}
        out.append(svc)
    out.append(job)
    return out


def rbac_objects(namespace: str, manifests: Path | None = None) -> list[Obj]:
    objs = kustomize.render((manifests or manifests_dir()) / "training" / "rbac")
    for o in objs:
        o["metadata"]["namespace"] = namespace
    return objs
