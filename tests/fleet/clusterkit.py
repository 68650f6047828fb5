"""Helpers for fleet's real-cluster tests: model Deployments, twins, fleet CLI runs, snapshots."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from typing import Any

from tests.fixtures.cluster import TestCluster, wait_for

IMAGE = "registry.invalid/serve:{}"


def model_deployment(name: str, namespace: str, *, version: int = 1, replicas: int = 2,
                     sim: str | None = None) -> dict[str, Any]:
    labels = {"app": name, "app.kubernetes.io/component": "model-server",
              "app.kubernetes.io/name": name}
    if sim:
        labels["fleet.test/sim"] = sim
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": {**labels, "app.kubernetes.io/version": str(version)}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                "name": "server", "image": IMAGE.format(version),
                "env": [{"name": "MODEL_URI", "value": f"hdfs:///models/{name}/{version}"}],
                "ports": [{"containerPort": 8080}],
                "readinessProbe": {"httpGet": {"path": "/v2/health/ready", "port": 8080},
                                   "periodSeconds": 5},
                "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 3},
            }]}},
        },
    }


def create_namespace(cluster: TestCluster, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:5]}"
    cluster.kubectl_run("create", "namespace", name)
    wait_for(lambda: cluster.kubectl_run("get", "serviceaccount", "default", "-n", name,
                                         check=False).returncode == 0, timeout=30)
    return name


def settled(cluster: TestCluster, ns: str, name: str) -> dict[str, Any]:
    """Wait until the controller observed the latest spec and the rollout finished (or paused)."""
    def check():
        d = cluster.get_json("deployment", name, "-n", ns)
        st, spec = d.get("status", {}), d["spec"]
        if st.get("observedGeneration", 0) < d["metadata"]["generation"]:
            return None
        if spec.get("paused"):
            return d
        want = spec.get("replicas", 1)
        ok = (st.get("updatedReplicas", 0) == want and st.get("replicas", 0) == want
              and st.get("availableReplicas", 0) == want)
        return d if ok else None
    return wait_for(check, timeout=90, what=f"{ns}/{name} settled")


def kubectl(cluster: TestCluster, *args: str) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl_run(*args, check=False)


def fleet(cluster: TestCluster, *args: str, kubeconfig: str | None = None
          ) -> subprocess.CompletedProcess[str]:
    env = cluster.env | ({"KUBECONFIG": kubeconfig} if kubeconfig else {})
    return subprocess.run([sys.executable, "-m", "fleet.cli", *args], capture_output=True,
                          text=True, env=env, timeout=120)


def with_history(cluster: TestCluster, ns: str, name: str, revisions: int = 3) -> None:
    """Create `name` at version 1, then roll it to 2..N with a change-cause each time."""
    cluster.apply(model_deployment(name, ns))
    settled(cluster, ns, name)
    for v in range(2, revisions + 1):
        # One write for cause + image, so no controller sync can land between them.
        patch = json.dumps([
            {"op": "add", "path": "/metadata/annotations/kubernetes.io~1change-cause",
             "value": f"release {v}"},
            {"op": "replace", "path": "/spec/template/spec/containers/0/image",
             "value": IMAGE.format(v)},
        ])
        cluster.kubectl_run("patch", "-n", ns, f"deployment/{name}", "--type=json", "-p", patch)
        settled(cluster, ns, name)


def snapshot(cluster: TestCluster, ns: str, name: str) -> dict[str, Any]:
    """What parity compares: template, annotations, paused/replicas, revision → image map."""
    d = settled(cluster, ns, name)
    rses = cluster.get_json("replicasets", "-n", ns, "-l", f"app={name}")["items"]
    revs = sorted(
        (int(rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]),
         rs["spec"]["template"]["spec"]["containers"][0]["image"],
         rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision-history", ""))
        for rs in rses)
    annotations = dict(d["metadata"].get("annotations", {}))
    applied = "kubectl.kubernetes.io/last-applied-configuration"
    if applied in annotations:  # names the twin's namespace; everything else must match
        annotations[applied] = annotations[applied].replace(f'"{ns}"', '"NS"')
    return {
        "template": d["spec"]["template"],
        "annotations": annotations,
        "paused": d["spec"].get("paused", False),
        "replicas": d["spec"]["replicas"],
        "revisions": revs,
    }
