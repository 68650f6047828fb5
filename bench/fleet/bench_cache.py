"""Cache sync cost for 1,000 model Deployments (2 RS each), 500 Jobs, their pods and 2,000
events, through the reflectors' real LIST path (500-item pages, orjson, projection, model
derivation), without the network. Reports total CPU time, the time left once the final pages
have arrived, and the cache's resident memory. Usage: python bench/fleet/bench_cache.py"""

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


class PagedBodies:
    """A client whose LISTs return pre-serialized 500-item pages, decoded like KubeClient's."""

    def __init__(self, pages: dict[str, list[bytes]]) -> None:
        self.pages = pages
        self.last_arrival = 0.0

    def list_pages(self, path: str, query=None):
        import orjson

        plural = path.rsplit("/", 1)[-1]
        chunks = self.pages[plural]
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
    t0 = time.perf_counter()
    for r in cache._reflectors:
        r.list_once()
        after_last += time.perf_counter() - client.last_arrival
    t1 = time.perf_counter()
    deps = cache.deployments()
    jobs = cache.jobs()
    t2 = time.perf_counter()
    del pages, client.pages
    gc.collect()
    after = rss_mb()
    assert len(deps) == 1000 and len(jobs) == 500, (len(deps), len(jobs))
    return {"total_s": t2 - t0, "after_lists_s": after_last + (t2 - t1),
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
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one_run(args.child)))
        return
    import pickle
    import tempfile

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fixtures import build

    fd, path = tempfile.mkstemp(suffix=".pkl")
    with os.fdopen(fd, "wb") as fh:
        pickle.dump(paginate(build()), fh)
    try:
        runs = []
        for _ in range(args.runs):
            out = subprocess.run([sys.executable, __file__, "--child", path], capture_output=True,
                                 text=True, check=True)
            runs.append(json.loads(out.stdout))
    finally:
        os.unlink(path)
    def stat(key: str, fmt: str = ".3f") -> str:
        vals = [r[key] for r in runs]
        return (f"median {statistics.median(vals):{fmt}} (min {min(vals):{fmt}}, "
                f"max {max(vals):{fmt}})")

    print(f"LIST bodies: {runs[0]['list_mb']:.1f} MB in 500-item pages; runs: {len(runs)}; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"decode+project+derive, all pages: {stat('total_s')} s")
    print(f"after the final pages arrived:    {stat('after_lists_s')} s")
    print(f"cache RSS:                        {stat('cache_rss_mb', '.1f')} MB; "
          f"process RSS {runs[0]['process_rss_mb']:.0f} MB")

if __name__ == "__main__":
    main()
