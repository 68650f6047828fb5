"""Render a bench_tui.py result file as the markdown table used in docs/benchmarks.md.

  python bench/tui/report.py bench/tui/results/m1000-200x50.json
"""

from __future__ import annotations

import json
import math
import sys

ROWS = [
    # (label, key, scale, unit, target text, lower is better)
    ("cold start → full table (median)", "start_median_s", 1, "s", "≤ 2.0 s, ≤ k9s"),
    ("cold start → full table (p95)", "start_p95_s", 1, "s", ""),
    ("first paint (median)", "first_paint_median_s", 1, "s", ""),
    ("watch event → visible (p50)", "event_p50_s", 1000, "ms", ""),
    ("watch event → visible (p95)", "event_p95_s", 1000, "ms", "≤ 500 ms"),
    ("Down → highlight moved (p50)", "down_p50_s", 1000, "ms", ""),
    ("Down → highlight moved (p95)", "down_p95_s", 1000, "ms", "≤ 50 ms"),
    ("`/` + name + Enter → count (median)", "filter_median_s", 1000, "ms", ""),
    ("idle CPU over 30 s (median)", "idle_cpu_pct_median", 1, "% of a core", "≤ 1 %"),
    ("RSS after full sync (median)", "rss_mb_median", 1, "MB", "≤ 250 MB, ≤ k9s"),
]


def fmt(value: float | None, scale: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    v = value * scale
    return f"{v:.0f}" if scale != 1 or v >= 100 else f"{v:.2f}"


def main(path: str) -> None:
    with open(path) as fh:
        doc = json.load(fh)
    s = doc["summary"]
    ours, k9s = s.get("fleet", {}), s.get("k9s", {})
    print("| metric | fleet tui | k9s v0.50.16 | fleet / k9s | target |")
    print("|---|---|---|---|---|")
    for label, key, scale, unit, target in ROWS:
        a, b = ours.get(key), k9s.get(key)
        ratio = "–"
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and b and not (
                math.isnan(a) or math.isnan(b)):
            ratio = f"{a / b:.2f}"
        print(f"| {label} | {fmt(a, scale)} {unit} | {fmt(b, scale)} {unit} | {ratio} | "
              f"{target} |")
    print(f"\nruns: fleet {ours.get('runs')}, k9s {k9s.get('runs')}; events per tool "
          f"{ours.get('events')}/{k9s.get('events')}")


if __name__ == "__main__":
    main(sys.argv[1])
