"""Sweeps (issue 13): the worker pool vs pod-per-trial (Katib's execution model), 64 worker pods
bound on simulated GPU nodes, database connections per worker (results: docs/benchmarks.md).

  python -m bench.tuning.bench_sweep [--trials 12] [--parallelism 2] [--epochs E] [--runs 2]
                                     [--bind-runs 3] [--out FILE]

One local cluster in a throwaway dir (1 process-kubelet node with `parallelism` simulated GPUs,
plus kwok GPU nodes: 8 x 8 nvidia.com/gpu), the HDFS minicluster and a PostgreSQL server
(`devcluster.postgres.start`), the example trainer published (`tuning.example.publish_example`).

A. The same sweep spec in both modes (random sampler, pruner none so every trial trains all its
   epochs, `gpus: 1` per trial pod, a fresh database per run), launched with
   `tuning.sweeps.launch` exactly as `fleet sweep launch` does; pool and pod-per-trial alternate
   (`--runs` each; the order swaps every run). From the study (Optuna's datetime_start /
   datetime_complete) and the pods' logs (`kubectl logs --timestamps`): trials/minute and the
   per-trial overhead (definitions in bench/tuning/bench_sweep_analysis.py). While each sweep
   runs, `SELECT count(*) FROM pg_stat_activity WHERE datname = <its database> AND
   backend_type = 'client backend'` is sampled every 0.2 s over an admin connection to the
   `postgres` database (so the sampler is not counted).
B. 64 worker pods bound: the Indexed Job `tuning.sweeps.build_job` makes for a pool sweep with
   parallelism 64 and `gpus: 1`, with runtime_class None so its pods go to the kwok GPU nodes
   (kwok runs no processes, so this is the Job, not a sweep): a pod watch opened before the POST
   records when each pod appears and when it has PodScheduled=True; `--bind-runs` times.

Writes the raw results (every trial, every sample) to --out (default
bench/tuning/results-sweep.json), after each step. Everything binds and dials 127.0.0.1; every
wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.tuning import bench_sweep_analysis as an  # noqa: E402
from bench.tuning.bench_train import commit, machine  # noqa: E402

NS = "bench-sweep"
BIND_NS = "bench-bind"
IMAGE = "modelfleet/trainer:0.1.0"  # `fleet sweep launch`'s default --image
GPU_NODES, GPUS_PER_NODE = 8, 8
SWEEP_TIMEOUT_S = 1500
SAMPLE_S = 0.2
MODES = ("pool", "pod-per-trial")


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def spec_doc(name: str, mode: str, code: str, data: str, output: str, *, trials: int,
             parallelism: int, epochs: int) -> dict[str, Any]:
    """Both modes run this; only `mode` differs. learning_rate and dropout do not change a
    trial's cost (a dropout layer is negligible next to the convolutions)."""
    return {
        "name": name, "code": code, "data": data, "output": output, "epochs": epochs,
        "params": {"seed": 7},
        "search_space": {
            "learning_rate": {"type": "float", "low": 0.001, "high": 0.005, "log": True},
            "dropout": {"type": "float", "low": 0.0, "high": 0.3, "step": 0.1},
        },
        "objective": {"metric": "val_accuracy", "direction": "maximize"},
        "budget": {"max_trials": trials},
        "parallelism": parallelism, "gpus": 1, "mode": mode,
        "sampler": {"type": "random", "seed": 3},
        "pruner": {"type": "none"},
    }


class Kubectl:
    def __init__(self, kubectl: str, kubeconfig: str) -> None:
        self.base = [kubectl, "--kubeconfig", kubeconfig]

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        p = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr.strip()[-2000:]}")
        return p.stdout

    def json(self, *args: str) -> dict[str, Any]:
        return json.loads(self.run("get", *args, "-o", "json"))


