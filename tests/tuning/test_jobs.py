"""Training Job objects: validation messages and the rendered Job/Service."""

from __future__ import annotations

import json

import pytest

from tuning import jobs
from tuning.jobs import TrainSpec


def spec(**kw) -> TrainSpec:
    base = dict(name="digits", namespace="ml", code_uri="hdfs://nn:8020/code/t-1.0-py3-none-any.whl",
                data_uri="hdfs://nn:8020/data", output_uri="hdfs://nn:8020/models/digits")
    return TrainSpec(**{**base, **kw})


def test_a_valid_request_has_no_problems() -> None:
    assert jobs.validate(spec()) == []


@pytest.mark.parametrize("kw, needle", [
    ({"name": "Digits"}, "DNS label"),
    ({"name": "d" * 53}, "at most 52"),
    ({"name": "-x"}, "DNS label"),
    ({"code_uri": ""}, "--code is required"),
    ({"code_uri": "s3://b/t.whl"}, "must be an absolute path"),
    ({"code_uri": "/code/trainer.py"}, "wheel or sdist"),
    ({"data_uri": "data"}, "--data 'data' must be an absolute path"),
    ({"output_uri": ""}, "--output is required"),
    ({"gpus": -1}, "--gpus -1"),
    ({"workers": 0}, "--workers 0"),
    ({"workers": 65}, "--workers 65"),
    ({"epochs": 0}, "--epochs 0"),
    ({"params": (("lr", "nan"),)}, "not a finite value"),
    ({"params": (("bad name", "1"),)}, "identifier-like"),
    ({"cpu": "two"}, "not a Kubernetes quantity"),
    ({"collective_timeout": 5}, "--collective-timeout 5"),
])
def test_each_bad_field_is_named(kw, needle) -> None:
    problems = jobs.validate(spec(**kw))
    assert len(problems) == 1 and needle in problems[0], problems


def test_parse_params_rejects_items_without_equals_and_keeps_the_last() -> None:
    assert jobs.parse_params(["a=1", "b=x=y", "a=2"]) == (("a", "2"), ("b", "x=y"))
    with pytest.raises(ValueError, match="name=value"):
        jobs.parse_params(["lr"])


def _env(job: dict) -> dict:
    c = job["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}


def test_single_worker_job_carries_inputs_policy_and_gpus() -> None:
    (job,) = jobs.build_objects(spec(gpus=2, params=(("lr", "0.01"),), epochs=3,
                                     runtime_class="fleet-local"))
    assert job["kind"] == "Job" and job["metadata"]["name"] == "digits"
    assert job["metadata"]["labels"]["app.kubernetes.io/component"] == "training"
    js = job["spec"]
    assert "completionMode" not in js and js["backoffLimit"] == 2
    rules = js["podFailurePolicy"]["rules"]
    assert {"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                                 "values": [42]}} in rules
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]} in rules
    pod = js["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["runtimeClassName"] == "fleet-local"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
    env = _env(job)
    assert env["CODE_URI"].endswith(".whl") and env["EPOCHS"] == "3"
    assert json.loads(env["TRAIN_PARAMS"]) == {"lr": "0.01"}
    assert env["NUM_WORKERS"] == "1" and "SUBDOMAIN" not in env
    assert env["JOB_NAME"] == {"fieldRef": {
        "fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}}


def test_distributed_job_is_indexed_with_a_headless_service_as_subdomain() -> None:
    svc, job = jobs.build_objects(spec(workers=3))
    assert svc["kind"] == "Service" and svc["spec"]["clusterIP"] == "None"
    assert svc["spec"]["publishNotReadyAddresses"] is True
    assert svc["spec"]["selector"] == {"batch.kubernetes.io/job-name": "digits"}
    js = job["spec"]
    assert (js["completionMode"], js["completions"], js["parallelism"]) == ("Indexed", 3, 3)
    assert js["backoffLimit"] == 0  # a lost peer fails the whole run
    assert js["template"]["spec"]["subdomain"] == svc["metadata"]["name"] == "digits-workers"
    env = _env(job)
    assert env["NUM_WORKERS"] == "3" and env["SUBDOMAIN"] == "digits-workers"
    assert env["TF_PORT"] == "2222"


def test_rbac_objects_are_namespaced() -> None:
    objs = jobs.rbac_objects("ml")
    kinds = sorted(o["kind"] for o in objs)
    assert kinds == ["Role"] * 3 + ["RoleBinding"] * 3 + ["ServiceAccount"] * 3
    assert {o["metadata"]["namespace"] for o in objs} == {"ml"}
    trainer = next(o for o in objs if o["kind"] == "Role" and o["metadata"]["name"] ==
                   "fleet-trainer")
    assert trainer["rules"][0] == {"apiGroups": ["batch"], "resources": ["jobs"],
                                 "verbs": ["get", "patch"]}
