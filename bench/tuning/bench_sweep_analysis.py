"""Pure analysis for bench/tuning/bench_sweep.py: pod-log parsing, slot reconstruction and the
per-trial overhead split (no cluster, no database; unit-checkable on synthetic input).

Times are epoch seconds. Every trainer/worker log line carries its own `asctime` (the process's
local time, 1 ms resolution); the CRI timestamp that `kubectl logs --timestamps` adds fixes the
UTC offset only (the runner copies output on a poll, so the CRI time lags by 0-1 s).

Definitions (docs/benchmarks.md repeats them):

- **work** of a trial = the trial process's own work once TensorFlow is imported: from the
  child's `TensorFlow … on …` line (`tuning.train_run.run`, just before `train(ctx)`) until its
  model is published (the HDFS modification time of the version's `metadata.json`, which
  `serving.store.Store.publish` writes last): fit of every epoch, SavedModel export, LiteRT
  conversion, holdout evaluation, upload. What a bare process that already imported TensorFlow
  spends on the same trial, whichever execution model runs it.
- **slot**: `parallelism` trials run at once. Pool: the worker pod (trial user attr `pod`).
  Pod-per-trial: reconstructed: trials in start order take the slot freed earliest (what the
  controller does: it starts a trial when it sees one of its `parallelism` Jobs finished).
- **overhead** of a trial = (its end − the time its slot became free) − work, where the end is
  Optuna's `datetime_complete` (the `tell`) and a slot becomes free at the previous trial's
  end on it, or at the launch (the Job's creation) for the first trial of each slot. So it holds
  everything the execution model adds: the gap between trials (slot reservation, `ask`, for
  pod-per-trial the old pod's exit, the Job controller's Complete, the controller's poll, a new
  Job, scheduling, the pod's start, code install, data staging, the TensorFlow import), the
  child's start and the trainer's loading (`pre`: slot free → train start) and the result's
  bookkeeping and `tell` (`post`: model published → tell).
- **steady**: the trials that are not the first on their slot (for the pool: the trials that
  do not pay the pod's start).
"""

from __future__ import annotations

import datetime as dt
import re
import statistics
from collections.abc import Iterable
from typing import Any

ASCTIME = re.compile(r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?P<text>.*)$")
CRI_TS = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (?P<text>.*)$")

TF_LINE = re.compile(r"^trainer INFO TensorFlow \S+ on ")
EPOCH_LINE = re.compile(r"^trainer INFO epoch (?P<i>\d+)/(?P<n>\d+) ")
DONE_LINE = re.compile(r"^trainer INFO training done")
BUILT_LINE = re.compile(r"^tuning\.artifact INFO built .* in \S*/trials/(?P<n>\d+)/")
TRIAL_END_LINE = re.compile(r"^sweep INFO trial (?P<n>\d+) (?P<state>[a-z]+)")
INSTALLED_LINE = re.compile(r"^sweep INFO installed .* once for this pod")
STAGED_LINE = re.compile(r"^sweep INFO staged dataset .* once for this pod")
CREATED_LINE = re.compile(r"^sweep\.controller INFO trial (?P<n>\d+): job\.batch/\S+ created")


def rfc3339(text: str) -> float:
    """RFC 3339 (Z, up to nanoseconds) → epoch seconds."""
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?Z$", text)
    if not m:
        raise ValueError(f"not an RFC 3339 UTC time: {text!r}")
    frac = (m[2] or "")[:7]
    return dt.datetime.fromisoformat(f"{m[1]}{frac}+00:00").timestamp()


def naive_local(value: dt.datetime | None) -> float | None:
    """Optuna's datetime_start/complete are naive `datetime.now()` of the pod (a host process
    here, so this machine's local time)."""
    if value is None:
        return None
    return value.timestamp() if value.tzinfo else value.replace(tzinfo=None).timestamp()


