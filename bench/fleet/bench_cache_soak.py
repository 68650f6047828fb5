"""Long session: a started FleetCache under continuous bounded churn; is its memory bounded?

  python bench/fleet/bench_cache_soak.py --kubeconfig K [--duration 600] [--rate 4]
                                         [--sample 5] [--deployments 40] [--out FILE]

The cache runs as the TUI runs it (`FleetCache(client, None, autoscalers=True)`, a subscriber,
`deployments()` read on every change, the Events of namespace bench-soak watched all along as
an open detail screen does, and a second namespace's Events watched and released every
--detail-cycle seconds as detail screens open and close), over whatever fleet the cluster
holds (seed one first, e.g. with bench_cache_live.py --seed 1000). A separate churn process
(so its own memory is not counted) seeds --deployments model Deployments (1 replica) in
bench-soak and then applies --rate changes per second through the API, in turn:
  annotate  a Deployment's change-cause
  scale     a Deployment between 1 and 2 replicas (a pod created or deleted)
  event     create an Event about a Deployment, deleting the one made 500 events earlier
  replace   create a temporary model Deployment (1 replica) and delete the one made 10 earlier
Every --sample seconds the cache process records VmRSS and the cache's store sizes. Reported:
RSS at start (after sync), end, max, the least-squares slope over the second half (bounded:
~0), the changes applied, and the samples (JSON with --out). bench-soak is deleted after.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from samples import proc_status_mb, slope, sparkline  # noqa: E402

NS = "bench-soak"
KEEP_EVENTS = 500  # events the churner made that exist at once
KEEP_TEMP = 10  # temporary Deployments that exist at once
OPS = ("annotate", "scale", "event", "replace")


# --- the churn process -----------------------------------------------------------------------
def _plan(name: str) -> Any:
    from devcluster.demo.plan import DeploymentPlan, RevisionPlan

    rev = RevisionPlan("v1", f"hdfs://hdfs.fleet.local:8020/models/soak/{name}",
                       "registry.fleet.local/modelfleet/serving:1.4.0", "soak seed")
    return DeploymentPlan(NS, name, "soak", 1, (rev,))


def seed(client: Any, n: int) -> None:
    from devcluster.demo.plan import FleetPlan
    from devcluster.demo.seed import seed_fleet

    stats = seed_fleet(client, FleetPlan(deployments=[_plan(f"soak-{i:03d}") for i in range(n)]),
                       workers=8)
    if stats.failures:
        raise SystemExit(f"seeding {NS} failed: {stats.failures[:3]}")


class Churner:
    """Applies OPS round-robin at a fixed rate until `stop` is set; counts what it applied."""

    def __init__(self, client: Any, n: int, rate: float) -> None:
        self.client, self.n, self.rate = client, n, rate
        self.applied = dict.fromkeys(OPS, 0)
        self.failed: dict[str, int] = dict.fromkeys(OPS, 0)
        self.late = 0  # ticks that started more than one period late (the machine is busy)
        self.stop = threading.Event()

    def run(self) -> None:
        from fleet.errors import FleetError

        period, t0, i = 1.0 / self.rate, time.monotonic(), 0
        while not self.stop.is_set():
            due = t0 + i * period
            delay = due - time.monotonic()
            if delay > 0:
                if self.stop.wait(delay):
                    return
            elif -delay > period:
                self.late += 1
            op = OPS[i % len(OPS)]
            try:
                getattr(self, f"_{op}")(i // len(OPS))
                self.applied[op] += 1
            except FleetError as exc:
                self.failed[op] += 1
                print(f"churn {op}: {exc.message}", file=sys.stderr)
            i += 1

    def _annotate(self, k: int) -> None:
        from fleet.kube import MERGE_PATCH, deployment_path
        from fleet.model import CHANGE_CAUSE

        self.client.patch(deployment_path(NS, f"soak-{k % self.n:03d}"),
                          {"metadata": {"annotations": {CHANGE_CAUSE: f"soak change {k}"}}},
                          MERGE_PATCH)

    def _scale(self, k: int) -> None:
        from fleet.kube import MERGE_PATCH, deployment_path

        replicas = 2 if (k // self.n) % 2 == 0 else 1  # every Deployment up once, then down
        self.client.patch(deployment_path(NS, f"soak-{k % self.n:03d}", "scale"),
                          {"spec": {"replicas": replicas}}, MERGE_PATCH)

    def _event(self, k: int) -> None:
        from fleet.errors import NotFound

        path = f"/api/v1/namespaces/{NS}/events"
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        target = f"soak-{k % self.n:03d}"
        self.client.post(path, {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"soak-event-{k}", "namespace": NS},
            "involvedObject": {"apiVersion": "apps/v1", "kind": "Deployment", "namespace": NS,
                               "name": target},
            "reason": "SoakChange", "message": f"soak change {k} of {target}", "type": "Normal",
            "count": 1, "firstTimestamp": now, "lastTimestamp": now,
            "source": {"component": "bench-cache-soak"}})
        if k >= KEEP_EVENTS:
            with contextlib.suppress(NotFound):
                self.client.delete(f"{path}/soak-event-{k - KEEP_EVENTS}")

    def _replace(self, k: int) -> None:
        from devcluster.demo import manifests
        from fleet.errors import NotFound
        from fleet.kube import collection_path, deployment_path

        d = _plan(f"temp-{k:05d}")
        self.client.post(collection_path("apps/v1", "deployments", NS),
                         manifests.deployment(d, d.revisions[0]))
        if k >= KEEP_TEMP:
            with contextlib.suppress(NotFound):
                self.client.delete(deployment_path(NS, f"temp-{k - KEEP_TEMP:05d}"),
                                   {"propagationPolicy": "Background"})


def churn_child(kubeconfig: str, n: int, rate: float) -> None:
    """Seed, print "ready", churn until stdin closes, print the counts."""
    from fleet.kube import KubeClient

    client = KubeClient.from_kubeconfig(kubeconfig)
    seed(client, n)
    churner = Churner(client, n, rate)
    print(json.dumps({"phase": "ready"}), flush=True)
    worker = threading.Thread(target=churner.run, daemon=True)
    worker.start()
    sys.stdin.read()  # the parent closes it to stop us (or dies)
    churner.stop.set()
    worker.join(30)
    print(json.dumps({"applied": churner.applied, "failed": churner.failed,
                      "late": churner.late}), flush=True)


# --- the cache process -----------------------------------------------------------------------
def store_sizes(cache: Any) -> dict[str, int]:
    st = cache._stores
    with cache._lock:
        return {"deployments": len(st.deployments), "models": len(st.models),
                "replicasets": len(st.rs_owner), "dep_rs": len(st.dep_rs),
                "pods": len(st.pods), "pods_by_owner": len(st.pods_by_owner),
                "jobs": len(st.jobs), "job_pods": len(st.job_pod_owner),
                "events": len(st.events), "events_by_involved": len(st.events_by_involved),
                "hpas": len(st.hpas), "event_watches": len(cache._event_watches),
                "threads": threading.active_count()}


def other_namespace(client: Any) -> str:
    """A namespace other than NS for the detail screens that open and close."""
    doc = client.get("/api/v1/namespaces")
    names = sorted(n["metadata"]["name"] for n in doc["items"])
    return next((n for n in names if n.startswith("bench-") and n != NS), "default")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--kubeconfig", required=True)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of churn")
    ap.add_argument("--rate", type=float, default=4.0, help="changes per second")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between samples")
    ap.add_argument("--deployments", type=int, default=40, help="model Deployments in " + NS)
    ap.add_argument("--detail-cycle", type=float, default=30.0,
                    help="seconds between opening/closing a second namespace's Events watch")
    ap.add_argument("--out", help="write the samples and the summary here (JSON)")
    ap.add_argument("--keep", action="store_true", help=f"keep namespace {NS}")
    ap.add_argument("--churn", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    for flag in ("duration", "rate", "sample", "deployments", "detail_cycle"):
        if getattr(args, flag) <= 0:
            raise SystemExit(f"--{flag.replace('_', '-')} must be positive, "
                             f"got {getattr(args, flag)}")
    if args.churn:
        churn_child(args.kubeconfig, args.deployments, args.rate)
        return

    from fleet.errors import NotFound
    from fleet.kube import KubeClient

    client = KubeClient.from_kubeconfig(args.kubeconfig)
    churn = subprocess.Popen(
        [sys.executable, __file__, "--churn", "--kubeconfig", args.kubeconfig,
         "--deployments", str(args.deployments), "--rate", str(args.rate)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert churn.stdin is not None and churn.stdout is not None
    try:
        if not churn.stdout.readline():
            raise SystemExit(f"the churn process exited before it was ready (rc {churn.wait()})")
        result = soak(client, args)
        churn.stdin.close()
        counts = json.loads(churn.stdout.readline() or "{}")
    finally:
        if churn.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                churn.wait(40)
            churn.kill()
        if not args.keep:
            with contextlib.suppress(NotFound):
                client.delete(f"/api/v1/namespaces/{NS}")
    report(result, counts, args)


def soak(client: Any, args: argparse.Namespace) -> dict[str, Any]:
    from fleet.cache import FleetCache
    from fleet.events import FleetChange

    changes = {"notifications": 0, "upserts": 0, "deletes": 0}
    cache = FleetCache(client, None, autoscalers=True)

    def on_change(change: FleetChange) -> None:
        changes["notifications"] += 1
        changes["upserts"] += len(change.deployments_upserted)
        changes["deletes"] += len(change.deployments_deleted)
        cache.deployments()  # what the app reads on every change

    cache.subscribe(on_change)
    t_start = time.monotonic()
    cache.start()
    release_main = cache.watch_events(NS)  # the detail screen left open all session
    if not cache.wait_synced(600) or cache.events_synced(NS, 60) is not None:
        raise SystemExit("the cache did not sync")
    synced_s = time.monotonic() - t_start
    other = other_namespace(client)
    samples: list[dict[str, Any]] = []
    release_other = None
    t0 = time.monotonic()
    next_cycle = t0 + args.detail_cycle
    i = 0
    while True:
        now = time.monotonic()
        samples.append({"t": round(now - t0, 2), "rss_mb": proc_status_mb("VmRSS"),
                        **store_sizes(cache)})
        if now >= next_cycle:
            if release_other is None:
                release_other = cache.watch_events(other)
            else:
                release_other()
                release_other = None
            next_cycle += args.detail_cycle
        if now - t0 >= args.duration:
            break
        i += 1
        time.sleep(max(0.0, t0 + i * args.sample - time.monotonic()))
    if release_other is not None:
        release_other()
    release_main()
    cache.stop()
    return {"synced_s": synced_s, "other_namespace": other, "changes_seen": changes,
            "samples": samples}


def report(result: dict[str, Any], counts: dict[str, Any], args: argparse.Namespace) -> None:
    samples = result["samples"]
    ts = [s["t"] for s in samples]
    rss = [s["rss_mb"] for s in samples]
    half = [s for s in samples if s["t"] >= ts[-1] / 2]
    per_min_2nd = slope([s["t"] / 60 for s in half], [s["rss_mb"] for s in half])
    per_min_all = slope([t / 60 for t in ts], rss)
    applied = sum((counts.get("applied") or {}).values())
    summary = {"duration_s": ts[-1], "rate": args.rate, "samples": len(samples),
               "rss_start_mb": rss[0], "rss_end_mb": rss[-1], "rss_max_mb": max(rss),
               "slope_second_half_mb_per_min": per_min_2nd, "slope_all_mb_per_min": per_min_all,
               "changes_applied": applied, "churn": counts, "synced_s": result["synced_s"],
               "changes_seen": result["changes_seen"], "cores": os.cpu_count(),
               "load_end": os.getloadavg(),
               "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    if args.out:
        Path(args.out).write_text(json.dumps({"summary": summary, "samples": samples},
                                             indent=1) + "\n")
    print(f"synced in {result['synced_s']:.1f}s; {len(samples)} samples over {ts[-1]:.0f}s; "
          f"{applied} changes applied ({counts.get('applied')}, failed {counts.get('failed')}, "
          f"late ticks {counts.get('late')}); seen {result['changes_seen']}")
    print(f"RSS start {rss[0]:.1f} MB, end {rss[-1]:.1f} MB, max {max(rss):.1f} MB; slope "
          f"second half {per_min_2nd:+.3f} MB/min (whole run {per_min_all:+.3f} MB/min)")
    print(f"RSS {sparkline(rss)}")
    step = max(1, len(samples) // 10)
    keys = ("t", "rss_mb", "deployments", "replicasets", "pods", "events", "event_watches",
            "threads")
    print(" | ".join(keys))
    for s in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        print(" | ".join(f"{s[k]:.1f}" if isinstance(s[k], float) else str(s[k]) for k in keys))


if __name__ == "__main__":
    main()
