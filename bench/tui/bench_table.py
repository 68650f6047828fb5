"""How the deployments table's first fill grows with rows, most of them off screen.

  python bench/tui/bench_table.py [--rows 500,5000,20000] [--runs 5] [--peer CHECKOUT] [--out FILE]

Headless (Textual's test driver, 200x50): the app gets N deployments from an in-memory backend
in one batch; measured are the time from the batch to the table holding all N rows (the
drain: model update, order, widths, the widget's rows), the time until the screen is painted
after it, and the time of one more batch that changes the top row (on screen). No cluster,
no network: this isolates the table's own cost from the LIST/JSON work `bench_tui.py`
measures end to end.

`--peer CHECKOUT`: the same measurement of another checkout (e.g. the commit before a change),
run in a subprocess, alternating with this tree's runs, so that both see the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


async def one_run(n: int) -> dict[str, float]:
    from fleet.events import FleetChange
    from tests.tui.fakes import FakeBackend, deployment
    from tui.app import FleetApp

    backend = FakeBackend([])
    app = FleetApp(lambda _c, _n: backend, age_refresh_s=0)
    async with app.run_test(size=(200, 50)) as pilot:
        while backend.on_change is None:
            await pilot.pause(0.01)
        table = app.main.query_one("#dep-table")
        records = [deployment(i, ns=f"team-{i % 5}") for i in range(n)]
        t0 = time.perf_counter()
        backend.emit(FleetChange(deployments_upserted=records))
        while table.row_count < n:
            await pilot.pause(0.001)
        fill = time.perf_counter() - t0
        await pilot.pause()  # the refresh, the idle work, the paint
        painted = time.perf_counter() - t0
        await pilot.pause(0.3)
        top = app.deployments.ordered()[0]
        changed = replace(app.deployments.records[top], ready=0)
        before = table.applied_batches
        t1 = time.perf_counter()
        backend.emit(FleetChange(deployments_upserted=[changed]))
        while table.applied_batches == before:
            await pilot.pause(0.001)
        await pilot.pause()
        return {"fill_s": fill, "painted_s": painted, "one_change_s": time.perf_counter() - t1}


def peer_run(peer: Path, n: int) -> dict[str, float]:
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--one", str(n),
                          "--root", str(peer)], check=True, capture_output=True, text=True,
                         cwd=peer)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(runs: list[dict[str, float]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for metric in ("fill_s", "painted_s", "one_change_s"):
        values = [r[metric] for r in runs]
        out[metric] = {"median": statistics.median(values), "min": min(values),
                       "max": max(values)}
    out["raw"] = runs
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--rows", default="500,5000,20000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--peer", type=Path, help="another checkout, measured alternately")
    ap.add_argument("--out", default=str(ROOT / "bench/tui/results/table-fill.json"))
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # one run, JSON on stdout
    ap.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = ap.parse_args()
    sys.path.insert(0, str(args.root))
    if args.one is not None:
        print(json.dumps(asyncio.run(one_run(args.one))))
        return 0
    results: dict[str, dict] = {}
    for n in (int(x) for x in args.rows.split(",")):
        this: list[dict[str, float]] = []
        peer: list[dict[str, float]] = []
        for _ in range(args.runs):
            if args.peer is not None:
                peer.append(peer_run(args.peer, n))
            this.append(peer_run(args.root, n))
        results[str(n)] = {"this": summary(this)}
        if peer:
            results[str(n)]["peer"] = summary(peer)
        for name, runs in (("this", this), ("peer", peer)):
            if runs:
                fills = [r["fill_s"] for r in runs]
                paints = [r["painted_s"] for r in runs]
                print(f"{n:>6} rows {name}: fill {statistics.median(fills):.3f}s "
                      f"[{min(fills):.3f}-{max(fills):.3f}], painted "
                      f"{statistics.median(paints):.3f}s, one change "
                      f"{statistics.median(r['one_change_s'] for r in runs) * 1000:.0f} ms",
                      file=sys.stderr)
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                       "load_avg_1m_at_end": os.getloadavg()[0]},
           "runs": args.runs, "peer": args.peer.name if args.peer else None,
           "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
