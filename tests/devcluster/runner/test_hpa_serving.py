"""An HPA on CPU scales a real serving Deployment (`fleet deploy` of the digits model from HDFS,
LiteRT fp32, on the process kubelet) up under a bounded loopback load and back down after it.

Sizing, measured on this machine (one `python -m serving` process, SERVING_WORKERS=1, response
cache off): a V2 `/infer` of one 8x8 image costs the server ~0.4 ms CPU, a batch of 32 ~0.7 ms.
So the ≤ 100 requests/s allowed here make ~70m of CPU at most; 100m is out of reach and a
request of 200m needs a target of 25 % (50m) for the HPA to want a second replica. The response
cache is turned off (RESPONSE_CACHE_SIZE=0) because the load sends one body over and over, which
the latency overlay's cache would answer without running the model.

Usage flows runner (/proc, every 10 s) -> kwok ResourceUsage -> metrics-server -> HPA controller
(sync 5 s); see test_hpa_real.py for the same on a tiny server. The HPA that `fleet deploy`
renders (manifests/base/hpa.yaml) sets `behavior.scaleDown.stabilizationWindowSeconds: 300`,
which overrides the controller-manager's 30 s flag; the test patches the window to 30 s after
the deploy (what an operator would do with `kubectl patch`) so the scale-down shows in a minute.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from devcluster.cluster import components
from tests.fixtures.cluster import TestCluster, wait_for
from tests.serving.conftest import make_demo

pytestmark = [pytest.mark.cluster, pytest.mark.hdfs]

REPO = Path(__file__).resolve().parents[3]
NAME = "digits"
CPU_REQUEST_M = 200
CPU_TARGET_PCT = 25
TARGET_M = CPU_REQUEST_M * CPU_TARGET_PCT / 100  # 50m: the usage the HPA holds one pod to
DOWNSCALE_WINDOW_S = 30  # = the controller-manager's flag here
HPA_TOLERANCE = 0.1  # the controller-manager's default
RATE = 100.0  # requests per second, all senders together (the bound)
SENDERS = 4
LOAD_LIMIT_S = 150.0  # the load stops by then whatever happens
BATCH = 32  # the server's max_batch_size
BODY = json.dumps({"inputs": [{"name": "image", "shape": [BATCH, 8, 8, 1], "datatype": "FP32",
                               "data": [0.25] * (64 * BATCH)}]}).encode()


def fleet(cluster: TestCluster, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fleet.cli", *args], cwd=REPO, env=cluster.env,
                          capture_output=True, text=True, timeout=timeout)


class Load:
    """RATE requests/s of V2 /infer to one pod IP from SENDERS threads, at most LOAD_LIMIT_S."""

    def __init__(self, url: str) -> None:
        assert url.startswith("http://127.")  # loopback only
        self.url = url
        self.outcomes: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(i,), daemon=True)
                         for i in range(SENDERS)]
        self.t0 = 0.0

    def _send(self, index: int) -> None:
        interval = SENDERS / RATE
        next_at = self.t0 + index * interval / SENDERS
        with httpx.Client(timeout=10.0, trust_env=False) as http:
            while time.monotonic() - self.t0 < LOAD_LIMIT_S:
                delay = next_at - time.monotonic()
                if delay > 0 and self._stop.wait(delay):
                    return
                if self._stop.is_set():
                    return
                next_at = max(next_at + interval, time.monotonic() - interval)
                try:
                    r = http.post(self.url, content=BODY,
                                  headers={"content-type": "application/json"})
                    outcome = str(r.status_code)
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                with self._lock:
                    self.outcomes[outcome] += 1

    def start(self) -> Load:
        self.t0 = time.monotonic()
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> Counter[str]:
        self._stop.set()
        for t in self._threads:
            t.join(15)
        with self._lock:
            return Counter(self.outcomes)


@pytest.fixture(scope="module")
def digits_uri(hdfs) -> str:  # noqa: ANN001
    uri = hdfs.uri("/hpa-serving/digits")
    res = make_demo(uri, hdfs.env, "--epochs", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    return uri


def cpu_millis(text: str) -> float:
    """`kubectl top` CPU: 72m, or whole cores."""
    return float(text[:-1]) if text.endswith("m") else float(text) * 1000


def test_hpa_scales_the_digits_server_up_under_load_and_back_down(
        cluster: TestCluster, namespace: str, hdfs, digits_uri: str) -> None:  # noqa: ANN001
    assert components.HPA_DOWNSCALE_STABILIZATION == "30s" == f"{DOWNSCALE_WINDOW_S}s"
    r = fleet(cluster, "deploy", NAME, "--model-uri", digits_uri, "-n", namespace,
              "--runtime-class", "fleet-local", "--runtime", "tflite-fp32",
              "--cpu", f"{CPU_REQUEST_M}m", "--memory", "1Gi",
              "--min-replicas", "1", "--max-replicas", "2", "--cpu-target", str(CPU_TARGET_PCT),
              "--env", f"WEBHDFS_URL={hdfs.webhdfs_url}", "--env", "SERVING_WORKERS=1",
              "--env", "RESPONSE_CACHE_SIZE=0", "--env", "TF_CPP_MIN_LOG_LEVEL=2",
              "--timeout", "150s", "-o", "json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["available"] and out["ready"] == 1, out

    hpa = cluster.get_json("hpa", NAME, "-n", namespace)
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 2)
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == CPU_TARGET_PCT
    assert hpa["spec"]["behavior"]["scaleDown"]["stabilizationWindowSeconds"] == 300
    cluster.kubectl_run("patch", "hpa", NAME, "-n", namespace, "--type", "merge", "-p",
                        json.dumps({"spec": {"behavior": {"scaleDown": {
                            "stabilizationWindowSeconds": DOWNSCALE_WINDOW_S}}}}))

    def dep() -> dict:
        return cluster.get_json("deployment", NAME, "-n", namespace)

    def pods() -> list[dict]:
        return cluster.get_json("pods", "-n", namespace, "-l",
                                f"app.kubernetes.io/name={NAME}")["items"]

    def utilization() -> int | None:
        h = cluster.get_json("hpa", NAME, "-n", namespace)
        for m in h.get("status", {}).get("currentMetrics") or []:
            # Before the first reading the entry is there but empty ({"type": ""}).
            u = (m.get("resource") or {}).get("current", {}).get("averageUtilization")
            if u is not None:
                return u
        return None

    wait_for(lambda: utilization() is not None, timeout=120, interval=1,
             what="the HPA reading the server's CPU usage")
    idle_util = utilization()
    assert idle_util is not None and idle_util < CPU_TARGET_PCT, idle_util
    assert dep()["spec"]["replicas"] == 1  # idle: no scale-up without load

    [first] = pods()
    assert first["spec"]["nodeName"].startswith("local-")  # the real server on the runner
    busy = first["metadata"]["name"]
    load = Load(f"http://{first['status']['podIP']}:8080/v2/models/{NAME}/infer").start()
    top: list[float] = []

    def two_ready() -> bool:
        got = cluster.kubectl_run("top", "pod", busy, "-n", namespace, "--no-headers",
                                  check=False)
        if got.returncode == 0 and got.stdout.split():
            top.append(cpu_millis(got.stdout.split()[1]))
        return (dep()["status"].get("readyReplicas") or 0) >= 2

    try:
        wait_for(two_ready, timeout=LOAD_LIMIT_S, interval=1,
                 what="a second Ready replica under load")
        up_s = time.monotonic() - load.t0
    finally:
        outcomes = load.stop()
    stopped = time.monotonic()
    # The busy pod's usage, as `kubectl top` showed it, was past the HPA's target + tolerance.
    assert top and max(top) > TARGET_M * (1 + HPA_TOLERANCE), top
    assert set(outcomes) == {"200"}, outcomes  # the server kept answering under its limit
    new = [p for p in pods() if p["metadata"]["name"] != busy]
    assert len(new) == 1 and new[0]["spec"]["nodeName"].startswith("local-"), new

    wait_for(lambda: dep()["spec"]["replicas"] == 1, timeout=240, interval=1,
             what="the HPA scaling back to 1 after the load")
    down_s = time.monotonic() - stopped
    wait_for(lambda: len(pods()) == 1, timeout=120, interval=1,
             what="the second pod terminated (preStop 10 s + drain)")
    gone_s = time.monotonic() - stopped
    # Not before the stabilization window has passed (the usage reading lags up to ~20 s).
    assert down_s >= DOWNSCALE_WINDOW_S - 5, down_s

    events = cluster.get_json("events", "-n", namespace, "--field-selector",
                              "involvedObject.kind=HorizontalPodAutoscaler")["items"]
    rescales = [e["message"] for e in events if e["reason"] == "SuccessfulRescale"]
    assert any(m.startswith("New size: 2;") for m in rescales), rescales
    assert any(m.startswith("New size: 1;") for m in rescales), rescales
    print(f"\nHPA serving: idle utilization {idle_util}%; load {sum(outcomes.values())} "
          f"requests {dict(outcomes)}; busy pod top max {max(top):.0f}m (samples {top}); "
          f"load start -> 2nd Ready replica {up_s:.1f}s; load end -> HPA at 1 {down_s:.1f}s, "
          f"pod gone {gone_s:.1f}s")
