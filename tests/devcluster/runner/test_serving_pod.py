"""The real serving container as a pod on the process kubelet, its model on the HDFS minicluster."""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime

import httpx
import pytest

from tests.devcluster.runner.runnerkit import (
    condition,
    container_status,
    create,
    pod,
    ready,
    wait_pod,
)
from tests.fixtures.cluster import TestCluster, wait_for
from tests.serving.conftest import make_demo

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs]


def serving_pod(name: str, model_uri: str, webhdfs: str) -> dict:
    http_probe = {"httpGet": {"path": "/v2/health/ready", "port": "http"}}
    c = {
        "name": "server", "image": "modelfleet/model-server",
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
        "startupProbe": {**http_probe, "periodSeconds": 1, "failureThreshold": 300},
        "readinessProbe": {**http_probe, "periodSeconds": 1, "failureThreshold": 2},
        "volumeMounts": [{"name": "model-cache", "mountPath": "/var/cache/model"}],
    }
    return pod(name, [c], volumes=[{"name": "model-cache", "emptyDir": {}}])


def _time(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.fixture(scope="module")
def digits_uri(hdfs) -> str:  # noqa: ANN001
    uri = hdfs.uri("/runner-tests/digits")
    res = make_demo(uri, hdfs.env, "--epochs", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    return uri


def test_serving_pod_ready_after_model_loads_then_predicts(
        cluster: TestCluster, namespace: str, hdfs, digits_uri: str) -> None:  # noqa: ANN001
    create(cluster, namespace, serving_pod("digits", digits_uri, hdfs.webhdfs_url))
    p = wait_pod(cluster, namespace, "digits", ready, timeout=240, what="Ready")
    def loaded_line() -> str | None:
        # Log lines reach the CRI file within the runner's copy interval (0.2 s).
        log = cluster.kubectl_run("logs", "digits", "-n", namespace, "--timestamps").stdout
        return next((line for line in log.splitlines() if "warm ms" in line), None)

    loaded = wait_for(loaded_line, timeout=10, what="the server's load line in its log")
    # Ready only after the model was fetched from HDFS, loaded and warmed up.
    assert _time(condition(p, "Ready")["lastTransitionTime"]) >= \
        _time(loaded.split()[0]).replace(microsecond=0)
    assert container_status(p)["restartCount"] == 0

    pf = subprocess.Popen([cluster.kubectl, "port-forward", "-n", namespace, "pod/digits",
                           ":8080"], env=cluster.env, stdout=subprocess.PIPE, text=True)
    try:
        line = wait_for(lambda: pf.stdout.readline(), timeout=20, what="port-forward")
        port = int(re.search(r"127\.0\.0\.1:(\d+)", line).group(1))
        body = {"inputs": [{"name": "image", "shape": [1, 8, 8, 1], "datatype": "FP32",
                            "data": [0.0] * 64}]}
        r = httpx.post(f"http://127.0.0.1:{port}/v2/models/digits/infer", json=body,
                       timeout=30, trust_env=False)
        assert r.status_code == 200, r.text
        out = r.json()["outputs"][0]
        assert out["shape"] == [1, 10] and len(out["data"]) == 10
    finally:
        pf.terminate()
        pf.wait(10)


def test_corrupt_artifact_keeps_the_pod_unready_with_the_error_in_its_logs(
        cluster: TestCluster, namespace: str, hdfs, digits_uri: str) -> None:  # noqa: ANN001
    client = hdfs.client()
    src = digits_uri.split(str(hdfs.rpc_port), 1)[1]
    dst = "/runner-tests/corrupt"
    client.delete(dst, recursive=True)
    for root, _dirs, files in client.walk(src):
        for f in files:
            with client.read(f"{root}/{f}") as r:
                data = r.read()
            if f == "saved_model.pb":
                data = b"not a saved model" + data[:10]
            client.write(f"{dst}{root[len(src):]}/{f}", data, overwrite=True)
    create(cluster, namespace, serving_pod("corrupt", hdfs.uri(dst), hdfs.webhdfs_url))

    def failed_to_load() -> str | None:
        out = cluster.kubectl_run("logs", "corrupt", "-n", namespace, check=False).stdout
        return out if "failed to load" in out else None

    log = wait_for(failed_to_load, timeout=180, what="the load error in kubectl logs")
    assert "saved_model.pb" in log or "sha256" in log, log
    p = json.loads(cluster.kubectl_run("get", "pod", "corrupt", "-n", namespace,
                                       "-o", "json").stdout)
    assert not ready(p)
    assert condition(p, "ContainersReady")["reason"] == "ContainersNotReady"
