"""`fleet deploy` against the real local cluster: the `fleet` command itself, as a user runs it.

Pods on kwok's simulated nodes become Ready at once (deploy mechanics, GPUs, rollback); the
digits model from HDFS really runs on the process kubelet (RuntimeClass fleet-local).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fleet.kube import KubeClient
from fleet.ops import deploy as deploy_mod
from tests.fixtures.cluster import TestCluster
from tests.serving.conftest import make_demo

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[2]
KINDS = ("service", "deployment", "poddisruptionbudget", "horizontalpodautoscaler", "httproute")
SMALL = ("--cpu", "100m", "--memory", "256Mi", "--replicas", "1")


def fleet(cluster: TestCluster, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleet.cli", *args], cwd=REPO, env=cluster.env,
                          capture_output=True, text=True, timeout=timeout)


def present(cluster: TestCluster, namespace: str, name: str) -> list[str]:
    found = []
    for kind in KINDS:
        r = cluster.kubectl_run("get", kind, name, "-n", namespace, "-o", "name", check=False)
        if r.returncode == 0:
            found.append(kind)
    return found


def test_deploy_until_available_with_the_route_stored(cluster: TestCluster,
                                                      namespace: str) -> None:
    r = fleet(cluster, "deploy", "sim", "--model-uri", "hdfs://nn:8020/models/sim",
              "-n", namespace, "--version", "3", "--timeout", "90s", *SMALL)
    assert r.returncode == 0, r.stderr
    assert 'deployment "sim" is Available: 1/1 pods ready' in r.stdout
    assert "pods created 1/1, ready 1/1" in r.stderr  # live progress on stderr
    assert present(cluster, namespace, "sim") == list(KINDS)
    route = cluster.get_json("httproute", "sim", "-n", namespace)
    assert route["spec"]["parentRefs"][0] == {
        "group": "gateway.networking.k8s.io", "kind": "Gateway", "namespace": "fleet-system",
        "name": "fleet-gateway"}
    assert route["spec"]["rules"][0]["matches"][0]["path"] == {"type": "PathPrefix",
                                                               "value": "/models/sim"}
    assert route["spec"]["rules"][0]["backendRefs"][0]["name"] == "sim"
    dep = cluster.get_json("deployment", "sim", "-n", namespace, "--show-managed-fields")
    managers = {(m["manager"], m["operation"]) for m in dep["metadata"]["managedFields"]}
    assert ("modelfleet", "Apply") in managers
    assert dep["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/version"] == "3"
    # It shows up in the fleet table like any model deployment.
    ls = fleet(cluster, "ls", "-n", namespace, "-o", "json")
    assert [(d["name"], d["version"]) for d in json.loads(ls.stdout)] == [("sim", "3")]


def test_dry_run_writes_nothing(cluster: TestCluster, namespace: str) -> None:
    r = fleet(cluster, "deploy", "dry", "--model-uri", "hdfs://nn:8020/m", "-n", namespace,
              "--dry-run", *SMALL)
    assert r.returncode == 0, r.stderr
    import yaml

    kinds = [o["kind"] for o in yaml.safe_load_all(r.stdout)]
    assert kinds == ["Service", "Deployment", "PodDisruptionBudget", "HorizontalPodAutoscaler",
                     "HTTPRoute"]
    assert "nothing was written" in r.stderr
    assert present(cluster, namespace, "dry") == []


def test_an_existing_deployment_is_refused_with_the_rollout_hint(cluster: TestCluster,
                                                                 namespace: str) -> None:
    first = fleet(cluster, "deploy", "twice", "--model-uri", "hdfs://nn:8020/m", "-n",
                  namespace, "--no-wait", *SMALL)
    assert first.returncode == 0, first.stderr
    before = cluster.get_json("deployment", "twice", "-n", namespace)["metadata"]
    again = fleet(cluster, "deploy", "twice", "--model-uri", "hdfs://nn:8020/other", "-n",
                  namespace, *SMALL)
    assert again.returncode == 1
    assert "already exists" in again.stderr and "`fleet rollout twice" in again.stderr
    after = cluster.get_json("deployment", "twice", "-n", namespace)["metadata"]
    assert after["resourceVersion"] == before["resourceVersion"]


def test_gpus_the_cluster_lacks_time_out_as_pending_and_are_left(cluster: TestCluster,
                                                                 namespace: str) -> None:
    r = fleet(cluster, "deploy", "big", "--model-uri", "hdfs://nn:8020/m", "-n", namespace,
              "--gpus", "8", "--timeout", "8s", *SMALL)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith('error: deployment "big" not Available after 8s: pod big-'), last
    assert "is Pending for lack of nvidia.com/gpu" in last and "left as it is" in last
    assert present(cluster, namespace, "big") == list(KINDS)


def test_rollback_on_failure_removes_what_it_created(cluster: TestCluster,
                                                     namespace: str) -> None:
    r = fleet(cluster, "deploy", "big", "--model-uri", "hdfs://nn:8020/m", "-n", namespace,
              "--gpus", "8", "--timeout", "5s", "--rollback-on-failure", *SMALL)
    assert r.returncode == 1
    assert "removed what this deploy created" in r.stderr
    assert present(cluster, namespace, "big") == []


def test_without_the_gateway_api_the_route_is_skipped_or_required(
        cluster: TestCluster, namespace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # The check asks the API group's discovery; a version nobody serves stands for a cluster
    # without the Gateway API CRDs.
    monkeypatch.setattr(deploy_mod, "GATEWAY_VERSION", "gateway.networking.k8s.io/v0missing")
    client = KubeClient.from_kubeconfig(cluster.kubeconfig, None, namespace)
    spec = deploy_mod.DeploySpec(name="noroute", namespace=namespace, model_uri="hdfs://nn/m",
                                 cpu="100m", memory="256Mi", replicas=1)
    with pytest.raises(deploy_mod.FleetError, match="--require-route was given"):
        deploy_mod.deploy(client, spec, require_route=True, wait=False)
    assert present(cluster, namespace, "noroute") == []
    said: list[str] = []
    result, _ = deploy_mod.deploy(client, spec, timeout=60, on_message=said.append)
    assert result.available
    assert any("deploying without the HTTPRoute" in s for s in said)
    assert present(cluster, namespace, "noroute") == list(KINDS[:-1])


# ---- the real model on the process kubelet ---------------------------------------------------

@pytest.fixture(scope="module")
def digits_uri(hdfs) -> str:  # noqa: ANN001
    uri = hdfs.uri("/deploy-tests/digits")
    res = make_demo(uri, hdfs.env, "--epochs", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    return uri


def real(hdfs, *extra: str) -> tuple[str, ...]:  # noqa: ANN001
    return ("--runtime-class", "fleet-local", "--cpu", "500m", "--memory", "2Gi",
            "--replicas", "1",
            "--env", f"WEBHDFS_URL={hdfs.webhdfs_url}", "--env", "SERVING_WORKERS=1",
            "--env", "TF_CPP_MIN_LOG_LEVEL=2", *extra)


@pytest.mark.hdfs
def test_the_digits_model_deploys_until_available(cluster: TestCluster, namespace: str,
                                                  hdfs, digits_uri: str) -> None:  # noqa: ANN001
    r = fleet(cluster, "deploy", "digits", "--model-uri", digits_uri, "-n", namespace,
              "--timeout", "150s", "-o", "json", *real(hdfs))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["available"] and out["ready"] == 1
    assert out["route"] == "/models/digits on Gateway fleet-system/fleet-gateway"
    pods = cluster.get_json("pods", "-n", namespace, "-l", "app.kubernetes.io/name=digits")
    [p] = pods["items"]
    assert p["spec"]["nodeName"].startswith("local-")  # really running on the runner
    assert {c["type"]: c["status"] for c in p["status"]["conditions"]}["Ready"] == "True"


@pytest.mark.hdfs
def test_a_bad_model_uri_times_out_naming_the_failing_probe(cluster: TestCluster,
                                                            namespace: str, hdfs) -> None:  # noqa: ANN001
    r = fleet(cluster, "deploy", "missing", "--model-uri", hdfs.uri("/deploy-tests/nothing"),
              "-n", namespace, "--timeout", "40s", *real(hdfs))
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert 'deployment "missing" not Available after 40s: pod missing-' in last, r.stderr
    assert "probe failed" in last, last
    assert present(cluster, namespace, "missing") == list(KINDS)
