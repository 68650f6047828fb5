"""Watch cache against the live local control plane, side by side with its peer: the
`kubernetes` package's own paged LIST + `Watch().stream` of the same types (k8s_peer.py).

  python bench/fleet/bench_cache_live.py --kubeconfig K [--seed 1000] [--jobs 0]
                                         [--runs 5] [--burst 200] [--out FILE]

--seed N seeds bench/tui/bench_tui.py's fleet (N model Deployments `model-NNNN` in bench-0..4,
1-3 replicas each, probes; idempotent); --jobs M adds M suspended training Jobs in namespace
bench-cache (deleted after unless --keep). Both sides watch every namespace with the same
label selectors: model-server Deployments, their ReplicaSets, fleet pods, training Jobs,
re-training CronJobs, and HPAs (`FleetCache(..., autoscalers=True)`, as the TUI runs it).

Each run is a fresh process per side, the order alternating per run. In it:
  listed   start -> every type listed (ours: `wait_synced()` + `deployments()`, the derived
           models; the peer: every paged LIST stored as the package's model objects)
  open     start -> every watch's response headers are in (the watches are open)
  RSS      VmRSS growth from after the imports and client to after the sync (gc'd), and the
           process's peak (VmHWM)
  burst    the parent merge-patches the change-cause annotation of --burst Deployments (8
           threads); time from the first PATCH until the side has seen all of them (ours: in
           the `FleetChange`s a subscriber gets, coalesced to at most 5/s; the peer: the
           watch events, as the package yields them)
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from samples import proc_status_mb, spread  # noqa: E402

NS = "bench-cache"
SIDES = ("ours", "kubernetes")
SYNC_TIMEOUT = 600.0
BURST_TIMEOUT = 120.0


def job(i: int) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": f"train-{i:04d}", "namespace": NS,
                         "labels": {"app.kubernetes.io/component": "training"}},
            "spec": {"suspend": True, "template": {"spec": {"restartPolicy": "Never",
                     "containers": [{"name": "t", "image": "registry.invalid/train:1",
                                     "resources": {"limits": {"nvidia.com/gpu": "1"}}}]}}}}


def create_jobs(client: Any, n_jobs: int) -> None:
    from fleet.errors import Conflict, NotFound
    from fleet.kube import collection_path

    deadline = time.monotonic() + 180
    with contextlib.suppress(NotFound):  # a previous run's namespace may still be terminating
        while client.get(f"/api/v1/namespaces/{NS}").get("metadata", {}).get("deletionTimestamp"):
            if time.monotonic() > deadline:
                raise SystemExit(f"namespace {NS} is still terminating after 180 s")
            time.sleep(1)
    with contextlib.suppress(Conflict):
        client.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                           "metadata": {"name": NS}})
    path = collection_path("batch/v1", "jobs", NS)

    def post(i: int) -> None:
        with contextlib.suppress(Conflict):
            client.post(path, job(i))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(post, range(n_jobs)))


# --- the child: one side, one run ------------------------------------------------------------
class BurstSeen:
    """Distinct Deployments seen with the burst's change-cause prefix; `done` at `expect`."""

    def __init__(self, prefix: str, expect: int) -> None:
        self.prefix, self.expect = prefix, expect
        self.keys: set[tuple[str, str]] = set()
        self.first = self.last = 0.0
        self.done = threading.Event()
        self._lock = threading.Lock()

    def saw(self, key: tuple[str, str], change_cause: str | None) -> None:
        if not (change_cause or "").startswith(self.prefix):
            return
        with self._lock:
            now = time.monotonic()
            if not self.keys:
                self.first = now
            self.keys.add(key)
            if len(self.keys) >= self.expect and not self.done.is_set():
                self.last = now
                self.done.set()


def start_ours(kubeconfig: str, seen: BurstSeen) -> tuple[Any, dict[str, float]]:
    from fleet.cache import FleetCache
    from fleet.events import FleetChange
    from fleet.kube import KubeClient

    client = KubeClient.from_kubeconfig(kubeconfig)
    rss0, t0, c0 = _mark()
    cache = FleetCache(client, None, autoscalers=True)

    def on_change(change: FleetChange) -> None:
        for d in change.deployments_upserted:
            seen.saw(d.key, d.change_cause)

    cache.subscribe(on_change)
    cache.start()
    if not cache.wait_synced(SYNC_TIMEOUT):
        raise SystemExit("ours: not synced in time")
    models = cache.deployments()
    listed = time.monotonic()
    while not all(r.stream is not None for r in cache._reflectors):
        time.sleep(0.005)  # no event marks an open watch; the reflector sets `stream`
    opened = time.monotonic()
    st = cache._stores
    counts = {"deployments": len(models), "replicasets": len(st.rs_owner),
              "pods": len(st.pods) + len(st.job_pod_owner), "jobs": len(st.jobs),
              "cronjobs": len(st.schedules), "horizontalpodautoscalers": len(st.hpas)}
    return cache, _report(rss0, t0, c0, listed, opened, counts)