def wait(pred: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def finished(job: dict[str, Any]) -> str:
    for c in (job.get("status") or {}).get("conditions") or []:
        if c.get("type") in ("Complete", "Failed") and c.get("status") == "True":
            return c["type"]
    return ""


class ConnSampler:
    """Client connections to one database, every SAMPLE_S, over an admin connection."""

    def __init__(self, server: Any, database: str) -> None:
        self.server, self.database = server, database
        self.samples: list[tuple[float, int]] = []
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        conn = self.server.connect("postgres", admin=True, autocommit=True)
        try:
            while not self._stop.is_set():
                try:
                    n = conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                        "AND backend_type = 'client backend'", (self.database,)).fetchone()[0]
                    self.samples.append((time.time(), int(n)))
                except Exception:  # noqa: BLE001 - counted, the run goes on
                    self.errors += 1
                self._stop.wait(SAMPLE_S)
        finally:
            conn.close()

    def __enter__(self) -> ConnSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def window(self, start: float, end: float, workers: int) -> dict[str, Any]:
        vals = [n for t, n in self.samples if start <= t <= end]
        if not vals:
            return {"samples": 0}
        mean = sum(vals) / len(vals)
        return {"samples": len(vals), "max": max(vals), "mean": round(mean, 3),
                "max_per_worker": round(max(vals) / workers, 3),
                "mean_per_worker": round(mean / workers, 3), "workers": workers,
                "zero_fraction": round(sum(1 for v in vals if v == 0) / len(vals), 3)}


# ---- A. one sweep --------------------------------------------------------------------------
def study_trials(url: str, study: str) -> list[dict[str, Any]]:
    import optuna

    s = optuna.load_study(study_name=study, storage=url)
    out = []
    for t in s.get_trials(deepcopy=False):
        out.append({"number": t.number, "state": t.state.name,
                    "start": an.naive_local(t.datetime_start),
                    "end": an.naive_local(t.datetime_complete), "value": t.value,
                    "params": t.params, "pod": t.user_attrs.get("pod", ""),
                    "wall_s": t.user_attrs.get("wall_s"),
                    "model_uri": t.user_attrs.get("model_uri", ""),
                    "fail_reason": t.user_attrs.get("fail_reason", ""),
                    "retry_of": t.system_attrs.get("failed_trial")})
    return out


def pod_facts(kube: Kubectl, name: str) -> list[dict[str, Any]]:
    pods = kube.json("pods", "-n", NS, "-l", f"modelfleet.io/sweep={name}")["items"]
    out = []
    for p in pods:
        md, st = p["metadata"], p.get("status") or {}
        term = ((st.get("containerStatuses") or [{}])[0].get("state") or {}).get("terminated")
        logs = kube.run("logs", "-n", NS, md["name"], "--timestamps", check=False, timeout=60)
        lines = an.parse_log(logs)
        controller = "modelfleet.io/trial" not in md.get("labels", {}) and any(
            "sweep.controller" in text for _t, text in lines)
        out.append({"pod": md["name"], "labels": md.get("labels", {}),
                    "created": an.rfc3339(md["creationTimestamp"]),
                    "started": an.rfc3339(st["startTime"]) if st.get("startTime") else None,
                    "finished": an.rfc3339(term["finishedAt"]) if term and term.get(
                        "finishedAt") else None,
                    "exit_code": term.get("exitCode") if term else None,
                    "node": (p.get("spec") or {}).get("nodeName"),
                    "marks": an.pod_marks(lines), "trial_marks": an.trial_marks(lines),
                    "created_by_controller": an.controller_created(lines),
                    "phase": st.get("phase"), "log_lines": len(lines),
                    # the controller's log whole; a pod that never trained: its tail and status
                    "log": logs if controller else (logs[-4000:] if not lines or not
                                                   an.trial_marks(lines) else None),
                    "status": st if not lines else None})
    return out


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children's) utime+stime of a process, in seconds. The runner reaps each
    pod's shim, which waits for the container's process, which waits for its own children
    (trial processes, spares): the children's time is then every finished pod's CPU."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return ((int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick)


def sessions(server: Any, database: str) -> int:
    """Sessions ever established to `database` (PostgreSQL ≥ 14: pg_stat_database.sessions)."""
    with server.connect("postgres", admin=True, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = %s",
                           (database,)).fetchone()
    return int(row[0]) if row and row[0] is not None else -1


