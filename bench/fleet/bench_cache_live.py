"""Cache sync against the live local control plane (network and apiserver included).

  python bench/fleet/bench_cache_live.py --kubeconfig K [--deployments 1000] [--jobs 500]

Creates model Deployments with 0 replicas (the controller still creates their ReplicaSets)
and suspended training Jobs in namespace bench-cache, so the shared 2-core machine is not
asked to simulate thousands of pods; then times `FleetCache.load_once()` (every LIST, paged,
decoded and projected) and a started cache's `wait_synced`. The namespace is deleted after.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


from fleet.cache import FleetCache  # noqa: E402
from fleet.errors import Conflict, NotFound  # noqa: E402
from fleet.kube import KubeClient, collection_path  # noqa: E402

NS = "bench-cache"


def deployment(i: int) -> dict:
    name = f"model-{i:04d}"
    labels = {"app": name, "app.kubernetes.io/component": "model-server",
              "app.kubernetes.io/name": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                         "name": "server", "image": "registry.invalid/serve:1",
                         "env": [{"name": "MODEL_URI", "value": f"hdfs:///m/{name}/1"}]}]}}}}


def job(i: int) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"train-{i:04d}", "namespace": NS,
                         "labels": {"app.kubernetes.io/component": "training"}},
            "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never",
                     "containers": [{"name": "t", "image": "registry.invalid/train:1",
                                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}


def create(client: KubeClient, n_dep: int, n_jobs: int) -> None:
    with contextlib.suppress(Conflict):
        client.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": NS}})
    deps = collection_path("apps/v1", "deployments", NS)
    jobs = collection_path("batch/v1", "jobs", NS)

    def post(args):
        path, body = args
        with contextlib.suppress(Conflict):
            client.post(path, body)

    work = [(deps, deployment(i)) for i in range(n_dep)] + [(jobs, job(i)) for i in range(n_jobs)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, work))
    rs = collection_path("apps/v1", "replicasets", NS)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if len(client.list_all(rs).get("items", [])) >= n_dep:
            return
        time.sleep(2)
    raise SystemExit("ReplicaSets did not appear")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--deployments", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    client = KubeClient.from_kubeconfig(args.kubeconfig)
    create(client, args.deployments, args.jobs)
    once, started = [], []
    try:
        for _ in range(args.runs):
            t0 = time.perf_counter()
            cache = FleetCache(client, [NS]).load_once()
            n = len(cache.deployments())
            once.append(time.perf_counter() - t0)
            assert n == args.deployments and len(cache.jobs()) == args.jobs, n
            t0 = time.perf_counter()
            live = FleetCache(client, [NS]).start()
            assert live.wait_synced(60)
            live.deployments()
            started.append(time.perf_counter() - t0)
            live.stop()
    finally:
        if not args.keep:
            with contextlib.suppress(NotFound):
                client.delete(f"/api/v1/namespaces/{NS}")

    def s(v: list[float]) -> str:
        med, lo, hi = statistics.median(v), min(v), max(v)
        return f"median {med:.3f} s (min {lo:.3f}, max {hi:.3f}, n={len(v)})"

    print(f"{args.deployments} model Deployments (+{args.deployments} ReplicaSets), "
          f"{args.jobs} Jobs, live apiserver")
    print(f"load_once (5 paged LISTs + decode + project + derive): {s(once)}")
    print(f"start() to wait_synced + deployments(), 5 reflector threads: {s(started)}")


if __name__ == "__main__":
    main()