def start_peer(kubeconfig: str, seen: BurstSeen) -> tuple[Any, dict[str, float]]:
    from k8s_peer import PeerCache
    from kubernetes import config

    from fleet.model import CHANGE_CAUSE

    api_client = config.new_client_from_config(config_file=kubeconfig)
    rss0, t0, c0 = _mark()

    def on_event(plural: str, etype: str, obj: Any) -> None:
        if plural == "deployments" and etype == "MODIFIED":
            ann = obj.metadata.annotations or {}
            seen.saw((obj.metadata.namespace, obj.metadata.name), ann.get(CHANGE_CAUSE))

    cache = PeerCache(api_client, None, on_event).start()
    if not cache.wait("listed", SYNC_TIMEOUT) or cache.errors():
        raise SystemExit(f"kubernetes: not listed: {cache.errors()}")
    listed = time.monotonic()
    if not cache.wait("opened", SYNC_TIMEOUT) or cache.errors():
        raise SystemExit(f"kubernetes: watches not open: {cache.errors()}")
    opened = time.monotonic()
    return cache, _report(rss0, t0, c0, listed, opened, cache.sizes())


def _mark() -> tuple[float, float, float]:
    gc.collect()
    t = os.times()
    return proc_status_mb("VmRSS"), time.monotonic(), t.user + t.system


def _report(rss0: float, t0: float, c0: float, listed: float, opened: float,
            counts: dict[str, int]) -> dict[str, Any]:
    t = os.times()
    cpu = t.user + t.system - c0
    gc.collect()
    rss1 = proc_status_mb("VmRSS")
    return {"t0": t0, "listed_s": listed - t0, "open_s": opened - t0, "sync_cpu_s": cpu,
            "rss_base_mb": rss0, "rss_synced_mb": rss1, "rss_growth_mb": rss1 - rss0,
            "rss_peak_mb": proc_status_mb("VmHWM"), "counts": counts}


def child(side: str, kubeconfig: str, prefix: str, expect: int) -> None:
    t = time.monotonic()
    seen = BurstSeen(prefix, expect)
    start = start_ours if side == "ours" else start_peer
    cache, out = start(kubeconfig, seen)  # imports its library and builds the client first
    out["import_and_client_s"] = out.pop("t0") - t
    print(json.dumps({"phase": "ready", **out}), flush=True)
    ok = seen.done.wait(BURST_TIMEOUT)
    res = {"phase": "burst", "seen": len(seen.keys), "first": seen.first, "last": seen.last,
           "ok": ok, "rss_after_burst_mb": proc_status_mb("VmRSS")}
    print(json.dumps(res), flush=True)
    cache.stop()
    os._exit(0)  # daemon threads may sit in a socket read; nothing else to flush


# --- the parent ------------------------------------------------------------------------------
def burst(client: Any, keys: list[tuple[str, str]], prefix: str) -> tuple[float, float]:
    """Annotate every key's Deployment; returns (monotonic start, seconds the writes took)."""
    from fleet.kube import MERGE_PATCH, deployment_path
    from fleet.model import CHANGE_CAUSE

    def patch(i_key: tuple[int, tuple[str, str]]) -> None:
        i, (ns, name) = i_key
        client.patch(deployment_path(ns, name),
                     {"metadata": {"annotations": {CHANGE_CAUSE: f"{prefix}{i}"}}}, MERGE_PATCH)

    t0 = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(patch, enumerate(keys)))
    return t0, time.monotonic() - t0


def one_run(side: str, args: argparse.Namespace, client: Any, keys: list[tuple[str, str]],
            run: int) -> dict[str, Any]:
    prefix = f"bench-burst-{os.getpid()}-{run}-{side}-"
    cmd = [sys.executable, __file__, "--child", side, "--kubeconfig", args.kubeconfig,
           "--prefix", prefix, "--burst", str(len(keys))]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    try:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit(f"{side}: the child exited before it synced (rc {proc.wait()})")
        ready = json.loads(line)
        t0, writes = burst(client, keys, prefix)
        done = json.loads(proc.stdout.readline() or "{}")
    finally:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
        if proc.poll() is None:
            proc.kill()
    if not done.get("ok"):
        raise SystemExit(f"{side}: saw {done.get('seen')} of {len(keys)} burst changes")
    return {"side": side, "run": run, **ready, "burst_writes_s": writes,
            "burst_first_seen_s": done["first"] - t0, "burst_seen_s": done["last"] - t0,
            "burst_lag_s": done["last"] - (t0 + writes),
            "rss_after_burst_mb": done["rss_after_burst_mb"]}