def published(hd: Any, model_uri: str) -> dict[str, float]:
    """When the trial's model version was claimed and completed in HDFS (the NameNode's
    modification times of `.claim` and of `metadata.json`, which the store writes last)."""
    from urllib.parse import urlparse

    if not model_uri:
        return {}
    path = urlparse(model_uri).path
    out = {}
    with contextlib.suppress(Exception):
        c = hd.client()
        out["claimed"] = c.status(f"{path}/.claim")["modificationTime"] / 1000.0
        out["published"] = c.status(f"{path}/metadata.json")["modificationTime"] / 1000.0
    return out


def run_sweep(ctx: dict[str, Any], mode: str, run: int) -> dict[str, Any]:
    from tuning import sweep_spec, sweep_store, sweeps

    args, client, kube, server = ctx["args"], ctx["client"], ctx["kube"], ctx["server"]
    name = f"{'pool' if mode == 'pool' else 'ppt'}-{run}"
    url = server.new_database(f"bench_{name.replace('-', '_')}")
    database = url.rsplit("/", 1)[1]
    import yaml

    doc = spec_doc(name, mode, ctx["code"], ctx["data"], ctx["hdfs"].uri(f"/bench-sweep/{name}"),
                   trials=args.trials, parallelism=args.parallelism, epochs=args.epochs)
    spec, warns = sweep_spec.resolve(yaml.safe_dump(doc, sort_keys=False), source=name)
    load = os.getloadavg()
    cpu0 = proc_cpu(ctx["runner_pid"])
    with ConnSampler(server, database) as sampler:
        t0 = time.time()
        sweeps.launch(client, spec, warns, url, runtime_class="fleet-local",
                      webhdfs_url=ctx["hdfs"].webhdfs_url, image=IMAGE, say=lambda _t: None)
        launched = time.time()
        sessions_at_launch = sessions(server, database)
        say(f"{name}: launched ({mode}, {args.trials} trials, parallelism {args.parallelism},"
            f" {args.epochs} epochs; load {load[0]:.1f})")

        def done() -> str:
            return finished(kube.json("job", name, "-n", NS))

        outcome = wait(done, SWEEP_TIMEOUT_S, f"sweep {name}", interval=0.5)
        ended = time.time()
    time.sleep(1.0)  # a session's count lands when it ends; the pods' last ones just did
    sessions_by_pods = sessions(server, database) - sessions_at_launch
    study = sweep_store.study_name(NS, name)
    trials = study_trials(url, study)
    pods = pod_facts(kube, name)
    marks: dict[int, dict[str, float]] = {}
    created: dict[int, float] = {}
    for p in pods:
        for n, m in p["trial_marks"].items():
            marks.setdefault(n, {}).update(m)
        created.update(p["created_by_controller"])
    for t in trials:
        t.update(marks.get(t["number"], {}))
        if t["number"] in created:
            t["job_created"] = created[t["number"]]
        t.update(published(ctx["hdfs"], t["model_uri"]))
    measured = [t for t in trials if t["start"] is not None and t["end"] is not None]
    an.assign_slots(measured, args.parallelism, launched, by_pod=mode == "pool")
    an.overheads(measured)
    if mode == "pod-per-trial":
        trial_pods = {int(p["labels"]["modelfleet.io/trial"]): p for p in pods
                      if "modelfleet.io/trial" in p["labels"]}
        for t in measured:
            p = trial_pods.get(t["number"])
            if p is None:
                continue
            pm = p["marks"]
            t["pod_created"] = p["created"]
            for key in ("first_line", "installed", "staged"):
                if key in pm:
                    t[f"pod_{key}"] = pm[key]
            t["pod_finished"] = p["finished"]
    steady = [t for t in measured if not t.get("first_on_slot")]
    cols = ("overhead_s", "pre_s", "post_s", "work_s", "train_s", "fit_s", "artifact_s",
            "publish_s")
    thr = an.throughput(trials, launched)
    conn = sampler.window(min((t["start"] for t in measured), default=launched),
                          max((t["end"] for t in measured), default=ended),
                          args.parallelism)
    conn_whole = sampler.window(launched, ended, args.parallelism)
    result = {
        "name": name, "mode": mode, "run": run, "database": database, "outcome": outcome,
        "load_avg_at_start": load, "load_avg_at_end": os.getloadavg(),
        "launch_call_s": round(launched - t0, 3), "launched_at": launched,
        "job_finished_s": round(ended - launched, 3), "throughput": thr,
        "states": {s: sum(1 for t in trials if t["state"] == s)
                   for s in sorted({t["state"] for t in trials})},
        "all": {c: an.summary(t.get(c) for t in measured) for c in cols},
        "steady": {c: an.summary(t.get(c) for t in steady) for c in cols},
        "connections_trials_window": conn, "connections_launch_to_job_end": conn_whole,
        # pg_stat_database.sessions: connections the pods opened (NullPool: one per storage
        # call), launch's own excluded
        "sessions_opened_by_pods": sessions_by_pods,
        "sessions_opened_per_trial": round(sessions_by_pods / max(1, len(trials)), 1),
        "connection_samples": [[round(t, 3), n] for t, n in sampler.samples],
        "sampler_errors": sampler.errors,
        "trials": sorted(trials, key=lambda t: t["number"]), "pods": pods,
    }
    if mode == "pod-per-trial":
        def span(a: str, b: str) -> dict[str, Any]:
            return an.summary(t[b] - t[a] for t in measured if a in t and b in t
                              and t[a] is not None and t[b] is not None)

        result["ppt_breakdown"] = {
            "slot_free_to_job_created_s": span("slot_free", "job_created"),
            "job_created_to_pod_first_line_s": span("job_created", "pod_first_line"),
            "pod_first_line_to_staged_s": span("pod_first_line", "pod_staged"),
            "staged_to_train_start_s": span("pod_staged", "tf"),
            "tell_to_pod_finished_s": span("end", "pod_finished"),
        }
    ov = result["all"]["overhead_s"]
    say(f"{name}: {outcome} in {ended - launched:.1f}s; {thr.get('complete')} complete, "
        f"{thr.get('trials_per_min')} trials/min (first start → last end "
        f"{thr.get('first_start_to_last_end_s')}s); work median "
        f"{result['all']['work_s'].get('median')}s (train {result['all']['train_s'].get('median')}"
        f", publish {result['all']['publish_s'].get('median')}), pre/post steady median "
        f"{result['steady']['pre_s'].get('median')}/{result['steady']['post_s'].get('median')}"
        f", states {result['states']}, overhead p50 {ov.get('median')} p95 "
        f"{ov.get('p95')}s (steady p95 {result['steady']['overhead_s'].get('p95')}); DB conns "
        f"max {conn.get('max')} mean {conn.get('mean')} ({conn.get('mean_per_worker')}/worker)")
    cleanup(client, kube, name)
    time.sleep(1.0)  # the runner reaps the last shims
    cpu1 = proc_cpu(ctx["runner_pid"])
    n = max(1, len(trials))
    result["cpu"] = {"pods_s": round(cpu1[1] - cpu0[1], 1), "runner_s": round(cpu1[0] - cpu0[0], 1),
                     "pods_s_per_trial": round((cpu1[1] - cpu0[1]) / n, 2),
                     "runner_s_per_trial": round((cpu1[0] - cpu0[0]) / n, 2)}
    say(f"{name}: pods used {result['cpu']['pods_s']} CPU-s ({result['cpu']['pods_s_per_trial']}"
        f" per trial), the runner {result['cpu']['runner_s']} CPU-s; "
        f"{result['sessions_opened_per_trial']} DB sessions opened per trial")
    with contextlib.suppress(Exception):
        server.drop_database(database)
    return result