def parse_log(text: str) -> list[tuple[float, str]]:
    """(epoch seconds, line text without asctime) of every line with an asctime."""
    rows: list[tuple[float, float, str]] = []
    for raw in text.splitlines():
        m = CRI_TS.match(raw)
        if not m:
            continue
        a = ASCTIME.match(m["text"])
        if not a:
            continue
        naive = dt.datetime.strptime(a["at"], "%Y-%m-%d %H:%M:%S,%f").replace(
            tzinfo=dt.UTC).timestamp()
        rows.append((naive, rfc3339(m["ts"]), a["text"]))
    if not rows:
        return []
    offset = round(statistics.median(c - n for n, c, _ in rows) / 900) * 900
    return [(n + offset, t) for n, _c, t in rows]


def trial_marks(lines: Iterable[tuple[float, str]]) -> dict[int, dict[str, float]]:
    """Per trial number: tf (train starts), first_epoch, last_epoch, done (train() returned),
    built (artifact built), told (the worker's `trial N <state> … in W s` line). Trials run one
    after the other in a pod, so the child's lines before a `built … trials/N/` line are N's."""
    out: dict[int, dict[str, float]] = {}
    pending: dict[str, float] = {}
    for t, text in lines:
        if TF_LINE.match(text):
            pending = {"tf": t}
        elif (m := EPOCH_LINE.match(text)) and "tf" in pending:
            pending.setdefault("first_epoch", t)
            pending["last_epoch"] = t
            pending["epochs"] = float(m["i"])
        elif DONE_LINE.match(text) and "tf" in pending:
            pending["done"] = t
        elif (m := BUILT_LINE.match(text)) and "tf" in pending:
            pending["built"] = t
            out[int(m["n"])] = pending
            pending = {}
        elif m := TRIAL_END_LINE.match(text):
            out.setdefault(int(m["n"]), {})["told"] = t
    return out


def pod_marks(lines: list[tuple[float, str]]) -> dict[str, float]:
    """First line, code installed, data staged (the pod's set-up), last line."""
    out: dict[str, float] = {}
    if lines:
        out["first_line"] = lines[0][0]
        out["last_line"] = lines[-1][0]
    for t, text in lines:
        if INSTALLED_LINE.match(text):
            out.setdefault("installed", t)
        elif STAGED_LINE.match(text):
            out.setdefault("staged", t)
    return out


def controller_created(lines: Iterable[tuple[float, str]]) -> dict[int, float]:
    return {int(m["n"]): t for t, text in lines if (m := CREATED_LINE.match(text))}


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    vals = sorted(values)
    if not vals:
        raise ValueError("no values")
    pos = (len(vals) - 1) * q / 100.0
    lo = int(pos)
    hi = min(lo + 1, len(vals) - 1)
    return vals[lo] + (vals[hi] - vals[lo]) * (pos - lo)


def summary(values: Iterable[float | None], digits: int = 3) -> dict[str, Any]:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return {"n": 0}
    return {"n": len(vals), "median": round(statistics.median(vals), digits),
            "p95": round(percentile(vals, 95), digits),
            "mean": round(statistics.fmean(vals), digits),
            "min": round(min(vals), digits), "max": round(max(vals), digits),
            "raw": [round(v, 4) for v in vals]}


def assign_slots(trials: list[dict[str, Any]], parallelism: int, launch: float,
                 by_pod: bool) -> None:
    """Sets `slot` and `slot_free` (when that slot became free for the trial) on each trial
    (dicts with `number`, `start`, `end`, `pod`), in place."""
    order = sorted(trials, key=lambda t: (t["start"], t["number"]))
    if by_pod:
        free: dict[str, float] = {}
        for t in order:
            t["slot"] = t["pod"]
            t["slot_free"] = free.get(t["pod"], launch)
            t["first_on_slot"] = t["pod"] not in free
            free[t["pod"]] = t["end"]
        return
    slots = [launch] * parallelism
    used = [False] * parallelism
    for t in order:
        i = min(range(parallelism), key=lambda k: slots[k])
        t["slot"] = i
        t["slot_free"] = slots[i]
        t["first_on_slot"] = not used[i]
        used[i] = True
        slots[i] = max(t["end"], slots[i])


