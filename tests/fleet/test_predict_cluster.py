"""`fleet predict` and `probe_now` against the real model server: a 1-replica Deployment of
`modelfleet/model-server` on the process kubelet, its model on the HDFS minicluster, reached
through the API server's port-forward."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fleet.kube import KubeClient
from fleet.ops import predict as ops
from fleet.portforward import PortForwarder
from tests.fixtures.cluster import TestCluster, wait_for
from tests.fleet.clusterkit import create_namespace, fleet, model_deployment
from tests.serving.conftest import make_demo

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs]


def digits_deployment(name: str, ns: str, model_uri: str, webhdfs: str) -> dict:
    probe = {"httpGet": {"path": "/v2/health/ready", "port": "http"}}
    c = {
        "name": "server", "image": "modelfleet/model-server",
        "resources": {"requests": {"cpu": "200m"}},
        "ports": [{"name": "http", "containerPort": 8080}],
        "env": [
            {"name": "MODEL_NAME", "value": "digits"},
            {"name": "MODEL_URI", "value": model_uri},
            {"name": "WEBHDFS_URL", "value": webhdfs},
            {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "PORT", "value": "8080"},
            {"name": "MODEL_CACHE_DIR", "value": "/var/cache/model"},
            {"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"},
        ],
        "startupProbe": {**probe, "periodSeconds": 1, "failureThreshold": 300},
        "readinessProbe": {**probe, "periodSeconds": 1, "failureThreshold": 2},
        "volumeMounts": [{"name": "model-cache", "mountPath": "/var/cache/model"}],
    }
    labels = {"app": name, "app.kubernetes.io/component": "model-server"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": ns, "labels": labels},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels}, "spec": {
                         "runtimeClassName": "fleet-local", "terminationGracePeriodSeconds": 5,
                         "automountServiceAccountToken": False, "containers": [c],
                         "volumes": [{"name": "model-cache", "emptyDir": {}}]}}}}


class Env:
    def __init__(self, cluster: TestCluster, ns: str, pod: str) -> None:
        self.cluster, self.ns, self.pod = cluster, ns, pod

    def predict(self, *args: str, kubeconfig: str | None = None):
        return fleet(self.cluster, "predict", "-n", self.ns, *args, kubeconfig=kubeconfig)


@pytest.fixture(scope="module")
def env(cluster: TestCluster, hdfs):  # noqa: ANN001
    uri = hdfs.uri("/fleet-predict-tests/digits")
    res = make_demo(uri, hdfs.env, "--epochs", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    ns = create_namespace(cluster, "predict")
    cluster.apply(digits_deployment("digits", ns, uri, hdfs.webhdfs_url))

    def ready_pod() -> str | None:
        for p in cluster.get_json("pods", "-n", ns, "-l", "app=digits")["items"]:
            if any(c["type"] == "Ready" and c["status"] == "True"
                   for c in p["status"].get("conditions", [])):
                return p["metadata"]["name"]
        return None

    pod = wait_for(ready_pod, timeout=240, what="a Ready digits pod")
    yield Env(cluster, ns, pod)
    cluster.kubectl_run("delete", "namespace", ns, "--wait=false", check=False)


def _lines(stdout: str) -> tuple[dict, dict[str, str]]:
    lines = stdout.splitlines()
    meta = dict(line.split(": ", 1) for line in lines[1:])
    return json.loads(lines[0]), meta


def _check_meta(env: Env, meta: dict[str, str], via: str = "port-forward") -> None:
    assert meta["pod"] == env.pod
    m = re.fullmatch(r"(\d+\.\d) ms", meta["latency"])
    assert m and 0 < float(m.group(1)) < 30000, meta
    assert re.fullmatch(rf"\d+\.\d ms \({re.escape(via)}.*\)", meta["connect"]), meta


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_example_prediction_names_the_pod_and_latency(env: Env, protocol: str) -> None:
    res = env.predict("digits", "--example", "--protocol", protocol)
    assert res.returncode == 0, res.stderr
    doc, meta = _lines(res.stdout)
    if protocol == "v2":
        out = doc["outputs"][0]
        assert out["shape"] == [1, 10] and len(out["data"]) == 10
    else:
        assert len(doc["predictions"]) == 1 and len(doc["predictions"][0]) == 10
    _check_meta(env, meta)


@pytest.mark.parametrize("protocol", ["v1", "v2"])
def test_input_file(env: Env, protocol: str, tmp_path: Path) -> None:
    image = [[[[0.5] for _ in range(8)] for _ in range(8)]] * 2  # a batch of 2
    body = ({"instances": image} if protocol == "v1" else
            {"inputs": [{"name": "image", "shape": [2, 8, 8, 1], "datatype": "FP32",
                         "data": [0.5] * 128}]})
    f = tmp_path / "in.json"
    f.write_text(json.dumps(body))
    res = env.predict("digits", "--input", str(f), "--protocol", protocol, "--pod", env.pod)
    assert res.returncode == 0, res.stderr
    doc, meta = _lines(res.stdout)
    if protocol == "v1":
        assert len(doc["predictions"]) == 2
    else:
        assert doc["outputs"][0]["shape"] == [2, 10]
    _check_meta(env, meta)


def test_model_4xx_is_printed_with_exit_1(env: Env, tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text(json.dumps({"inputs": [{"name": "wrong", "shape": [1, 8, 8, 1],
                                         "datatype": "FP32", "data": [0.0] * 64}]}))
    res = env.predict("digits", "--input", str(f))
    assert res.returncode == 1
    assert res.stderr.strip() == (
        f'error: model "digits" on pod/{env.pod} answered 400: unknown input \'wrong\' '
        "(signature 'serving_default' expects ['image'])")
    assert f"pod: {env.pod}" in res.stdout


def test_json_output_and_pod_ip(env: Env) -> None:
    res = env.predict("digits", "--example", "-o", "json", "--via", "pod-ip")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["pod"] == env.pod and doc["ok"] and doc["status"] == 200
    assert doc["via"].startswith("pod IP 127.1.")
    assert doc["request"]["inputs"][0]["shape"] == [1, 8, 8, 1]
    assert doc["latency_ms"] > 0


def test_ops_api_predict_and_probe_now(env: Env) -> None:
    client = KubeClient.from_kubeconfig(env.cluster.kubeconfig, namespace=env.ns)
    fwd = PortForwarder(env.cluster.kubeconfig)
    res = ops.predict(client, env.ns, "digits", example=True, protocol="v1", forwarder=fwd)
    assert res.ok and res.pod == env.pod and res.path == "/v1/models/digits:predict"
    assert res.connect_ms > 0 and res.latency_ms > 0
    probe = ops.probe_now(client, env.ns, env.pod, forwarder=fwd)
    assert (probe.status, probe.ok, probe.container) == (200, True, "server")
    assert probe.url == f"http://{env.pod}:8080/v2/health/ready"
    assert probe.latency_ms > 0
    body = json.loads(probe.body_head) if probe.body_head else {}
    assert body.get("ready", True) is True


def test_no_ready_pod(env: Env) -> None:
    env.cluster.apply(model_deployment("sick", env.ns, replicas=2, sim="unready"))

    def unready_events() -> bool:
        pods = env.cluster.get_json("pods", "-n", env.ns, "-l", "app=sick")["items"]
        return len(pods) == 2 and all(p["status"].get("phase") == "Running" for p in pods)

    wait_for(unready_events, timeout=60, what="2 running, unready sick pods")
    res = env.predict("sick", "--example")
    assert res.returncode == 1
    err = res.stderr.strip()
    assert err.startswith(f'error: no Ready pod for deployment "sick" in namespace "{env.ns}": '
                          "2 pods, none Ready: "), err
    assert err.count("Running, not ready") == 2, err
    res = env.predict("nosuch", "--example")
    assert res.returncode == 1
    assert res.stderr.strip() == 'Error from server (NotFound): deployments.apps "nosuch" not found'


def test_port_forward_forbidden_by_rbac(env: Env, tmp_path: Path) -> None:
    user = f"viewer-{env.ns}"
    env.cluster.apply([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "viewer", "namespace": env.ns},
         "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
                   {"apiGroups": ["apps"], "resources": ["deployments"],
                    "verbs": ["get", "list"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "viewer", "namespace": env.ns},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "viewer"},
         "subjects": [{"kind": "User", "name": user}]},
    ])
    kc = env.cluster.user_kubeconfig(user, tmp_path / "viewer.kubeconfig")
    wait_for(lambda: env.cluster.kubectl_run("get", "pods", "-n", env.ns, kubeconfig=kc,
                                             check=False).returncode == 0,
             timeout=30, what="the viewer Role to apply")
    res = env.predict("digits", "--example", kubeconfig=kc)
    assert res.returncode == 1
    err = res.stderr.strip()
    assert err.startswith(f'Error from server (Forbidden): pods "{env.pod}" is forbidden: '
                          f'User "{user}" cannot '), err
    assert 'resource "pods/portforward"' in err
    assert f"port-forward needs RBAC verbs create and get on pods/portforward in namespace " \
           f"{env.ns}" in err