def cleanup(client: Any, kube: Kubectl, name: str) -> None:
    """The sweep's Job (its trial Jobs go with it: ownerReferences) and every pod gone."""
    from fleet.errors import NotFound

    with contextlib.suppress(NotFound):
        client.delete(f"/apis/batch/v1/namespaces/{NS}/jobs/{name}",
                      {"propagationPolicy": "Background"})
    for j in kube.json("jobs", "-n", NS, "-l", f"modelfleet.io/sweep={name}")["items"]:
        with contextlib.suppress(NotFound):
            client.delete(f"/apis/batch/v1/namespaces/{NS}/jobs/{j['metadata']['name']}",
                          {"propagationPolicy": "Background"})
    wait(lambda: not kube.json("pods", "-n", NS, "-l", f"modelfleet.io/sweep={name}")["items"],
         180, f"the pods of {name} gone", interval=1.0)


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode in MODES:
        rs = [r for r in runs if r["mode"] == mode]
        if not rs:
            continue
        allt = [t for r in rs for t in r["trials"] if "overhead_s" in t]
        steady = [t for t in allt if not t.get("first_on_slot")]
        out[mode] = {
            "runs": len(rs),
            "trials_per_min": an.summary(r["throughput"].get("trials_per_min") for r in rs),
            "trials_per_min_from_launch": an.summary(
                r["throughput"].get("trials_per_min_from_launch") for r in rs),
            "first_start_to_last_end_s": an.summary(
                r["throughput"].get("first_start_to_last_end_s") for r in rs),
            "launch_to_last_end_s": an.summary(
                r["throughput"].get("launch_to_last_end_s") for r in rs),
            "overhead_s_all_trials": an.summary(t["overhead_s"] for t in allt),
            "overhead_s_steady": an.summary(t["overhead_s"] for t in steady),
            "overhead_p95_per_run": an.summary(r["all"]["overhead_s"].get("p95") for r in rs),
            "pre_s_steady": an.summary(t["pre_s"] for t in steady),
            "post_s_all": an.summary(t["post_s"] for t in allt),
            "work_s": an.summary(t["work_s"] for t in allt),
            "train_s": an.summary(t.get("train_s") for t in allt),
            "artifact_s": an.summary(t.get("artifact_s") for t in allt),
            "publish_s": an.summary(t.get("publish_s") for t in allt),
            "post_s_steady": an.summary(t["post_s"] for t in steady),
            "conn_max_per_worker": an.summary(
                r["connections_trials_window"].get("max_per_worker") for r in rs),
            "conn_mean_per_worker": an.summary(
                r["connections_trials_window"].get("mean_per_worker") for r in rs),
            "conn_max": an.summary(r["connections_trials_window"].get("max") for r in rs),
            "sessions_opened_per_trial": an.summary(
                r.get("sessions_opened_per_trial") for r in rs),
            "pods_cpu_s_per_trial": an.summary(
                (r.get("cpu") or {}).get("pods_s_per_trial") for r in rs),
            "runner_cpu_s_per_trial": an.summary(
                (r.get("cpu") or {}).get("runner_s_per_trial") for r in rs),
        }
    if "pool" in out and "pod-per-trial" in out:
        a = out["pool"]["trials_per_min"].get("median")
        b = out["pod-per-trial"]["trials_per_min"].get("median")
        c = out["pool"]["trials_per_min_from_launch"].get("median")
        d = out["pod-per-trial"]["trials_per_min_from_launch"].get("median")
        out["pool_over_ppt_trials_per_min"] = round(a / b, 2) if a and b else None
        out["pool_over_ppt_trials_per_min_from_launch"] = round(c / d, 2) if c and d else None
    return out


