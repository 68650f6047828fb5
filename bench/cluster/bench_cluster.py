"""Benchmarks of the embedded control plane (results go to docs/benchmarks.md).

  python bench/cluster/bench_cluster.py up --runs 5          warm `up` to all Ready, vs kwokctl
  python bench/cluster/bench_cluster.py deployments --count 500
  python bench/cluster/bench_cluster.py rss                  idle RSS of all components

Each run uses a throwaway state dir; everything binds 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.cluster.kwokctl_peer import KwokctlCluster, ensure_kwokctl  # noqa: E402
from devcluster.cluster import LocalCluster  # noqa: E402


def _summary(values: list[float]) -> str:
    med = statistics.median(values)
    spread = f"min {min(values):.2f} / max {max(values):.2f}"
    return f"median {med:.2f} s ({spread}, n={len(values)})"


def bench_up(runs: int) -> None:
    """Alternate fleet and kwokctl runs; both end with 3 nodes Ready and the default SA."""
    ensure_kwokctl()
    ours, peer = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="mf-bench-") as d:
            local = LocalCluster(Path(d))
            t0 = time.monotonic()
            local.up(nodes=2, gpu_nodes=1)
            ours.append(time.monotonic() - t0)
            local.down()
        kc = KwokctlCluster()
        try:
            t0 = time.monotonic()
            kc.up(nodes=2, gpu_nodes=1)
            peer.append(time.monotonic() - t0)
        finally:
            kc.down()
    print(f"fleet cluster up, to all Ready: {_summary(ours)}")
    print(f"kwokctl (binary runtime), same end state: {_summary(peer)}")


def _deployment(i: int) -> dict:
    name = f"model-{i:04d}"
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "bench",
                     "labels": {"app.kubernetes.io/component": "model-server"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "s", "image": "m:1"}]}}},
    }


def _time_deployments(c, count: int) -> float:
    """Create `count` Deployments with 8 concurrent POSTs; seconds until all are Available."""
    c.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                  "metadata": {"name": "bench"}})
    while c.get("/api/v1/namespaces/bench/serviceaccounts/default").status_code != 200:
        time.sleep(0.1)
    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(
            lambda i: c.post("/apis/apps/v1/namespaces/bench/deployments",
                             _deployment(i)).status_code, range(count)))
    assert all(code == 201 for code in codes), set(codes)
    while True:
        items = c.get("/apis/apps/v1/namespaces/bench/deployments").json()["items"]
        ok = sum(1 for it in items if any(
            cond["type"] == "Available" and cond["status"] == "True"
            for cond in it.get("status", {}).get("conditions", [])))
        if ok == count:
            return time.monotonic() - t0
        time.sleep(0.5)


def bench_deployments(count: int, runs: int, peer: bool) -> None:
    ours, theirs = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="mf-bench-") as d:
            local = LocalCluster(Path(d))
            local.up(nodes=4, gpu_nodes=0)
            with local.client(timeout=30) as c:
                ours.append(_time_deployments(c, count))
            local.down()
        if peer:
            kc = KwokctlCluster()
            try:
                kc.up(nodes=4, gpu_nodes=0)
                with kc.client(timeout=30) as c:
                    theirs.append(_time_deployments(c, count))
            finally:
                kc.down()
    print(f"{count} one-replica Deployments to all Available: {_summary(ours)}")
    if theirs:
        print(f"kwokctl (binary runtime, its defaults), same load: {_summary(theirs)}")


def _rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    return int(next(line.split()[1] for line in status if line.startswith("VmRSS:"))) / 1024


def bench_rss(settle: float) -> None:
    with tempfile.TemporaryDirectory(prefix="mf-bench-") as d:
        local = LocalCluster(Path(d))
        local.up(nodes=2, gpu_nodes=1)
        time.sleep(settle)
        total = 0.0
        for name, pid in local.pids().items():
            total += _rss_mb(pid)
            print(f"  {name:<26}{_rss_mb(pid):8.0f} MB")
        print(f"idle RSS of the control plane after {settle:.0f}s: {total:.0f} MB")
        local.down()
    kc = KwokctlCluster()
    try:
        kc.up(nodes=2, gpu_nodes=1)
        time.sleep(settle)
        peer = sum(_rss_mb(pid) for pid in kc.pids())
        print(f"kwokctl (binary runtime) idle RSS after {settle:.0f}s: {peer:.0f} MB")
    finally:
        kc.down()


def main() -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="what", required=True)
    up = sub.add_parser("up")
    up.add_argument("--runs", type=int, default=5)
    dep = sub.add_parser("deployments")
    dep.add_argument("--count", type=int, default=500)
    dep.add_argument("--runs", type=int, default=3)
    dep.add_argument("--no-peer", action="store_true", help="skip the kwokctl side")
    rss = sub.add_parser("rss")
    rss.add_argument("--settle", type=float, default=30)
    args = p.parse_args()
    print(json.dumps({"cores": subprocess.run(["nproc"], capture_output=True, text=True)
                      .stdout.strip(), "date": time.strftime("%Y-%m-%d")}))
    if args.what == "up":
        bench_up(args.runs)
    elif args.what == "deployments":
        bench_deployments(args.count, args.runs, not args.no_peer)
    else:
        bench_rss(args.settle)


if __name__ == "__main__":
    main()
