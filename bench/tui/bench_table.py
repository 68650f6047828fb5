"""How the deployments table's first fill grows with rows, most of them off screen.

  python bench/tui/bench_table.py [--rows 1000,3000,5000] [--runs 5] [--out FILE]

Headless (Textual's test driver, 200x50): the app gets N deployments from an in-memory backend
in one batch, and the time from the batch to the table holding all N rows is measured (the
drain: model update, row cells, widths, DataTable rows, sort), then the time of one more batch
that changes one row. No cluster, no network: this isolates the table's own cost from the
LIST/JSON work `bench_tui.py` measures end to end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fleet.events import FleetChange  # noqa: E402
from tests.tui.fakes import FakeBackend, deployment  # noqa: E402
from tui.app import FleetApp  # noqa: E402


async def one_run(n: int) -> dict[str, float]:
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
        await pilot.pause(0.3)
        changed = replace(records[n // 2], ready=0)
        before = table.applied_batches
        t1 = time.perf_counter()
        backend.emit(FleetChange(deployments_upserted=[changed]))
        while table.applied_batches == before:
            await pilot.pause(0.001)
        return {"fill_s": fill, "one_change_s": time.perf_counter() - t1}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", default="1000,3000,5000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench/tui/results/table-fill.json"))
    args = ap.parse_args()
    results: dict[str, dict] = {}
    for n in (int(x) for x in args.rows.split(",")):
        runs = [asyncio.run(one_run(n)) for _ in range(args.runs)]
        fills = [r["fill_s"] for r in runs]
        changes = [r["one_change_s"] for r in runs]
        results[str(n)] = {"fill_median_s": statistics.median(fills),
                           "fill_min_s": min(fills), "fill_max_s": max(fills),
                           "one_change_median_s": statistics.median(changes), "raw": runs}
        print(f"{n:>6} rows: fill median {statistics.median(fills):.3f}s "
              f"[{min(fills):.3f}-{max(fills):.3f}], one change "
              f"{statistics.median(changes) * 1000:.0f} ms", file=sys.stderr)
    doc = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "runs": args.runs, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
