"""`fleet deploy` to Available, and `fleet predict` vs kubectl port-forward + one POST
(results: docs/benchmarks.md).

  python bench/fleet/bench_deploy.py [--runs 3] [--predicts 10] [--out results-deploy.json]

Starts its own local cluster (process kubelet) and HDFS minicluster in a throwaway dir and
publishes the digits model (`fleet model demo --epochs 1`) to HDFS. Then:

1. `--runs` times, on a fresh name each time: `fleet deploy NAME --replicas 3` (runner pods,
   LiteRT fp32, 200m CPU / 1Gi each) until Available, timed around the command. For every pod
   the server's own numbers (`model_load_seconds` = fetch + load, `model_warmup_seconds`, from
   its /metrics at the pod IP), its `model … ; warm ms …; N.NNs` log line (`fleet logs`) and
   the pod's creation / container start / Ready times give the model load share of the deploy.
   The deployment is deleted (and its pods awaited gone) before the next run.
2. On one Ready pod, alternating, `--predicts` times each: `fleet predict NAME --example --pod P
   -o json` (its own `latency_ms`/`connect_ms` and the command's wall time) vs `kubectl
   port-forward pod/P :8080` + one httpx POST of the same body (the POST's latency and the wall
   time from starting kubectl to the answer).

Everything is loopback (127.0.0.1 and the pods' 127.1.128.x); counts and waits are bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from bench.fleet.bench_rollout import _machine, fleet  # noqa: E402

REPLICAS = 3
LOG_LINE = re.compile(r"model (?P<model>\S+) version (?P<version>\d+): runtime (?P<runtime>\S+) "
                      r".*; warm ms (?P<warm>\{.*\}); (?P<total>[\d.]+)s$")
METRIC = re.compile(r"^(model_load_seconds|model_warmup_seconds)(?:\{[^}]*\})? (\S+)$", re.M)


def summary(values: list[float]) -> dict[str, Any]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "n": len(values),
            "raw": [round(v, 4) for v in values]}


def ts(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Kube:
    def __init__(self, kubectl: str, kubeconfig: str, namespace: str) -> None:
        self.base = [kubectl, "--kubeconfig", kubeconfig, "-n", namespace]

    def run(self, *args: str, check: bool = True) -> str:
        p = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=120)
        if check and p.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr}")
        return p.stdout

    def json(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run("get", *args, "-o", "json"))


def wait(pred, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def pod_timing(pod: dict[str, Any], http: httpx.Client) -> dict[str, Any]:
    st = pod["status"]
    [cs] = st["containerStatuses"]
    ready = next(c for c in st["conditions"] if c["type"] == "Ready")
    created = ts(pod["metadata"]["creationTimestamp"])
    started = ts(cs["state"]["running"]["startedAt"])
    metrics = dict(METRIC.findall(http.get(f"http://{st['podIP']}:8080/metrics").text))
    load_s = float(metrics["model_load_seconds"])
    warm_s = float(metrics["model_warmup_seconds"])
    return {"pod": pod["metadata"]["name"],
            "created_to_started_s": round(started - created, 3),
            "started_to_ready_s": round(ts(ready["lastTransitionTime"]) - started, 3),
            "created_to_ready_s": round(ts(ready["lastTransitionTime"]) - created, 3),
            "server_load_s": round(load_s, 4), "server_warmup_s": round(warm_s, 4)}


def deploy_once(env: dict[str, str], kube: Kube, ns: str, name: str, uri: str,
                webhdfs_url: str) -> dict[str, Any]:
    args = ["deploy", name, "--model-uri", uri, "-n", ns, "--runtime-class", "fleet-local",
            "--runtime", "tflite-fp32", "--cpu", "200m", "--memory", "1Gi",
            "--replicas", str(REPLICAS), "--env", f"WEBHDFS_URL={webhdfs_url}",
            "--env", "SERVING_WORKERS=1", "--env", "TF_CPP_MIN_LOG_LEVEL=2",
            "--timeout", "240s", "-o", "json"]
    t0 = time.monotonic()
    d = fleet(env, *args, timeout=300)
    wall = time.monotonic() - t0
    if d.returncode != 0:
        raise RuntimeError(f"fleet deploy {name} failed: {d.stderr}")
    out = json.loads(d.stdout)
    pods = kube.json("pods", "-l", f"app.kubernetes.io/name={name}")["items"]
    with httpx.Client(timeout=10, trust_env=False) as http:
        per_pod = [pod_timing(p, http) for p in pods]
    logs = fleet(env, "logs", name, "-n", ns, timeout=60).stdout
    log_totals = {}
    for line in logs.splitlines():
        pod, _, text = line.partition("] ")
        m = LOG_LINE.search(text)
        if m:
            log_totals[pod.split("/")[1]] = float(m["total"])
    for p in per_pod:
        p["log_line_total_s"] = log_totals.get(p["pod"])
    model_s = [p["server_load_s"] + p["server_warmup_s"] for p in per_pod]
    return {"name": name, "wall_s": round(wall, 3), "elapsed_s_reported": out.get("elapsed_s"),
            "ready": out.get("ready"), "pods": per_pod,
            "model_load_warm_s_max": round(max(model_s), 4),
            "model_load_share_of_wall": round(max(model_s) / wall, 4),
            "slowest_created_to_ready_s": max(p["created_to_ready_s"] for p in per_pod)}


def delete(kube: Kube, name: str) -> None:
    kube.run("delete", "deployment,service,hpa,pdb,httproute", name, "--wait=false")
    wait(lambda: not kube.json("pods", "-l", f"app.kubernetes.io/name={name}")["items"], 180,
         f"the pods of {name} gone", interval=1)


def predict_fleet(env: dict[str, str], ns: str, name: str, pod: str) -> dict[str, Any]:
    t0 = time.monotonic()
    r = fleet(env, "predict", name, "--example", "--pod", pod, "-n", ns, "-o", "json",
              timeout=60)
    wall = time.monotonic() - t0
    if r.returncode != 0:
        raise RuntimeError(f"fleet predict: {r.stderr}")
    out = json.loads(r.stdout)
    assert out["ok"] and out["pod"] == pod, out
    return {"wall_ms": wall * 1e3, "latency_ms": out["latency_ms"],
            "connect_ms": out["connect_ms"], "request": out["request"]}


def predict_kubectl(kube: Kube, name: str, pod: str, body: bytes) -> dict[str, Any]:
    t0 = time.monotonic()
    pf = subprocess.Popen([*kube.base, "port-forward", f"pod/{pod}", ":8080"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = pf.stdout.readline()  # Forwarding from 127.0.0.1:NNNNN -> 8080
        m = re.search(r"127\.0\.0\.1:(\d+) ->", line)
        if not m:
            raise RuntimeError(f"kubectl port-forward: {line!r} {pf.stderr.read()}")
        forwarding = time.monotonic()
        with httpx.Client(timeout=30, trust_env=False) as http:
            t1 = time.monotonic()
            r = http.post(f"http://127.0.0.1:{m[1]}/v2/models/{name}/infer", content=body,
                          headers={"content-type": "application/json"})
            done = time.monotonic()
        assert r.status_code == 200, r.text
    finally:
        pf.terminate()
        pf.wait(10)
    return {"wall_ms": (done - t0) * 1e3, "latency_ms": (done - t1) * 1e3,
            "forwarding_after_ms": (forwarding - t0) * 1e3}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--predicts", type=int, default=10)
    ap.add_argument("--out", default=str(REPO / "bench/fleet/results-deploy.json"))
    args = ap.parse_args()
    if not (1 <= args.runs <= 10 and 1 <= args.predicts <= 50):
        ap.error("--runs 1..10, --predicts 1..50")
    from devcluster import hdfs as hdfs_mod
    from devcluster.cluster import LocalCluster
    from tests.serving.conftest import make_demo

    base = Path(tempfile.mkdtemp(prefix="bench-deploy-"))
    results: dict[str, Any] = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                               "machine": _machine(), "command": " ".join(sys.argv)}
    hdfs_mod.fetch()
    (base / "hdfs").mkdir()
    hd, proc = hdfs_mod.start(base / "hdfs")
    local = LocalCluster(base / "cluster")
    try:
        info = local.up(nodes=1, gpu_nodes=0, local_nodes=1)
        env = {**os.environ, "KUBECONFIG": str(info.kubeconfig), "NO_PROXY": "*",
               "no_proxy": "*"}
        uri = hd.uri("/bench-deploy/digits")
        res = make_demo(uri, hd.env, "--epochs", "1")
        if res.returncode != 0:
            raise RuntimeError(res.stdout + res.stderr)
        ns = "bench-deploy"
        kube = Kube(str(info.kubectl), str(info.kubeconfig), ns)
        subprocess.run([str(info.kubectl), "--kubeconfig", str(info.kubeconfig), "create",
                        "namespace", ns], check=True, capture_output=True)
        runs = []
        for i in range(args.runs):
            name = f"digits-{i}"
            if i:
                delete(kube, f"digits-{i - 1}")
            runs.append(deploy_once(env, kube, ns, name, uri, hd.webhdfs_url))
            print(json.dumps({k: runs[-1][k] for k in ("name", "wall_s",
                                                       "model_load_warm_s_max")}), flush=True)
        results["deploy"] = {
            "replicas": REPLICAS, "runs": runs,
            "wall_s": summary([r["wall_s"] for r in runs]),
            "model_load_warm_s_max": summary([r["model_load_warm_s_max"] for r in runs]),
            "model_load_share_of_wall": summary([r["model_load_share_of_wall"] for r in runs]),
            "slowest_created_to_ready_s": summary([r["slowest_created_to_ready_s"]
                                                   for r in runs]),
            "started_to_ready_s": summary([p["started_to_ready_s"] for r in runs
                                           for p in r["pods"]]),
            "created_to_started_s": summary([p["created_to_started_s"] for r in runs
                                             for p in r["pods"]]),
        }
        name = runs[-1]["name"]
        pod = sorted(p["pod"] for p in runs[-1]["pods"])[0]
        fl, kc = [], []
        body = b""
        for _ in range(args.predicts):
            f = predict_fleet(env, ns, name, pod)
            body = json.dumps(f.pop("request")).encode()
            fl.append(f)
            kc.append(predict_kubectl(kube, name, pod, body))
        results["predict"] = {
            "pod": pod, "n": args.predicts, "body_bytes": len(body),
            "fleet_predict": {k: summary([x[k] for x in fl])
                              for k in ("wall_ms", "latency_ms", "connect_ms")},
            "kubectl_port_forward_post": {k: summary([x[k] for x in kc])
                                          for k in ("wall_ms", "latency_ms",
                                                    "forwarding_after_ms")},
        }
        print(json.dumps({"predict": {k: {m: v["median"] for m, v in d.items()}
                                      for k, d in results["predict"].items()
                                      if isinstance(d, dict)}}), flush=True)
    finally:
        local.down()
        hdfs_mod.stop(proc)
    results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    results["load_avg_at_end"] = os.getloadavg()
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
