"""Operation latency on the real local control plane, with kubectl 1.37 as the peer.

  python bench/fleet/bench_ops.py [--count 50] [--runs 5] [--kubeconfig K --kubectl PATH]
                                  [--out results.json]

Without --kubeconfig it brings up a throwaway LocalCluster (127.0.0.1 only). Measures:
single rollback API latency (fleet.ops.rollback), `fleet rollback` vs `kubectl rollout undo`
as processes, and a bulk rollback of COUNT deployments (run_bulk, 16 workers) vs COUNT
sequential `kubectl rollout undo` and vs `xargs -P16 kubectl rollout undo`. The process
rows alternate `python -m fleet.cli`, the installed `fleet` console script (when it sits next
to the interpreter) and kubectl, so drift on a shared machine hits all of them alike.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from fleet.kube import KubeClient, collection_path, deployment_path  # noqa: E402
from fleet.ops import bulk, history, rollback, rollout  # noqa: E402

NS = "bench-ops"


def summary(values: list[float], unit: str = "s") -> str:
    med = statistics.median(values)
    lo, hi = min(values), max(values)
    return f"median {med:.3f} {unit} (min {lo:.3f}, max {hi:.3f}, n={len(values)})"


def manifest(name: str) -> dict:
    labels = {"app": name, "app.kubernetes.io/component": "model-server",
              "app.kubernetes.io/name": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [{
                     "name": "server", "image": "registry.invalid/serve:1",
                     "env": [{"name": "MODEL_URI", "value": f"hdfs:///models/{name}/1"}]}]}}},
    }


def setup(client: KubeClient, count: int) -> list[str]:
    from fleet.errors import Conflict

    with contextlib.suppress(Conflict):
        client.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": NS}})
    names = [f"model-{i:03d}" for i in range(count)]
    for n in names:
        client.post(collection_path("apps/v1", "deployments", NS), manifest(n))
    time.sleep(2)
    for n in names:
        rollout.rollout(client, NS, n, image="registry.invalid/serve:2", reason="bench v2")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        revs = [history.history(client, NS, n) for n in names]
        if all(len(r) == 2 for r in revs):
            return names
        time.sleep(1)
    raise SystemExit("revisions did not appear")


def wait_observed(client: KubeClient, names: list[str]) -> None:
    deadline = time.monotonic() + 120
    for n in names:
        while time.monotonic() < deadline:
            d = client.get(deployment_path(NS, n))
            if d.get("status", {}).get("observedGeneration", 0) >= d["metadata"]["generation"]:
                break
            time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--kubeconfig")
    ap.add_argument("--kubectl")
    ap.add_argument("--out", type=Path, help="write the raw samples here as JSON")
    args = ap.parse_args()
    local = None
    if not args.kubeconfig:
        from devcluster.cluster import LocalCluster

        local = LocalCluster(Path(tempfile.mkdtemp(prefix="mf-bench-ops-")))
        info = local.up(nodes=2, gpu_nodes=0)
        args.kubeconfig, args.kubectl = str(info.kubeconfig), str(info.kubectl)
    env = {**os.environ, "KUBECONFIG": args.kubeconfig, "NO_PROXY": "127.0.0.1,localhost"}
    try:
        client = KubeClient.from_kubeconfig(args.kubeconfig)
        names = setup(client, args.count)
        load_start = list(os.getloadavg())
        print(f"{args.count} deployments with 2 revisions each; {os.cpu_count()} cores, "
              f"load average {os.getloadavg()[0]:.1f}")

        single = []
        for n in names[: args.runs * 4]:
            t0 = time.perf_counter()
            rollback.rollback(client, NS, n)
            single.append((time.perf_counter() - t0) * 1000)
        print(f"single rollback, fleet.ops API: {summary(single, 'ms')}")
        wait_observed(client, names)

        def proc(cmd: list[str]) -> float:
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            return (time.perf_counter() - t0) * 1000

        script = Path(sys.executable).with_name("fleet")
        fcli: list[float] = []
        scli: list[float] = []
        kcli: list[float] = []
        for i in range(args.runs):
            fcli.append(proc([sys.executable, "-m", "fleet.cli", "rollback", names[i], "-n", NS]))
            if script.exists():
                scli.append(proc([str(script), "rollback", names[2 * args.runs + i], "-n", NS]))
            kcli.append(proc([args.kubectl, "rollout", "undo",
                              f"deployment/{names[args.runs + i]}", "-n", NS]))
        print(f"single rollback, `python -m fleet.cli rollback` process: {summary(fcli, 'ms')}")
        if scli:
            print(f"single rollback, `{script}` console script: {summary(scli, 'ms')}")
        print(f"single rollback, `kubectl rollout undo` process: {summary(kcli, 'ms')}")
        wait_observed(client, names)

        bulk_t, seq, par = [], [], []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            res = bulk.run_bulk(lambda ns, n: rollback.rollback(client, ns, n),
                               [(NS, n) for n in names])
            bulk_t.append(time.perf_counter() - t0)
            assert res.ok, [r.message for r in res.failed]
            wait_observed(client, names)
        for _ in range(max(1, args.runs // 2)):
            t0 = time.perf_counter()
            for n in names:
                subprocess.run([args.kubectl, "rollout", "undo", f"deployment/{n}", "-n", NS],
                               env=env, check=True, capture_output=True)
            seq.append(time.perf_counter() - t0)
            wait_observed(client, names)
            t0 = time.perf_counter()
            subprocess.run(["xargs", "-P16", "-I{}", args.kubectl, "rollout", "undo",
                            "deployment/{}", "-n", NS], input="\n".join(names).encode(),
                           env=env, check=True, capture_output=True)
            par.append(time.perf_counter() - t0)
            wait_observed(client, names)
        print(f"bulk rollback of {args.count}, fleet run_bulk (16 workers): {summary(bulk_t)}")
        print(f"{args.count} sequential `kubectl rollout undo`: {summary(seq)}")
        print(f"{args.count} `kubectl rollout undo` via xargs -P16: {summary(par)}")
        if args.out:
            raw = {"count": args.count, "runs": args.runs, "cores": os.cpu_count(),
                   "loadavg_start": load_start, "loadavg_end": list(os.getloadavg()),
                   "api_rollback_ms": single,
                   "process_fleet_cli_ms": fcli, "process_fleet_script_ms": scli,
                   "process_kubectl_ms": kcli, "bulk_fleet_s": bulk_t,
                   "bulk_kubectl_sequential_s": seq, "bulk_kubectl_xargs_p16_s": par}
            args.out.write_text(json.dumps(raw, indent=1) + "\n")
    finally:
        if local is not None:
            local.down()


if __name__ == "__main__":
    main()
