"""Benchmarks of the process kubelet (results go to docs/benchmarks.md).

  python bench/runner/bench_runner.py serving --runs 5   serving pod create→Ready vs by hand
  python bench/runner/bench_runner.py scale --pods 100   100 HTTP pods (one Deployment) to
                                                         Available vs kwok-simulated; RSS, CPU
  python bench/runner/bench_runner.py probe --runs 5     readiness failure → Ready=False

Each command starts its own local cluster (and HDFS for `serving`) in a throwaway state dir;
everything binds 127.0.0.1 or the pods' 127.1.128.x IPs. Prints one JSON line per result and
writes the raw results to --out (default bench/runner/results-<command>.json).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from devcluster.cluster import LocalCluster  # noqa: E402

HTTP_POD_CODE = """
import http.server, os
broken = False
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global broken
        if self.path == "/fail":
            broken = True
        code = 500 if broken and self.path == "/ready" else 200
        self.send_response(code); self.send_header("Content-Length", "2"); self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *a):
        pass
http.server.HTTPServer((os.environ["POD_IP"], 8080), H).serve_forever()
"""
POD_IP_ENV = [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}]


class Kube:
    def __init__(self, local: LocalCluster) -> None:
        info = local.info()
        self.base = [str(info.kubectl), "--kubeconfig", str(info.kubeconfig)]

    def run(self, *args: str, input: str | None = None, check: bool = True) -> str:
        p = subprocess.run([*self.base, *args], input=input, capture_output=True, text=True,
                           timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr}")
        return p.stdout

    def json(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run("get", *args, "-o", "json"))


def _summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values)}


def _ready(p: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in p.get("status", {}).get("conditions", []))


def _wait(pred, timeout: float, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError("condition not met in time")


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---- serving: pod vs by hand -------------------------------------------------------------
def bench_serving(runs: int) -> dict[str, Any]:
    from devcluster import hdfs as hdfs_mod
    from tests.serving.conftest import make_demo, quiet_env

    with tempfile.TemporaryDirectory(prefix="mf-bench-runner-") as d:
        base = Path(d)
        hdfs_mod.fetch()
        (base / "hdfs").mkdir()
        hd, proc = hdfs_mod.start(base / "hdfs")
        local = LocalCluster(base / "cluster")
        try:
            local.up(nodes=1, gpu_nodes=0, local_nodes=1)
            kube = Kube(local)
            uri = hd.uri("/bench/digits")
            res = make_demo(uri, hd.env, "--epochs", "1")
            if res.returncode != 0:
                raise RuntimeError(res.stderr)
            by_hand, as_pod = [], []
            for i in range(runs):
                # By hand: the same server and model, a fresh cache, ready when /v2/health/ready.
                port = 18000 + i
                env = quiet_env({**hd.env, "MODEL_NAME": "digits", "MODEL_URI": uri,
                                 "HOST": "127.0.0.1", "PORT": str(port),
                                 "MODEL_CACHE_DIR": str(base / f"cache-{i}")})
                t0 = time.monotonic()
                srv = subprocess.Popen([sys.executable, "-m", "serving"], env=env,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                def up(port: int = port) -> bool:
                    try:
                        return httpx.get(f"http://127.0.0.1:{port}/v2/health/ready",
                                         timeout=1, trust_env=False).status_code == 200
                    except httpx.HTTPError:
                        return False

                _wait(up, 300)
                by_hand.append(time.monotonic() - t0)
                srv.terminate()
                srv.wait(60)
                # As a pod: create → Ready condition, the readiness probe every second.
                name = f"digits-{i}"
                probe = {"httpGet": {"path": "/v2/health/ready", "port": 8080},
                         "periodSeconds": 1, "failureThreshold": 300}
                pod = {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": "default"},
                       "spec": {"runtimeClassName": "fleet-local",
                                "automountServiceAccountToken": False,
                                "containers": [{
                                    "name": "server", "image": "modelfleet/model-server",
                                    "ports": [{"containerPort": 8080}],
                                    "env": [{"name": "MODEL_NAME", "value": "digits"},
                                            {"name": "MODEL_URI", "value": uri},
                                            {"name": "WEBHDFS_URL", "value": hd.webhdfs_url},
                                            {"name": "TF_CPP_MIN_LOG_LEVEL", "value": "2"},
                                            {"name": "PORT", "value": "8080"},
                                            {"name": "MODEL_CACHE_DIR", "value": "/cache"},
                                            {"name": "HOST", "valueFrom": {"fieldRef": {
                                                "fieldPath": "status.podIP"}}}],
                                    "startupProbe": probe,
                                    "volumeMounts": [{"name": "c", "mountPath": "/cache"}]}],
                                "volumes": [{"name": "c", "emptyDir": {}}]}}
                t0 = time.monotonic()
                kube.run("create", "-f", "-", input=json.dumps(pod))
                _wait(lambda n=name: _ready(kube.json("pod", n)), 300, interval=0.05)
                as_pod.append(time.monotonic() - t0)
                kube.run("delete", "pod", name, "--wait=true")
            overhead = [p - h for p, h in zip(as_pod, by_hand, strict=True)]
            return {"bench": "serving pod create→Ready vs by hand",
                    "by_hand_s": _summary(by_hand), "pod_s": _summary(as_pod),
                    "overhead_s": _summary(overhead), "raw": {"by_hand": by_hand,
                                                              "pod": as_pod}}
        finally:
            local.down()
            hdfs_mod.stop(proc)


# ---- scale: 100 pods ---------------------------------------------------------------------
def _deployment(name: str, replicas: int, real: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False, "terminationGracePeriodSeconds": 5,
        "containers": [{
            "name": "web", "image": "python:3.11" if real else "busybox",
            "command": ["python", "-c", HTTP_POD_CODE], "env": POD_IP_ENV,
            "ports": [{"containerPort": 8080}],
            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080},
                               "periodSeconds": 10},
        }],
    }
    if real:
        spec["runtimeClassName"] = "fleet-local"
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": spec}}}


def _available(kube: Kube, name: str, replicas: int) -> bool:
    d = kube.json("deployment", name)
    return d.get("status", {}).get("availableReplicas", 0) == replicas


def bench_scale(pods: int, idle_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="mf-bench-runner-") as d:
        local = LocalCluster(Path(d) / "cluster")
        try:
            local.up(nodes=1, gpu_nodes=0, local_nodes=1)
            kube = Kube(local)
            runner_pid = local.pids()["runner"]
            rss_before = _rss_mb(runner_pid)
            results: dict[str, Any] = {"bench": f"{pods} HTTP-server pods to Available"}
            for label, real in (("kwok-simulated", False), ("process kubelet", True)):
                name = "real" if real else "sim"
                t0 = time.monotonic()
                kube.run("apply", "-f", "-", input=json.dumps(_deployment(name, pods, real)))
                _wait(lambda n=name: _available(kube, n, pods), 600, interval=0.25)
                results[f"{label}_to_available_s"] = round(time.monotonic() - t0, 2)
            # Idle: every pod running and probed every 10 s; measure the runner alone.
            time.sleep(5)
            cpu0, t0 = _proc_cpu_s(runner_pid), time.monotonic()
            time.sleep(idle_s)
            cpu = (_proc_cpu_s(runner_pid) - cpu0) / (time.monotonic() - t0)
            results["runner_idle_cpu_pct_of_core"] = round(100 * cpu, 2)
            results["runner_rss_mb"] = {"before": round(rss_before, 1),
                                        "with_pods": round(_rss_mb(runner_pid), 1)}
            t0 = time.monotonic()
            kube.run("delete", "deployment", "real", "--wait=true")
            _wait(lambda: not kube.json("pods", "-l", "app=real")["items"], 300, interval=0.25)
            results["delete_all_s"] = round(time.monotonic() - t0, 2)
            return results
        finally:
            local.down()


# ---- probe accuracy ----------------------------------------------------------------------
def bench_probe(runs: int) -> dict[str, Any]:
    period, threshold = 1, 2
    bound = period * threshold + 1
    with tempfile.TemporaryDirectory(prefix="mf-bench-runner-") as d:
        local = LocalCluster(Path(d) / "cluster")
        try:
            local.up(nodes=1, gpu_nodes=0, local_nodes=1)
            kube = Kube(local)
            delays = []

            for i in range(runs):
                name = f"probe-{i}"
                pod = {"apiVersion": "v1", "kind": "Pod",
                       "metadata": {"name": name, "namespace": "default"},
                       "spec": {"runtimeClassName": "fleet-local",
                                "automountServiceAccountToken": False,
                                "terminationGracePeriodSeconds": 2,
                                "containers": [{
                                    "name": "web", "image": "python:3.11",
                                    "command": ["python", "-c", HTTP_POD_CODE],
                                    "env": POD_IP_ENV, "ports": [{"containerPort": 8080}],
                                    "readinessProbe": {
                                        "httpGet": {"path": "/ready", "port": 8080},
                                        "periodSeconds": period,
                                        "failureThreshold": threshold}}]}}
                kube.run("create", "-f", "-", input=json.dumps(pod))
                p = _wait(lambda n=name: (lambda q: q if _ready(q) else None)(
                    kube.json("pod", n)), 60)
                ip = p["status"]["podIP"]
                t0 = time.monotonic()
                httpx.get(f"http://{ip}:8080/fail", trust_env=False, timeout=5)
                _wait(lambda n=name: not _ready(kube.json("pod", n)), 30, interval=0.05)
                delays.append(time.monotonic() - t0)
                kube.run("delete", "pod", name, "--wait=false")
            return {"bench": "readiness failure visible in pod status",
                    "bound_s": bound, "delay_s": _summary(delays), "raw": delays,
                    "within_bound": all(x <= bound for x in delays)}
        finally:
            local.down()


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serving")
    s.add_argument("--runs", type=int, default=5)
    sc = sub.add_parser("scale")
    sc.add_argument("--pods", type=int, default=100)
    sc.add_argument("--idle-s", type=float, default=30.0)
    pr = sub.add_parser("probe")
    pr.add_argument("--runs", type=int, default=5)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    if args.cmd == "serving":
        result = bench_serving(args.runs)
    elif args.cmd == "scale":
        result = bench_scale(args.pods, args.idle_s)
    else:
        result = bench_probe(args.runs)
    result |= {"cores": os.cpu_count(), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                               time.gmtime())}
    out = args.out or REPO / "bench" / "runner" / f"results-{args.cmd}.json"
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "raw"}))


if __name__ == "__main__":
    main()