# ---- B. 64 worker pods bound ----------------------------------------------------------------
def bind_once(ctx: dict[str, Any], pods: int, run: int) -> dict[str, Any]:
    from tuning import sweep_spec, sweeps

    client = ctx["client"]
    name = f"bind-{run}"
    doc = spec_doc(name, "pool", ctx["code"], ctx["data"], ctx["hdfs"].uri("/bench-bind"),
                   trials=pods, parallelism=pods, epochs=1)
    spec = sweep_spec.from_dict(doc)
    job = sweeps.build_job(spec, BIND_NS, runtime_class=None, webhdfs_url=ctx["hdfs"].webhdfs_url,
                           image=IMAGE, study=f"{BIND_NS}.{name}")
    path = f"/api/v1/namespaces/{BIND_NS}/pods"
    selector = f"batch.kubernetes.io/job-name={name}"
    rv = client.get(path, {"labelSelector": selector})["metadata"]["resourceVersion"]
    seen: dict[str, float] = {}
    bound: dict[str, float] = {}
    nodes: dict[str, str] = {}
    all_bound = threading.Event()
    stream = client.watch(path, {"labelSelector": selector, "resourceVersion": rv},
                          read_timeout=180)

    def follow() -> None:
        with contextlib.suppress(Exception):
            for ev in stream:
                now = time.time()
                obj = ev.get("object") or {}
                pname = (obj.get("metadata") or {}).get("name")
                if not pname or ev.get("type") not in ("ADDED", "MODIFIED"):
                    continue
                seen.setdefault(pname, now)
                conds = (obj.get("status") or {}).get("conditions") or []
                if any(c.get("type") == "PodScheduled" and c.get("status") == "True"
                       for c in conds) and pname not in bound:
                    bound[pname] = now
                    nodes[pname] = (obj.get("spec") or {}).get("nodeName", "")
                    if len(bound) >= pods:
                        all_bound.set()
                        return

    th = threading.Thread(target=follow, daemon=True)
    th.start()
    load = os.getloadavg()
    t0 = time.time()
    client.post(f"/apis/batch/v1/namespaces/{BIND_NS}/jobs", job)
    posted = time.time()
    ok = all_bound.wait(120)
    stream.close()
    th.join(5)
    created = sorted(v - t0 for v in seen.values())
    bt = sorted(v - t0 for v in bound.values())
    # the Job controller's slow start: pods appear in waves of 1, 2, 4, 8, ...
    waves: list[list[float]] = []
    for c in created:
        if waves and c - waves[-1][-1] < 0.05:
            waves[-1].append(c)
        else:
            waves.append([c])
    res = {"run": run, "pods": pods, "all_bound": ok, "load_avg_at_start": load,
           "post_s": round(posted - t0, 4),
           "job_post_to_all_bound_s": round(bt[-1], 3) if ok else None,
           "first_pod_seen_s": round(created[0], 3) if created else None,
           "last_pod_seen_s": round(created[-1], 3) if created else None,
           "last_seen_to_last_bound_s": round(bt[-1] - created[-1], 3) if ok else None,
           "bound_s": [round(v, 3) for v in bt], "seen_s": [round(v, 3) for v in created],
           "creation_waves": [len(w) for w in waves],
           "pods_per_node": {n: sum(1 for v in nodes.values() if v == n)
                             for n in sorted(set(nodes.values()))}}
    say(f"bind {run}: {len(bound)}/{pods} bound, Job POST → all PodScheduled "
        f"{res['job_post_to_all_bound_s']}s (pods seen {res['first_pod_seen_s']}–"
        f"{res['last_pod_seen_s']}s, waves {res['creation_waves']}); load {load[0]:.1f}")
    client.delete(f"/apis/batch/v1/namespaces/{BIND_NS}/jobs/{name}",
                  {"propagationPolicy": "Background"})
    wait(lambda: not client.get(path, {"labelSelector": selector})["items"], 120,
         f"the pods of {name} gone", interval=0.5)
    return res


