"""Sweeps (issue 13): the TUI's sweep detail with 1,000 trials (results: docs/benchmarks.md).

  python -m bench.tuning.bench_sweep_tui [--trials 1000] [--runs 5] [--updates 10] [--out FILE]

The real `tui.app.FleetApp` and `tui.screens.sweep.SweepDetailScreen` under Textual's
`App.run_test` (headless, 160x40), on the in-memory backend of the TUI tests
(`tests/tui/fakes.py`: a sweep Job record, and a trials ConfigMap of `--trials` synthetic
trials in the workers' `trials.json` format, 5 params, 5 epochs of intermediate values each).

- **first render**, `--runs` fresh screens: from `screen.poll()` (the read of the ConfigMap:
  JSON parsed and diffed in the screen's worker thread) until the trials table holds every
  row, both plots (best-so-far, intermediate values) are built and the next frame has been
  processed; timed with `time.perf_counter()`; beside it the screen's own `last_apply_s` (the
  UI thread's share: applying the rows, the importances and the pods).
- **update**, `--updates` reads of the same 1,000-trial sweep in which one running trial
  reports an epoch and one new trial starts: poll → that read applied (`last_apply_s` and
  wall time).

Raw results to --out (default bench/tuning/results-sweep-tui.json).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.tuning.bench_sweep_analysis import summary  # noqa: E402
from bench.tuning.bench_train import commit, machine  # noqa: E402

SIZE = (160, 40)
KEY = ("team-a", "sweep-01")


async def measure(trials: int, runs: int, updates: int) -> dict[str, Any]:
    from fleet.model import SweepTrials
    from tests.tui.fakes import (
        NOW,
        FakeBackend,
        deployment,
        sweep,
        sweep_pod,
        trial_row,
        trial_states,
        trials_configmap,
    )
    from tests.tui.waiting import settle, until
    from tui.app import FleetApp
    from tui.screens.sweep import SweepDetailScreen

    fb = FakeBackend([deployment(1)], [sweep(1)])
    fb.sweep_pod_list[KEY] = [sweep_pod(f"sweep-01-{i}-x{i}bc") for i in range(4)]
    rows = [trial_row(n, st) for n, st in enumerate(trial_states(trials))]
    app = FleetApp(lambda ctx, ns: fb, age_refresh_s=0, clock=lambda: NOW)
    first, first_ui, upd, upd_ui = [], [], [], []
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await settle(pilot)
        for attempt in range(runs):
            fb.trials[KEY] = SweepTrials(found=False)
            screen = SweepDetailScreen(KEY, poll_s=0)
            await app.push_screen(screen)
            await until(pilot, lambda s=screen: s.loads >= 1, what="empty read")
            await settle(pilot)
            table = screen.query_one("#trials")
            best, curves = screen.query_one("#best-plot"), screen.query_one("#curve-plot")
            fb.trials[KEY] = trials_configmap(KEY[1], KEY[0], rows, {"dropout": 0.3},
                                              rv=str(100 + attempt))
            started = time.perf_counter()
            screen.poll()
            await until(pilot, lambda t=table, b=best, c=curves: t.row_count == trials
                        and b.current and c.current and b.builds > 1 and c.builds >= 1,
                        what=f"{trials} trials rendered", timeout=60)
            await pilot.pause()  # the frame with them
            first.append(time.perf_counter() - started)
            first_ui.append(screen.last_apply_s)
            if attempt == runs - 1:
                live = list(rows)
                for step in range(updates):
                    n = trials - 3 + step % 3
                    live[n] = trial_row(n, "running", epochs=1 + step % 5)
                    live[n]["steps"] = live[n]["steps"][:1 + step]
                    live.append(trial_row(trials + step, "running"))
                    fb.trials[KEY] = trials_configmap(KEY[1], KEY[0], live, rv=str(1000 + step))
                    t0 = time.perf_counter()
                    screen.poll()
                    await until(pilot, lambda s=step, sc=screen: sc.snapshot.resource_version
                                == str(1000 + s), what="read")
                    await pilot.pause()
                    upd.append(time.perf_counter() - t0)
                    upd_ui.append(screen.last_apply_s)
                    await settle(pilot)
            app.pop_screen()
            await settle(pilot)
    return {"first_render_s": summary(first), "first_render_ui_thread_s": summary(first_ui),
            "update_s": summary(upd), "update_ui_thread_s": summary(upd_ui)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=1000)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--updates", type=int, default=10)
    ap.add_argument("--out", default=str(REPO / "bench/tuning/results-sweep-tui.json"))
    args = ap.parse_args()
    if not (1 <= args.trials <= 2000 and 1 <= args.runs <= 20 and 0 <= args.updates <= 50):
        ap.error("--trials 1..2000 (the ConfigMap keeps 2,000), --runs 1..20, --updates 0..50")
    import textual

    load = os.getloadavg()
    res = asyncio.run(measure(args.trials, args.runs, args.updates))
    out = {"started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
           "machine": machine(), "commit": commit(), "textual": textual.__version__,
           "command": " ".join([Path(sys.executable).name, "-m", "bench.tuning.bench_sweep_tui",
                                *sys.argv[1:]]),
           # the output path relative to the checkout: no local absolute paths in results
           "config": {**vars(args), "out": os.path.relpath(args.out, REPO)}, "size": SIZE,
           "load_avg_at_start": load,
           "load_avg_at_end": os.getloadavg(), **res}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")
    for k, v in res.items():
        print(f"{k}: median {v.get('median')} (min {v.get('min')}, max {v.get('max')}, "
              f"p95 {v.get('p95')}, n={v.get('n')})")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