def model_keys(client: Any) -> list[tuple[str, str]]:
    from fleet.cache import MODEL_SELECTOR
    from fleet.kube import collection_path

    doc = client.list_all(collection_path("apps/v1", "deployments"),
                          {"labelSelector": MODEL_SELECTOR})
    return sorted((d["metadata"]["namespace"], d["metadata"]["name"]) for d in doc["items"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--seed", type=int, default=0,
                    help="seed bench_tui's fleet of N model Deployments first (idempotent)")
    ap.add_argument("--jobs", type=int, default=0, help="suspended training Jobs to add")
    ap.add_argument("--runs", type=int, default=5, help="runs per side")
    ap.add_argument("--burst", type=int, default=200, help="Deployments annotated per run")
    ap.add_argument("--out", help="write every run's raw results here (JSON)")
    ap.add_argument("--keep", action="store_true", help="keep the --jobs namespace")
    ap.add_argument("--child", choices=SIDES, help=argparse.SUPPRESS)
    ap.add_argument("--prefix", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.kubeconfig, args.prefix, args.burst)
        return

    from fleet.errors import NotFound
    from fleet.kube import KubeClient

    client = KubeClient.from_kubeconfig(args.kubeconfig)
    if args.seed:
        from bench.tui.bench_tui import bench_plan
        from devcluster.demo.seed import print_progress, seed_fleet

        stats = seed_fleet(client, bench_plan(args.seed), workers=16, progress=print_progress)
        print(f"\nseeded {args.seed} deployments in {stats.elapsed:.1f}s", file=sys.stderr)
    if args.jobs:
        create_jobs(client, args.jobs)
    keys = model_keys(client)
    if len(keys) < args.burst:
        raise SystemExit(f"--burst {args.burst}: the cluster has only {len(keys)} model "
                         "Deployments (seed more with --seed N)")
    burst_keys = keys[:: max(1, len(keys) // args.burst)][: args.burst]
    results: list[dict[str, Any]] = []
    loads = []
    try:
        for run in range(args.runs):
            for side in SIDES if run % 2 == 0 else SIDES[::-1]:
                loads.append(os.getloadavg()[0])
                r = one_run(side, args, client, burst_keys, run)
                results.append(r)
                print(f"run {run} {side:10s} listed {r['listed_s']:.2f}s open {r['open_s']:.2f}s"
                      f" RSS +{r['rss_growth_mb']:.0f} MB burst {r['burst_seen_s']:.2f}s "
                      f"{r['counts']}", file=sys.stderr)
    finally:
        if args.jobs and not args.keep:
            with contextlib.suppress(NotFound):
                client.delete(f"/api/v1/namespaces/{NS}")
    meta = {"deployments": len(keys), "jobs": args.jobs, "burst": args.burst, "runs": args.runs,
            "cores": os.cpu_count(), "load_min": min(loads), "load_max": max(loads),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.out:
        Path(args.out).write_text(json.dumps({"meta": meta, "runs": results}, indent=1) + "\n")
    print(f"{len(keys)} model Deployments, counts {results[0]['counts']}; {args.runs} runs "
          f"per side; load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    rows = [("import + client s", "import_and_client_s", ".2f"),
            ("RSS after imports MB", "rss_base_mb", ".0f"),
            ("listed (all LISTs stored) s", "listed_s", ".2f"),
            ("open (all watches open) s", "open_s", ".2f"),
            ("CPU s to open", "sync_cpu_s", ".2f"),
            ("RSS growth MB", "rss_growth_mb", ".1f"),
            ("RSS synced MB", "rss_synced_mb", ".0f"),
            ("RSS peak MB", "rss_peak_mb", ".0f"),
            (f"burst of {args.burst}: first seen s", "burst_first_seen_s", ".2f"),
            (f"burst of {args.burst}: all seen s", "burst_seen_s", ".2f"),
            ("burst writes s", "burst_writes_s", ".2f"),
            ("all seen after the last write s", "burst_lag_s", ".3f")]
    for label, key, fmt in rows:
        cells = [spread([r[key] for r in results if r["side"] == s], fmt) for s in SIDES]
        print(f"{label:32s} ours {cells[0]} | kubernetes {cells[1]}")


if __name__ == "__main__":
    main()