def overheads(trials: list[dict[str, Any]]) -> None:
    """work, overhead and its parts (pre: slot free → train start; post: model published →
    tell) on each trial that has its marks, in place; train (train()), artifact (export,
    conversion, evaluation) and publish (the upload) split the work."""
    for t in trials:
        if not {"tf", "built", "published", "end", "slot_free"} <= t.keys():
            continue
        t["work_s"] = t["published"] - t["tf"]
        t["train_s"] = t["done"] - t["tf"] if "done" in t else None
        t["fit_s"] = (t["last_epoch"] - t["tf"]) if "last_epoch" in t else None
        t["artifact_s"] = t["built"] - t["done"] if "done" in t else None
        t["publish_s"] = t["published"] - t["built"]
        t["pre_s"] = t["tf"] - t["slot_free"]
        t["post_s"] = t["end"] - t["published"]
        t["overhead_s"] = (t["end"] - t["slot_free"]) - t["work_s"]


def throughput(trials: list[dict[str, Any]], launch: float) -> dict[str, Any]:
    done = [t for t in trials if t["state"] == "COMPLETE" and t["end"] is not None]
    if not done:
        return {"complete": 0}
    first = min(t["start"] for t in done)
    last = max(t["end"] for t in done)
    wall = last - first
    return {"complete": len(done), "first_start_to_last_end_s": round(wall, 3),
            "trials_per_min": round(len(done) / wall * 60, 3) if wall > 0 else None,
            "launch_to_last_end_s": round(last - launch, 3),
            "trials_per_min_from_launch": round(len(done) / (last - launch) * 60, 3)}


def _selftest() -> None:
    log = "\n".join([
        "2026-12-02T01:00:00.100Z 2026-12-02 01:00:00,050 sweep INFO installed x once for this pod",
        "2026-12-02T01:00:01.100Z 2026-12-02 01:00:01,000 trainer INFO TensorFlow 2.x on CPU",
        "2026-12-02T01:00:02.100Z 2026-12-02 01:00:02,000 trainer INFO epoch 1/2 a=1",
        "2026-12-02T01:00:03.100Z 2026-12-02 01:00:03,000 trainer INFO epoch 2/2 a=1",
        "2026-12-02T01:00:03.200Z 2026-12-02 01:00:03,100 trainer INFO training done: n=1",
        "2026-12-02T01:00:04.200Z 2026-12-02 01:00:04,000 tuning.artifact INFO built m in "
        "/scratch/trials/7/artifact-ab/version: holdout {}",
        "2026-12-02T01:00:04.500Z 2026-12-02 01:00:04,400 sweep INFO trial 7 complete v=1 in 3.4 s",
    ])
    lines = parse_log(log)
    marks = trial_marks(lines)
    assert set(marks) == {7} and marks[7]["built"] - marks[7]["tf"] == 3.0, marks
    t = [{"number": 7, "start": marks[7]["tf"] - 0.5, "end": marks[7]["told"], "pod": "a",
          "state": "COMPLETE", "published": marks[7]["built"] + 0.2, **marks[7]}]
    assign_slots(t, 1, t[0]["start"] - 1.0, by_pod=True)
    overheads(t)
    assert abs(t[0]["overhead_s"] - (t[0]["end"] - t[0]["slot_free"] - 3.2)) < 1e-6
    assert abs(t[0]["pre_s"] - 1.5) < 1e-6 and abs(t[0]["post_s"] - 0.2) < 1e-6, t
    ppt = [{"number": n, "start": s, "end": e, "pod": f"p{n}"}
           for n, s, e in ((0, 1, 10), (1, 1, 12), (2, 11, 20), (3, 13, 22))]
    assign_slots(ppt, 2, 0.0, by_pod=False)
    assert [p["slot_free"] for p in ppt] == [0.0, 0.0, 10, 12], ppt
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([5], 95) == 5


if __name__ == "__main__":
    _selftest()
    print("ok")
