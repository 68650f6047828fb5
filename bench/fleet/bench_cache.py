"""Cache sync cost for 1,000 model Deployments (2 RS each), 500 Jobs and their pods through the
reflectors' real LIST path (500-item pages, orjson, projection, model derivation), without the
network, side by side with the peer: the `kubernetes` package decoding the same pages into its
model objects (`ApiClient.deserialize`, what `list_*(limit=500, _continue=...)` does with each
response body) and keeping them. Reports total CPU time, the time left once the final pages
have arrived, and the stores' resident memory; one fresh process per run and side, the order
alternating. Usage: python bench/fleet/bench_cache.py [--runs 7] [--out FILE]"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_s() -> float:
    """This process's user + system CPU seconds (less sensitive than wall time to a busy box)."""
    t = os.times()
    return t.user + t.system


EMPTY_PAGE = b'{"kind":"List","apiVersion":"v1","metadata":{},"items":[]}'
# the reflectors' types in the fixture, and the peer's list type for each
PEER_TYPES = {"deployments": "V1DeploymentList", "replicasets": "V1ReplicaSetList",
              "pods": "V1PodList", "jobs": "V1JobList", "cronjobs": "V1CronJobList"}
SIDES = ("ours", "kubernetes")


class PagedBodies:
    """A client whose LISTs return pre-serialized 500-item pages, decoded like KubeClient's."""

    def __init__(self, pages: dict[str, list[bytes]]) -> None:
        self.pages = pages
        self.last_arrival = 0.0

    def list_pages(self, path: str, query=None):
        import orjson

        plural = path.rsplit("/", 1)[-1]
        chunks = self.pages.get(plural) or [EMPTY_PAGE]  # e.g. no CronJobs in the fixture
        for i, raw in enumerate(chunks):
            if i == len(chunks) - 1:
                self.last_arrival = time.perf_counter()  # the final response is here
            yield orjson.loads(raw)


def one_run(path: str) -> dict[str, float]:
    """In a fresh process: run every reflector's LIST path over the pages, then derive."""
    import pickle

    from fleet.cache import FleetCache

    gc.collect()
    base = rss_mb()  # before the LIST bodies exist, so freeing them cannot hide cache memory
    pages: dict[str, list[bytes]] = pickle.loads(Path(path).read_bytes())
    list_bytes = sum(len(b) for chunks in pages.values() for b in chunks)
    client = PagedBodies(pages)
    cache = FleetCache(client=client, namespaces=None)
    after_last = 0.0
    c0, t0 = cpu_s(), time.perf_counter()
    for r in cache._reflectors:
        r.list_once()
        after_last += time.perf_counter() - client.last_arrival
    t1 = time.perf_counter()
    deps = cache.deployments()
    jobs = cache.jobs()
    t2, c2 = time.perf_counter(), cpu_s()
    del pages, client.pages
    gc.collect()
    after = rss_mb()
    assert len(deps) == 1000 and len(jobs) == 500, (len(deps), len(jobs))
    return {"total_s": t2 - t0, "cpu_s": c2 - c0, "after_lists_s": after_last + (t2 - t1),
            "cache_rss_mb": after - base, "list_mb": list_bytes / 2**20,
            "process_rss_mb": after}


def one_peer_run(path: str) -> dict[str, float]:
    """In a fresh process: the `kubernetes` package's LIST decoding over the same pages, every
    item kept as its model object (keyed like `kubernetes.informer.ObjectCache`)."""
    import pickle

    from kubernetes import client

    api = client.ApiClient()
    gc.collect()
    base = rss_mb()
    pages: dict[str, list[bytes]] = pickle.loads(Path(path).read_bytes())
    list_bytes = sum(len(b) for chunks in pages.values() for b in chunks)
    stores: dict[str, dict[tuple[str, str], object]] = {}
    after_last = 0.0
    c0, t0 = cpu_s(), time.perf_counter()
    for plural, list_type in PEER_TYPES.items():
        store = stores.setdefault(plural, {})
        chunks = pages.get(plural) or [EMPTY_PAGE]
        for i, raw in enumerate(chunks):
            if i == len(chunks) - 1:
                last = time.perf_counter()
            # what the generated client does with a 200 response body
            page = api.deserialize(raw.decode("utf-8"), list_type, "application/json")
            for item in page.items or []:
                store[(item.metadata.namespace or "", item.metadata.name)] = item
        after_last += time.perf_counter() - last
    t2, c2 = time.perf_counter(), cpu_s()
    del pages
    gc.collect()
    after = rss_mb()
    assert len(stores["deployments"]) == 1000 and len(stores["jobs"]) == 500, \
        {k: len(v) for k, v in stores.items()}
    return {"total_s": t2 - t0, "cpu_s": c2 - c0, "after_lists_s": after_last,
            "cache_rss_mb": after - base, "list_mb": list_bytes / 2**20,
            "process_rss_mb": after}


def paginate(bodies: dict[str, bytes], limit: int = 500) -> dict[str, list[bytes]]:
    import orjson

    out = {}
    for plural, raw in bodies.items():
        doc = orjson.loads(raw)
        items = doc.pop("items")
        out[plural] = [orjson.dumps({**doc, "items": items[i:i + limit]})
                       for i in range(0, max(len(items), 1), limit)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7, help="runs per side")
    ap.add_argument("--out", help="write every run's raw results here (JSON)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--side", choices=SIDES, default="ours", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps((one_run if args.side == "ours" else one_peer_run)(args.child)))
        return
    import pickle
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fixtures import build

    bodies = build()
    bodies.pop("events")  # not listed by either side (Events are watched per namespace)
    fd, path = tempfile.mkstemp(suffix=".pkl")
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(paginate(bodies), fh)
    runs: dict[str, list[dict[str, float]]] = {s: [] for s in SIDES}
    loads = []
    try:
        for i in range(args.runs):
            for side in SIDES if i % 2 == 0 else SIDES[::-1]:
                loads.append(os.getloadavg()[0])
                out = subprocess.run([sys.executable, __file__, "--child", path, "--side", side],
                                     capture_output=True, text=True, check=True)
                runs[side].append(json.loads(out.stdout))
    finally:
        os.unlink(path)
    if args.out:
        Path(args.out).write_text(json.dumps({"runs_per_side": args.runs, "cores": os.cpu_count(),
                                              "load": [min(loads), max(loads)], **runs},
                                             indent=1) + "\n")

    def stat(side: str, key: str, fmt: str = ".3f") -> str:
        vals = [r[key] for r in runs[side]]
        return (f"median {statistics.median(vals):{fmt}} (min {min(vals):{fmt}}, "
                f"max {max(vals):{fmt}})")

    print(f"LIST bodies: {runs['ours'][0]['list_mb']:.1f} MB in 500-item pages; runs per side: "
          f"{args.runs}; load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    for side in SIDES:
        print(f"{side}: all pages decoded+stored{'+derived' if side == 'ours' else ''}: "
              f"{stat(side, 'total_s')} s")
        print(f"{side}: CPU seconds for that: {stat(side, 'cpu_s')} s")
        print(f"{side}: after the final pages arrived: {stat(side, 'after_lists_s')} s")
        print(f"{side}: stores' RSS: {stat(side, 'cache_rss_mb', '.1f')} MB; process RSS "
              f"{stat(side, 'process_rss_mb', '.0f')} MB")


if __name__ == "__main__":
    main()
