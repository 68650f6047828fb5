"""An HPA on CPU really scales a Deployment of runner pods: up under a bounded loopback load,
back down after it (the local controller-manager's downscale stabilization is 30s).

The pods are small `python:3.11` HTTP servers that burn CPU per request (the issue prefers the
real model server; this keeps the 2-core machine usable). Usage flows runner -> ResourceUsage
-> kwok Metric -> metrics-server -> HPA controller, the same path `fleet deploy`'s HPA uses.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest

from devcluster.cluster import components
from tests.fixtures.cluster import TestCluster, wait_for

pytestmark = pytest.mark.cluster

SERVER = """
import http.server, os, time
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        t = time.process_time()
        while time.process_time() - t < 0.05:
            pass
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
"""
LOAD_LIMIT_S = 180  # the load stops by then whatever happens
CLIENTS = 2


def manifests(ns: str) -> list[dict]:
    labels = {"app": "burner"}
    dep = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "burner", "namespace": ns},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels}, "spec": {
                     "runtimeClassName": "fleet-local",
                     "terminationGracePeriodSeconds": 2,
                     "containers": [{
                         "name": "server", "image": "python:3.11",
                         "command": ["python", "-u", "-c", SERVER],
                         "env": [{"name": "POD_IP", "valueFrom": {
                             "fieldRef": {"fieldPath": "status.podIP"}}}],
                         "ports": [{"containerPort": 8080}],
                         "readinessProbe": {"tcpSocket": {"port": 8080},
                                            "periodSeconds": 1},
                         "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                                       "limits": {"cpu": "500m", "memory": "256Mi"}}}]}}},
    }
    hpa = {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": "burner", "namespace": ns},
        "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment",
                                    "name": "burner"},
                 "minReplicas": 1, "maxReplicas": 2,
                 "metrics": [{"type": "Resource", "resource": {
                     "name": "cpu", "target": {"type": "Utilization",
                                               "averageUtilization": 50}}}]},
    }
    return [dep, hpa]


def load(url: str, stop: threading.Event, deadline: float) -> None:
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=5).read()
        except OSError:
            time.sleep(0.1)


def test_hpa_scales_a_runner_deployment_up_under_load_and_back_down(
        cluster: TestCluster, namespace: str) -> None:
    assert components.HPA_DOWNSCALE_STABILIZATION == "30s"
    cluster.apply(manifests(namespace))

    def dep() -> dict:
        return cluster.get_json("deployment", "burner", "-n", namespace)

    wait_for(lambda: dep()["status"].get("readyReplicas") == 1, timeout=90,
             what="the first replica Ready")

    def hpa_sees_usage() -> bool:
        h = cluster.get_json("hpa", "burner", "-n", namespace)
        cur = h.get("status", {}).get("currentMetrics") or []
        # Before the first reading the entry is there but empty ({"type": ""}).
        return any((m.get("resource") or {}).get("current", {}).get("averageUtilization")
                   is not None for m in cur)

    wait_for(hpa_sees_usage, timeout=120, interval=1, what="the HPA reading CPU usage")
    assert dep()["spec"]["replicas"] == 1  # idle: no scale-up without load

    pods = json.loads(cluster.kubectl_run("get", "pods", "-n", namespace, "-l", "app=burner",
                                          "-o", "json").stdout)["items"]
    url = f"http://{pods[0]['status']['podIP']}:8080/"
    assert url.startswith("http://127.")  # loopback only
    stop = threading.Event()
    started = time.monotonic()
    threads = [threading.Thread(target=load, args=(url, stop, started + LOAD_LIMIT_S),
                                daemon=True) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: (dep()["status"].get("readyReplicas") or 0) >= 2,
                 timeout=LOAD_LIMIT_S, interval=1, what="a second Ready replica under load")
        up_s = time.monotonic() - started
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    stopped = time.monotonic()
    wait_for(lambda: dep()["spec"]["replicas"] == 1, timeout=240, interval=1,
             what="the HPA scaling back to 1 after the load")
    down_s = time.monotonic() - stopped
    events = cluster.kubectl_run("get", "events", "-n", namespace,
                                 "--field-selector", "involvedObject.kind=HorizontalPodAutoscaler",
                                 "-o", "json").stdout
    reasons = [e["reason"] for e in json.loads(events)["items"]]
    assert "SuccessfulRescale" in reasons, reasons
    # Not before the 30s stabilization window has passed.
    assert down_s >= 25, down_s
    print(f"\nHPA: load start -> 2nd Ready replica {up_s:.1f}s; "
          f"load end -> scaled to 1 {down_s:.1f}s")
