"""Render bench/serving/run.py's JSON as the markdown tables of docs/benchmarks.md.

Usage: python bench/serving/report.py RESULTS.json
"""

from __future__ import annotations

import json
import sys
from typing import Any


def cell(stat: dict[str, float]) -> str:
    if not stat:
        return "–"
    return f"{stat['median']:g} ({stat['min']:g}–{stat['max']:g})"


def main(path: str) -> None:
    with open(path) as fh:
        d = json.load(fh)
    m = d["machine"]
    print(f"Run {d['date']}; {m['cpu']}, nproc {m['nproc']}; server on core "
          f"{m['server_core']}, load generator on core {m['client_core']}; "
          f"{d['settings']['reps']} interleaved reps x {d['settings']['duration_s']} s "
          f"(after {d['settings']['warmup_s']} s warm-up); peer: {d['peer']}.\n")
    print("| scenario | ready s | c | rps | p50 ms | p99 ms | mean batch | non-200 |")
    print("|---|---|---|---|---|---|---|---|")
    for name, sc in d["scenarios"].items():
        for c, r in sc["by_concurrency"].items():
            errs = r["errors"]
            if "overload" in name:
                errs = f"{errs} (503 p50 {cell(r.get('error_p50_ms', {}))} ms)"
            print(f"| {name} | {sc['ready_s']} | {c} | {cell(r['rps'])} | {cell(r['p50_ms'])} "
                  f"| {cell(r['p99_ms'])} | {cell(r['mean_batch'])} | {errs} |")
    t = d["model_time"]
    print("\nIn-process model time, median ms per call (1 thread, server core):\n")
    batches = list(next(iter(t["t_model"].values())))
    print("| runtime | bytes | holdout acc | " + " | ".join(f"b={b}" for b in batches) + " |")
    print("|---|---|---|" + "---|" * len(batches))
    for name, per in t["t_model"].items():
        acc = (t.get("holdout") or {}).get(name.replace("-", "_"))
        print(f"| {name} | {t['bytes'][name]:,} | {acc} | "
              + " | ".join(f"{per[b]['median_ms']:g}" for b in batches) + " |")
    derived(d)


def derived(d: dict[str, Any]) -> None:
    s = d["scenarios"]
    tm = d["model_time"]["t_model"]

    def med(name: str, c: str, key: str) -> float | None:
        try:
            return s[name]["by_concurrency"][c][key]["median"]
        except KeyError:
            return None

    print("\nDerived (medians):\n")
    p50 = med("ours-latency-savedmodel", "1", "p50_ms")
    if p50 is not None:
        print(f"- overhead at c=1, SavedModel: p50 {p50} − t_model(1) "
              f"{tm['savedmodel']['1']['median_ms']} = "
              f"{p50 - tm['savedmodel']['1']['median_ms']:.3f} ms")
    p50 = med("ours-latency-auto", "1", "p50_ms")
    if p50 is not None:
        print(f"- overhead at c=1, LiteRT (latency, auto): p50 {p50} ms end to end")
    on, off = med("ours-throughput-savedmodel", "64", "rps"), med("ours-latency-savedmodel", "64",
                                                                  "rps")
    if on and off:
        print(f"- batching gain at c=64, SavedModel: {on} / {off} = {on / off:.2f}x")
    ceiling2 = med("ours-noop-http", "64", "rps")
    batch = med("ours-throughput-savedmodel", "64", "mean_batch")
    if ceiling2 and on and batch:
        b = min(tm["savedmodel"], key=lambda k: abs(int(k) - batch))
        ceiling1 = int(b) / (tm["savedmodel"][b]["median_ms"] / 1e3)
        print(f"- physical limit: ceiling1 (SavedModel at batch {b}) {ceiling1:,.0f} rps; "
              f"ceiling2 (same server, no-op model, c=64) {ceiling2:,.0f} rps; "
              f"efficiency {on / min(ceiling1, ceiling2):.0%}")
    floor = med("ours-noop-http", "1", "p50_ms")
    if floor is not None:
        print(f"- HTTP-only p50 at c=1 (no-op model, client included): {floor} ms")
    for ours_name, peer in (("ours-throughput-savedmodel", "bento-batching"),
                            ("ours-latency-savedmodel", "bento-unbatched")):
        a, b_ = med(ours_name, "64", "rps"), med(peer, "64", "rps")
        if a and b_:
            print(f"- c=64 rps {ours_name} / {peer}: {a / b_:.2f}x")
    for ours_name, peer in (("ours-latency-savedmodel", "bento-unbatched"),
                            ("ours-latency-savedmodel", "bento-batching")):
        a, b_ = med(ours_name, "1", "p50_ms"), med(peer, "1", "p50_ms")
        if a and b_:
            print(f"- c=1 p50 {ours_name} vs {peer}: {a} vs {b_} ms ({1 - a / b_:.0%} lower)")
    kserve(med)


def kserve(med: Any) -> None:
    """Against KServe (target: >= 1.5x its rps at c=64, <= its p50 at c=1), per runtime."""
    for peer, mine in (("kserve-savedmodel", ("ours-throughput-savedmodel",
                                              "ours-latency-savedmodel")),
                       ("kserve-litert", ("ours-throughput-auto", "ours-latency-auto"))):
        for ours_name in mine:
            a, b_ = med(ours_name, "64", "rps"), med(peer, "64", "rps")
            if a and b_:
                print(f"- c=64 rps {ours_name} / {peer}: {a} / {b_} = {a / b_:.2f}x "
                      f"({'meets' if a / b_ >= 1.5 else 'misses'} >= 1.5x)")
        a, b_ = med(mine[1], "1", "p50_ms"), med(peer, "1", "p50_ms")
        if a and b_:
            print(f"- c=1 p50 {mine[1]} vs {peer}: {a} vs {b_} ms "
                  f"({'meets' if a <= b_ else 'misses'} <=)")


if __name__ == "__main__":
    main(sys.argv[1])