# ---- main ------------------------------------------------------------------------------------
def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--parallelism", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=2,
                    help="per trial; 2 ≈ 5 s of train() for the digits CNN on this machine (the "
                         "first epoch carries the model build and tracing, ~4 s)")
    ap.add_argument("--runs", type=int, default=2, help="sweeps per mode (alternating)")
    ap.add_argument("--bind-runs", type=int, default=3)
    ap.add_argument("--bind-pods", type=int, default=64)
    ap.add_argument("--only", choices=("sweeps", "bind"), default=None)
    ap.add_argument("--modes", default=",".join(MODES),
                    help="comma-separated: pool,pod-per-trial (calibration runs)")
    ap.add_argument("--out", default=str(REPO / "bench/tuning/results-sweep.json"))
    args = ap.parse_args()
    if not (1 <= args.parallelism <= 8 and args.parallelism <= args.trials <= 200
            and 1 <= args.epochs <= 100 and 0 <= args.runs <= 5 and 0 <= args.bind_runs <= 10
            and 1 <= args.bind_pods <= GPU_NODES * GPUS_PER_NODE):
        ap.error("--parallelism 1..8 ≤ --trials ≤ 200, --epochs 1..100, --runs 0..5, "
                 f"--bind-runs 0..10, --bind-pods 1..{GPU_NODES * GPUS_PER_NODE}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from devcluster import hdfs as hdfs_mod
    from devcluster import postgres as pg
    from devcluster.cluster import LocalCluster
    from fleet.kube import KubeClient
    from tuning.example import publish_example
    from tuning.train_ops import ensure_rbac

    base = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    base.chmod(0o711)  # the PostgreSQL user must reach base/postgres (devcluster.postgres)
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": machine(), "commit": commit(),
        "command": " ".join([Path(sys.executable).name, "-m", "bench.tuning.bench_sweep",
                             *sys.argv[1:]]),
        "config": {"trials": args.trials, "parallelism": args.parallelism,
                   "epochs": args.epochs, "runs_per_mode": args.runs,
                   "bind_runs": args.bind_runs, "bind_pods": args.bind_pods,
                   "gpu_nodes": GPU_NODES, "gpus_per_node": GPUS_PER_NODE,
                   "sample_s": SAMPLE_S, "modes": args.modes},
        "definitions": an.__doc__}
    out_path = Path(args.out)

    def save() -> None:
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        results["load_avg_at_end"] = os.getloadavg()
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=1, default=str) + "\n")

    hdfs_mod.fetch()
    (base / "hdfs").mkdir()
    hd, hproc = hdfs_mod.start(base / "hdfs")
    server = pg.start(base / "postgres", watch_pid=os.getpid())
    local = LocalCluster(base / "cluster")
    try:
        t = time.monotonic()
        info = local.up(nodes=1, gpu_nodes=GPU_NODES, gpus_per_node=GPUS_PER_NODE,
                        local_nodes=1, local_gpus=max(2, args.parallelism))
        say(f"cluster up in {time.monotonic() - t:.1f}s; HDFS {hd.url}; PostgreSQL "
            f"127.0.0.1:{server.port}")
        kubeconfig = str(info.kubeconfig)
        kube = Kubectl(str(info.kubectl), kubeconfig)
        for ns in (NS, BIND_NS):
            kube.run("create", "namespace", ns)
            wait(lambda n=ns: kube.run("get", "serviceaccount", "default", "-n", n,
                                       check=False), 60, f"ServiceAccount default in {ns}")
        client = KubeClient.from_kubeconfig(kubeconfig, namespace=NS)
        ensure_rbac(KubeClient.from_kubeconfig(kubeconfig, namespace=BIND_NS), BIND_NS,
                    lambda _t: None)
        code, data = publish_example(hd.uri("/bench-sweep/example"), webhdfs_url=hd.webhdfs_url)
        ctx = {"args": args, "client": client, "kube": kube, "server": server, "hdfs": hd,
               "code": code, "data": data, "runner_pid": local.pids()["runner"]}
        results["runs"] = []
        if args.only in (None, "sweeps"):
            modes = [m for m in MODES if m in args.modes.split(",")]
            for i in range(args.runs):
                for mode in modes[:: 1 if i % 2 == 0 else -1]:
                    results["runs"].append(run_sweep(ctx, mode, i))
                    results["summary"] = aggregate(results["runs"])
                    save()
        results["bind"] = []
        if args.only in (None, "bind"):
            for i in range(args.bind_runs):
                results["bind"].append(bind_once(ctx, args.bind_pods, i))
                save()
            ok = [b["job_post_to_all_bound_s"] for b in results["bind"] if b["all_bound"]]
            results["bind_summary"] = {
                "job_post_to_all_bound_s": an.summary(ok),
                "last_pod_seen_s": an.summary(b["last_pod_seen_s"] for b in results["bind"]),
                "last_seen_to_last_bound_s": an.summary(
                    b["last_seen_to_last_bound_s"] for b in results["bind"])}
        save()
    except BaseException as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        save()
        raise
    finally:
        local.down()
        hdfs_mod.stop(hproc)
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
    say(f"wrote {out_path}: {json.dumps(results.get('summary', {}), default=str)[:3000]}")
    say(f"bind: {json.dumps(results.get('bind_summary', {}))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
