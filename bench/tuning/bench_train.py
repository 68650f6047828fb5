"""Training in pods (issue 12): pod start → first epoch, data staging vs `hdfs dfs -get`,
1 vs 2 workers, guarded promotion (results: docs/benchmarks.md).

  python -m bench.tuning.bench_train [--runs 3] [--large-mb 50] [--out FILE]

Starts its own local cluster (1 process-kubelet node) and HDFS minicluster in a throwaway dir,
publishes the example trainer (`tuning.example.publish_example`: wheel + digits dataset
version 1, 0.5 MB) and a synthetic `digits-large` dataset version (`--large-mb`, default
50 MB: the digits training split resampled with Gaussian noise, npz written with
`tuning.dataset.write_npz`, the real digits holdout), then, `--runs` times each:

A. digits (the shipped dataset), in one loop (the order of the three steps reverses on odd
   runs):
   - `fleet train d1-i --workers 1 --epochs 5 --wait` (batch 64): pod start (first seen by a
     0.1 s poll; creationTimestamp too) → the first `epoch 1/` log line, broken down by the
     trainer's own log lines (their asctime; `kubectl logs --timestamps` only gives the time
     zone, as the runner copies output every 0.2-1 s): start-up, code install (fetch +
     install), data staging (its own seconds and MB/s), TF import + child start, first epoch;
   - the peer for staging: `hdfs dfs -get` of the same dataset directory, i.e.
     `java -cp <conf>:<the minicluster's Maven classpath> org.apache.hadoop.fs.FsShell -fs
     hdfs://127.0.0.1:<rpc> -get /path DIR` (what the `hdfs` launcher runs), timed around the
     JVM, then two baselines in fresh JVMs: `-test -d /path` and `-get` of the 1 kB
     dataset.json; net = get - the 1 kB get (None when the copy is lost in the JVM's jitter);
     next to the peer, a fresh interpreter's `import tensorflow` outside any pod, for scale;
   - `fleet train d2-i --workers 2 --param batch_size=32` (global batch 64, same epochs).
B. digits-large, the same three (W=1 batch 256; W=2 batch 128 → global 256; 3 epochs); the
   W=1 pod's staging is the large-file side of the staging comparison.
C. promotion: a weak model (1 epoch, lr 1e-4) serves in a 1-replica Deployment (LiteRT fp32,
   runner pod); `tuning.promote.promote(...)` of the strong model of run A0, its `say`
   callback timestamped: decision (candidate + live scored on the holdout) and rollout
   (patch → `rollout status` complete: the new pod Ready, the old one scaled down)
   separately. The Deployment is rolled back to the weak model (and its old pod awaited
   gone) before each run. TensorFlow is imported before the first promotion (its import
   time is reported separately: a `fleet promote` process pays it).

A `fleet train` whose CLI itself broke (credentials refused, a traceback: the shared working
tree caught mid-edit) is retried up to twice and recorded under `cli_retries`; a failed
training is never retried.

Writes the raw results (every run, every log timestamp) to --out (default
bench/tuning/results-train.json). Everything is on 127.0.0.1 (pods on 127.1.128.x); every
command and wait is bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import statistics
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

import numpy as np  # noqa: E402

NS = "bench-train"
DEPLOYMENT = "digits-live"
SMALL_EPOCHS = 5
SMALL_GLOBAL_BATCH = 64  # the example trainer's default batch_size
LARGE_EPOCHS = 3
LARGE_GLOBAL_BATCH = 256
TRAIN_TIMEOUT_S = 600
JOB_NAME_LABEL = "batch.kubernetes.io/job-name"
INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
CLI_BROKE = ("Forbidden", "Unauthorized", "Traceback", "Unable to connect")
RETRIES: list[dict[str, Any]] = []

# The trainer's log lines (tuning/trainer_entrypoint.py, tuning/train_run.py).
LINES = {
    "first": re.compile(r"trainer \S+: worker \d+ of \d+"),
    "installed": re.compile(r"installed (?P<code>.+?) from \S+: (?P<kb>[\d.]+) kB fetched in "
                            r"(?P<fetch>[\d.]+) s, installed in (?P<install>[\d.]+) s"),
    "staged": re.compile(r"staged dataset (?P<name>\S+) version (?P<version>\S+) from \S+: "
                         r"(?P<mb>[\d.]+) MB in (?P<s>[\d.]+) s \((?P<mbps>[\d.]+) MB/s\)"),
    "peers": re.compile(r"all \d+ workers resolve \((?P<s>[\d.]+) s\)"),
    "tf": re.compile(r"TensorFlow \S+ on "),
    "done": re.compile(r"training done: num_replicas_in_sync=(?P<replicas>\d+)"),
}
EPOCH = re.compile(r"trainer INFO epoch (?P<i>\d+)/(?P<n>\d+) ")
ASCTIME = re.compile(r"^(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (?P<text>.*)$")
CRI_TS = re.compile(r"^(?P<ts>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) (?P<text>.*)$")


# ---- small helpers -----------------------------------------------------------------------
def summary(values: list[float]) -> dict[str, Any]:
    vals = [v for v in values if v is not None]
    if not vals:
        return {"n": 0}
    return {"median": round(statistics.median(vals), 3), "min": round(min(vals), 3),
            "max": round(max(vals), 3), "n": len(vals), "raw": [round(v, 4) for v in vals]}


def ts(text: str) -> float:
    """RFC 3339 (Z, up to nanoseconds) → epoch seconds."""
    text = text.replace("Z", "+00:00")
    m = re.match(r"^(.*T\d\d:\d\d:\d\d)(\.\d+)?(\+00:00)$", text)
    if m and m[2]:
        text = f"{m[1]}{m[2][:7]}{m[3]}"  # fromisoformat takes at most 6 fraction digits
    return dt.datetime.fromisoformat(text).timestamp()


def machine() -> dict[str, Any]:
    cpu = ""
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    mem_kb = 0
    with contextlib.suppress(OSError, StopIteration, ValueError):
        mem_kb = int(next(line.split()[1] for line in Path("/proc/meminfo").read_text()
                          .splitlines() if line.startswith("MemTotal:")))
    return {"nproc": len(os.sched_getaffinity(0)), "cpu": cpu,
            "mem_gib": round(mem_kb / 2**20, 1), "load_avg_at_start": os.getloadavg()}


def commit() -> str:
    p = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                       text=True, check=False)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                           capture_output=True, text=True, check=False).stdout.strip()
    return p.stdout.strip() + (" (working tree has uncommitted changes)" if dirty else "")


def fleet(env: dict[str, str], *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fleet.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=timeout)


class Kube:
    def __init__(self, kubectl: str, kubeconfig: str) -> None:
        self.base = [kubectl, "--kubeconfig", kubeconfig, "-n", NS]

    def run(self, *args: str, check: bool = True, timeout: float = 120) -> str:
        p = subprocess.run([*self.base, *args], capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {p.stderr.strip()}")
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


def dir_bytes(path: Path) -> tuple[int, list[str]]:
    files = sorted(f for f in path.rglob("*") if f.is_file())
    return sum(f.stat().st_size for f in files), [str(f.relative_to(path)) for f in files]


# ---- datasets ----------------------------------------------------------------------------
def build_large_dataset(dest: Path, target_mb: float) -> Path:
    """`digits-large` version 1 under dest/1: ~target_mb of train.npz (digits' training split
    resampled with N(0, 0.05) noise, clipped to 0..1) and the real digits holdout."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    from tuning.contract import DATASET_FILE, HOLDOUT_FILE, TRAIN_FILE
    from tuning.dataset import DIGITS_HOLDOUT_FRACTION, DIGITS_SEED, write_npz

    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    y = digits.target.astype(np.int64)
    x_tr, x_ho, y_tr, y_ho = train_test_split(
        x, y, test_size=DIGITS_HOLDOUT_FRACTION, random_state=DIGITS_SEED, stratify=y)
    n = int(target_mb * 1e6 // (x_tr[0].nbytes + 8))
    rng = np.random.default_rng(12)
    idx = rng.integers(0, len(y_tr), n)
    noise = rng.normal(0.0, 0.05, (n, *x_tr.shape[1:])).astype(np.float32)
    xs = np.clip(x_tr[idx] + noise, 0.0, 1.0).astype(np.float32)
    version = dest / "1"
    version.mkdir(parents=True)
    write_npz(version / TRAIN_FILE, x=xs, y=y_tr[idx])
    write_npz(version / HOLDOUT_FILE, x=x_ho, y=y_ho)
    sums = {f: hashlib.sha256((version / f).read_bytes()).hexdigest()
            for f in (TRAIN_FILE, HOLDOUT_FILE)}
    info = {"name": "digits-large", "version": 1,
            "created": dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat(),
            "n_train": n, "n_holdout": len(y_ho),
            "source": "bench/tuning/bench_train.py: sklearn digits training split resampled "
                      "with N(0, 0.05) pixel noise (seed 12), clipped to 0..1; real holdout",
            "split": "holdout = digits' stratified 20%, random_state=7", "num_classes": 10,
            "sha256": sums}
    (version / DATASET_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return version


# ---- the peer: hdfs dfs -get ---------------------------------------------------------------
class FsShell:
    """`hdfs dfs` without the launcher script: java -cp <conf dir>:<classpath> FsShell."""

    def __init__(self, classpath_file: Path, conf: Path, url: str) -> None:
        conf.mkdir(parents=True, exist_ok=True)
        # The shaded client jars carry no core-site.xml; a Hadoop install has one in its conf dir.
        (conf / "core-site.xml").write_text(
            '<?xml version="1.0"?>\n<configuration>\n  <property><name>fs.defaultFS</name>'
            f"<value>{url}</value></property>\n</configuration>\n")
        (conf / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stderr\n"
            "log4j.appender.stderr=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stderr.Target=System.err\n"
            "log4j.appender.stderr.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stderr.layout.ConversionPattern=%d %p %c: %m%n\n"
            "log4j.logger.org.apache.hadoop.util.NativeCodeLoader=ERROR\n")
        self.cmd = ["java", "-Djava.net.preferIPv4Stack=true",
                    f"-Dlog4j.configuration=file:{conf}/log4j.properties",
                    "-cp", f"{conf}:{classpath_file.read_text().strip()}",
                    "org.apache.hadoop.fs.FsShell", "-fs", url]

    def _run(self, *args: str) -> float:
        t0 = time.perf_counter()
        p = subprocess.run([*self.cmd, *args], capture_output=True, text=True, timeout=300)
        wall = time.perf_counter() - t0
        if p.returncode != 0:
            raise RuntimeError(f"FsShell {' '.join(args)} exited {p.returncode}: "
                               f"{p.stderr.strip()[-1500:]}")
        return wall

    def get(self, hdfs_path: str, scratch: Path) -> dict[str, Any]:
        """-get of a dataset directory into a fresh local dir, then two baselines in fresh JVMs:
        `-test -d` (JVM start + one NameNode RPC) and `-get` of its 1 kB dataset.json (that +
        the DataNode read path + one block)."""
        dest = scratch / "fsshell-get"
        shutil.rmtree(dest, ignore_errors=True)
        scratch.mkdir(parents=True, exist_ok=True)
        get_s = self._run("-get", hdfs_path, str(dest))
        size, files = dir_bytes(dest)
        shutil.rmtree(dest, ignore_errors=True)
        test_s = self._run("-test", "-d", hdfs_path)
        tiny_s = self._run("-get", f"{hdfs_path}/dataset.json", str(scratch / "dataset.json"))
        (scratch / "dataset.json").unlink(missing_ok=True)
        # None where the copy is lost in the JVM start-up's run-to-run jitter (small files)
        net = get_s - tiny_s if get_s > tiny_s else None
        return {"get_wall_s": round(get_s, 4), "jvm_test_s": round(test_s, 4),
                "jvm_tiny_get_s": round(tiny_s, 4), "net_s": net and round(net, 4),
                "bytes": size, "files": files, "mb_per_s_wall": round(size / 1e6 / get_s, 2),
                "mb_per_s_net": net and round(size / 1e6 / net, 2)}


# ---- training jobs -------------------------------------------------------------------------
class PodWatch:
    """Polls the Job's pods every 0.1 s: when each was first seen (sub-second pod creation)."""

    def __init__(self, kubeconfig: str, job: str) -> None:
        from fleet.kube import KubeClient

        self.client = KubeClient.from_kubeconfig(kubeconfig, namespace=NS)
        self.job = job
        self.seen: dict[str, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                items = self.client.get(f"/api/v1/namespaces/{NS}/pods",
                                        {"labelSelector": f"{JOB_NAME_LABEL}={self.job}"})
                now = time.time()
                for p in items.get("items", []):
                    self.seen.setdefault(p["metadata"]["name"], now)
            self._stop.wait(0.1)

    def __enter__(self) -> PodWatch:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


def parse_log(text: str) -> dict[str, Any]:
    """Epoch-second times of the trainer's known lines.

    Each line's own `asctime` (written by the trainer process, 1 ms resolution) is the time;
    the runner's CRI record time is 0-0.2 s later (1 s for a container quiet for 5 s: it
    copies output on a poll), so it only fixes the time zone and bounds the lag (`cri_lag_*`).
    """
    rows = []
    for raw in text.splitlines():
        m = CRI_TS.match(raw)
        a = ASCTIME.match(m["text"]) if m else None
        if not a:
            continue
        local = dt.datetime.strptime(a["at"], "%Y-%m-%d %H:%M:%S,%f")
        naive = local.replace(tzinfo=dt.UTC).timestamp()
        rows.append((naive, ts(m["ts"]), a["text"]))
    if not rows:
        raise RuntimeError(f"no trainer log lines in: {text[-2000:]}")
    # the pod's UTC offset: CRI time - asctime read as UTC, rounded to a quarter hour
    offset = round(statistics.median(c - n for n, c, _ in rows) / 900) * 900
    lags = [c - (n + offset) for n, c, _ in rows]
    out: dict[str, Any] = {"epochs": {}, "lines": len(rows), "utc_offset_s": offset,
                           "cri_lag_max_s": round(max(lags), 3),
                           "cri_lag_min_s": round(min(lags), 3)}
    for naive, _cri, line in rows:
        t = naive + offset
        out.setdefault("first_record", t)
        out["last_record"] = t
        e = EPOCH.match(line)
        if e:
            out["epochs"].setdefault(int(e["i"]), t)
            continue
        for key, rx in LINES.items():
            hit = rx.search(line)
            if hit and key not in out:
                out[key] = t
                out[f"{key}_fields"] = hit.groupdict()
    return out


def job_metrics(pod: dict[str, Any], log: dict[str, Any], seen: float | None) -> dict[str, Any]:
    """The chief pod's phases, from its log timestamps and the API's pod timestamps."""
    md, st = pod["metadata"], pod.get("status") or {}
    cs = (st.get("containerStatuses") or [{}])[0]
    term = (cs.get("state") or {}).get("terminated") or {}
    created = ts(md["creationTimestamp"])
    started = ts(term["startedAt"]) if term.get("startedAt") else None
    ep = log["epochs"]
    e1 = ep.get(1)
    start = seen if seen is not None else created
    inst = log.get("installed_fields") or {}
    stg = log.get("staged_fields") or {}
    before_tf = log.get("peers", log.get("staged"))
    r: dict[str, Any] = {
        "pod": md["name"], "pod_seen": seen, "pod_created_api": created,
        "container_started_api": started, "log": {k: v for k, v in log.items()
                                                  if not k.endswith("_fields")},
        "log_fields": {k: v for k, v in log.items() if k.endswith("_fields")},
        "pod_to_first_epoch_s": e1 - start if e1 else None,
        "api_created_to_first_epoch_s": e1 - created if e1 else None,
        "startup_s": log["first"] - start,  # scheduling, runner sandbox, Python + imports
        "install_span_s": log["installed"] - log["first"],
        "code_fetch_s": float(inst["fetch"]), "code_install_s": float(inst["install"]),
        "code_kb": float(inst["kb"]),
        "staging_span_s": log["staged"] - log["installed"],  # resolve version + copy
        "staging_s": float(stg["s"]), "staging_mb": float(stg["mb"]),
        "staging_mb_per_s": float(stg["mbps"]),
        "peer_wait_span_s": (log["peers"] - log["staged"]) if "peers" in log else None,
        "tf_import_span_s": log["tf"] - before_tf,  # child process start, imports, TensorFlow
        "first_epoch_span_s": e1 - log["tf"] if e1 else None,  # data load, model, trace, epoch 1
        "epoch_s": [ep[i] - ep[i - 1] for i in sorted(ep) if i - 1 in ep],
        "fit_s": log["done"] - log["tf"] if "done" in log else None,
        "after_fit_s": log["last_record"] - log["done"] if "done" in log else None,
        "pod_to_last_record_s": log["last_record"] - start,
    }
    r["steady_epoch_s"] = statistics.median(r["epoch_s"]) if r["epoch_s"] else None
    return r


def train_job(env: dict[str, str], kube: Kube, kubeconfig: str, name: str, *, code: str,
              data: str, output: str, workers: int, epochs: int, params: dict[str, Any],
              keep: bool = False) -> dict[str, Any]:
    args = ["train", name, "-n", NS, "--code", code, "--data", data, "--output", output,
            "--workers", str(workers), "--epochs", str(epochs), "--runtime-class", "fleet-local",
            "--collective-timeout", "120", "--wait", "--timeout", f"{TRAIN_TIMEOUT_S}s", "--json"]
    for k, v in params.items():
        args += ["--param", f"{k}={v}"]
    for attempt in range(1, 4):
        load = os.getloadavg()[0]
        with PodWatch(kubeconfig, name) as watch:
            t0 = time.time()
            r = fleet(env, *args, timeout=TRAIN_TIMEOUT_S + 60)
            wall = time.time() - t0
        if r.returncode == 0:
            break
        # The CLI itself broke (the shared working tree mid-edit: import errors, requests sent
        # without credentials): record it, clean up, run again. A failed training is not retried.
        if attempt == 3 or not any(t in r.stderr for t in CLI_BROKE):
            raise RuntimeError(f"fleet train {name} exited {r.returncode}: {r.stderr[-3000:]}")
        RETRIES.append({"job": name, "attempt": attempt, "at": t0, "stderr": r.stderr[-1500:]})
        print(f"fleet train {name} broke (attempt {attempt}), retrying: {r.stderr[-300:]}",
              flush=True)
        kube.run("delete", "job", name, "--ignore-not-found", "--wait=false", check=False)
        wait(lambda: not kube.json("pods", "-l", f"{JOB_NAME_LABEL}={name}")["items"], 180,
             f"the pods of {name} gone", 1)
        time.sleep(15)
    out = json.loads(r.stdout)
    pods = kube.json("pods", "-l", f"{JOB_NAME_LABEL}={name}")["items"]
    per_pod = []
    for p in sorted(pods, key=lambda p: int(p["metadata"]["labels"].get(INDEX_LABEL, "0"))):
        text = kube.run("logs", "--timestamps", p["metadata"]["name"])
        log = parse_log(text)
        per_pod.append(job_metrics(p, log, watch.seen.get(p["metadata"]["name"])))
    chief = per_pod[0]
    res = {"job": name, "workers": workers, "epochs": epochs, "params": params,
           "load_avg_1m_at_start": load, "cmd_start": t0, "wall_s": wall,
           "cmd_to_pod_seen_s": (min(watch.seen.values()) - t0) if watch.seen else None,
           "model_uri": out.get("model_uri"), "state": out.get("state"),
           "holdout": (out.get("progress") or {}).get("value"), "pods": per_pod,
           "chief": chief}
    if not keep:
        kube.run("delete", "job", name, "--wait=false", check=False)
    return res


def tf_import_reference() -> float:
    """A fresh interpreter importing TensorFlow, outside any pod (the trainer child's biggest
    start-up cost, measured in the same loop for scale)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tensorflow"], check=True, timeout=300,
                   capture_output=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    return time.perf_counter() - t0


# ---- promotion -----------------------------------------------------------------------------
def promote_once(client: Any, candidate: str, webhdfs_url: str) -> dict[str, Any]:
    from tuning import promote

    marks: list[tuple[float, str]] = []
    t0 = time.time()
    p = promote.promote(client, NS, DEPLOYMENT, candidate, min_delta=0.0,
                        source="bench/tuning/bench_train.py", timeout=240,
                        webhdfs_url=webhdfs_url, say=lambda t: marks.append((time.time(), t)))
    end = time.time()

    def at(prefix: str) -> float | None:
        return next((t for t, text in marks if text.startswith(prefix)), None)

    cand, live, roll = at("candidate "), at("live "), at("rolling out ")
    return {"result": p.result, "detail": p.detail, "candidate_score": p.candidate_score,
            "live_score": p.live_score, "marks": [[round(t - t0, 4), m] for t, m in marks],
            "candidate_eval_s": cand - t0 if cand else None,
            "live_eval_s": live - cand if live and cand else None,
            "decision_s": live - t0 if live else None,
            "patch_s": roll - live if roll and live else None,
            "rollout_to_ready_s": end - roll if roll else None, "total_s": end - t0,
            "start": t0}


def serving_pods(kube: Kube) -> list[dict[str, Any]]:
    return kube.json("pods", "-l", f"app.kubernetes.io/name={DEPLOYMENT}")["items"]


def reset_to(client: Any, kube: Kube, base: str) -> None:
    """Roll the Deployment back to the weak model, wait for it and for the old pod to be gone."""
    from fleet.ops.rollout import rollout
    from fleet.ops.status import rollout_status

    rollout(client, NS, DEPLOYMENT, model_uri=base, model_version="1",
            reason="bench: back to the weak model")
    rollout_status(client, NS, DEPLOYMENT, watch=True, timeout=240)
    wait(lambda: len(serving_pods(kube)) == 1, 180, "only the new serving pod left", 1)


def new_pod_timing(kube: Kube, after: float) -> dict[str, Any] | None:
    for p in serving_pods(kube):
        created = ts(p["metadata"]["creationTimestamp"])
        if created + 1 < after or p["metadata"].get("deletionTimestamp"):
            continue
        ready = next((c for c in p["status"].get("conditions") or []
                      if c["type"] == "Ready" and c["status"] == "True"), None)
        if ready:
            return {"pod": p["metadata"]["name"],
                    "created_to_ready_api_s": ts(ready["lastTransitionTime"]) - created}
    return None


# ---- the benchmark -------------------------------------------------------------------------
def staging_side(run: dict[str, Any]) -> dict[str, float]:
    c = run["chief"]
    return {"s": c["staging_s"], "mb_per_s": c["staging_mb_per_s"],
            "span_s": c["staging_span_s"]}


def summarize_training(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def col(key: str) -> list[float]:
        return [r["chief"][key] for r in runs]

    return {
        "wall_s": summary([r["wall_s"] for r in runs]),
        "cmd_to_pod_seen_s": summary([r["cmd_to_pod_seen_s"] for r in runs]),
        **{k: summary(col(k)) for k in (
            "pod_to_first_epoch_s", "api_created_to_first_epoch_s", "startup_s",
            "install_span_s", "code_fetch_s", "code_install_s", "staging_span_s", "staging_s",
            "staging_mb_per_s", "peer_wait_span_s", "tf_import_span_s", "first_epoch_span_s",
            "steady_epoch_s", "fit_s", "after_fit_s", "pod_to_last_record_s")},
        "holdout": summary([r["holdout"] for r in runs if r["holdout"] is not None]),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--large-mb", type=float, default=50.0)
    ap.add_argument("--out", default=str(REPO / "bench/tuning/results-train.json"))
    args = ap.parse_args()
    if not (1 <= args.runs <= 10 and 1 <= args.large_mb <= 500):
        ap.error("--runs 1..10, --large-mb 1..500")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from devcluster import hdfs as hdfs_mod
    from devcluster.cluster import LocalCluster
    from tuning.example import publish_example
    from tuning.remote import Remote

    base = Path(tempfile.mkdtemp(prefix="bench-train-"))
    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "machine": machine(), "command": " ".join([Path(sys.executable).name, "-m",
                                                   "bench.tuning.bench_train", *sys.argv[1:]]),
        "commit": commit(),
        "config": {"runs": args.runs, "small_epochs": SMALL_EPOCHS,
                   "small_global_batch": SMALL_GLOBAL_BATCH, "large_epochs": LARGE_EPOCHS,
                   "large_global_batch": LARGE_GLOBAL_BATCH, "large_mb": args.large_mb}}
    out_path = Path(args.out)

    def save() -> None:
        results["cli_retries"] = RETRIES
        results["finished"] = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
        results["load_avg_at_end"] = os.getloadavg()
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(results, indent=2) + "\n")

    def say(text: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)

    classpath = hdfs_mod.fetch()
    (base / "hdfs").mkdir()
    hd, hproc = hdfs_mod.start(base / "hdfs")
    local = LocalCluster(base / "cluster")
    try:
        info = local.up(nodes=1, gpu_nodes=0, local_nodes=1)
        kubeconfig = str(info.kubeconfig)
        env = {**os.environ, "KUBECONFIG": kubeconfig, "FLEET_WEBHDFS_URL": hd.webhdfs_url,
               "FLEET_RUNTIME_CLASS": "fleet-local", "TF_CPP_MIN_LOG_LEVEL": "2",
               "NO_PROXY": "*", "no_proxy": "*"}
        kube = Kube(str(info.kubectl), kubeconfig)
        subprocess.run([str(info.kubectl), "--kubeconfig", kubeconfig, "create", "namespace",
                        NS], check=True, capture_output=True, timeout=60)
        say(f"cluster and HDFS up ({hd.url}); publishing the example and digits-large")
        code, small = publish_example(hd.uri("/bench-train/example"),
                                      webhdfs_url=hd.webhdfs_url)
        large_local = build_large_dataset(base / "large", args.large_mb)
        Remote.open(hd.uri("/bench-train/large"), hd.webhdfs_url).upload(large_local, "1")
        large = hd.uri("/bench-train/large")
        small_path, large_path = "/bench-train/example/data/1", "/bench-train/large/1"
        shell = FsShell(classpath, base / "hadoop-conf", hd.url)
        scratch = base / "scratch"
        models = hd.uri("/bench-train/models")
        results["datasets"] = {}
        for key, path in (("digits", small_path), ("digits_large", large_path)):
            st = [hd.client().status(f"{path}/{f}") for f in hd.client().list(path)]
            results["datasets"][key] = {"hdfs_path": path,
                                        "bytes": sum(s["length"] for s in st),
                                        "files": sorted(hd.client().list(path))}
        say(f"datasets: {json.dumps(results['datasets'])}")

        def job(name: str, data: str, out: str, workers: int, epochs: int,
                params: dict[str, Any]) -> dict[str, Any]:
            r = train_job(env, kube, kubeconfig, name, code=code, data=data,
                          output=f"{models}/{out}", workers=workers, epochs=epochs,
                          params=params)
            c = r["chief"]
            say(f"{name}: wall {r['wall_s']:.1f}s, pod→epoch 1 {c['pod_to_first_epoch_s']:.2f}s"
                f" (start-up {c['startup_s']:.2f}, install {c['install_span_s']:.2f}, staging "
                f"{c['staging_span_s']:.2f} @ {c['staging_mb_per_s']} MB/s, TF "
                f"{c['tf_import_span_s']:.2f}, epoch 1 {c['first_epoch_span_s']:.2f}), steady "
                f"epoch {c['steady_epoch_s']}, fit {c['fit_s']:.2f}s, holdout {r['holdout']}")
            return r

        def peer(path: str, i: int) -> dict[str, Any]:
            load = os.getloadavg()[0]
            g = shell.get(path, scratch)
            g.update(run=i, load_avg_1m_at_start=load)
            say(f"hdfs dfs -get {path}: {g['get_wall_s']:.2f}s wall ({g['mb_per_s_wall']} MB/s),"
                f" baselines: -test {g['jvm_test_s']:.2f}s, 1 kB -get "
                f"{g['jvm_tiny_get_s']:.2f}s; net {g['mb_per_s_net'] or '-'} MB/s")
            return g

        tf_refs: list[float] = []
        for workload, data, path, epochs, gbatch in (
                ("digits", small, small_path, SMALL_EPOCHS, SMALL_GLOBAL_BATCH),
                ("digits_large", large, large_path, LARGE_EPOCHS, LARGE_GLOBAL_BATCH)):
            tag = "d" if workload == "digits" else "l"
            w1: list[dict[str, Any]] = []
            w2: list[dict[str, Any]] = []
            shell_runs: list[dict[str, Any]] = []
            for i in range(args.runs):
                for step in ("w1", "peer", "w2")[::1 if i % 2 == 0 else -1]:
                    if step == "peer":
                        shell_runs.append(peer(path, i))
                        if workload == "digits":
                            tf_refs.append(tf_import_reference())
                    else:
                        w = int(step[1])
                        (w1 if w == 1 else w2).append(
                            job(f"{tag}{w}-{i}", data, f"{workload}-w{w}", w, epochs,
                                {"batch_size": gbatch // w}))
            results[workload] = {
                "epochs": epochs, "global_batch": gbatch,
                "w1": {"summary": summarize_training(w1), "runs": w1},
                "w2": {"summary": summarize_training(w2), "runs": w2},
                "staging": {
                    "pod_w1": {k: summary([staging_side(r)[k] for r in w1])
                               for k in ("s", "mb_per_s", "span_s")},
                    "pod_w2_chief": {k: summary([staging_side(r)[k] for r in w2])
                                     for k in ("s", "mb_per_s", "span_s")},
                    "hdfs_dfs_get": {k: summary([g[k] for g in shell_runs])
                                     for k in ("get_wall_s", "jvm_test_s", "jvm_tiny_get_s",
                                               "net_s", "mb_per_s_wall", "mb_per_s_net")},
                    "hdfs_dfs_get_runs": shell_runs},
            }
            save()
        results["reference_tf_import_fresh_process_s"] = summary(tf_refs)
        save()

        # C. promotion
        say("promotion: training the weak model and deploying it")
        weak = train_job(env, kube, kubeconfig, "weak", code=code, data=small,
                         output=f"{models}/weak", workers=1, epochs=1,
                         params={"learning_rate": 0.0001, "batch_size": 256})
        weak_base = f"{models}/weak"
        strong = results["digits"]["w1"]["runs"][0]["model_uri"]
        from fleet.kube import KubeClient
        from fleet.ops import deploy as deploy_ops

        client = KubeClient.from_kubeconfig(kubeconfig, namespace=NS)
        spec = deploy_ops.DeploySpec(
            name=DEPLOYMENT, namespace=NS, model_uri=weak_base, version="1", replicas=1,
            runtime="tflite-fp32", runtime_class="fleet-local", cpu="250m", memory="1Gi",
            route=False, env=(("WEBHDFS_URL", hd.webhdfs_url), ("MODEL_VERSION", "1"),
                              ("SERVING_WORKERS", "1"), ("TF_CPP_MIN_LOG_LEVEL", "2")))
        dep, _ = deploy_ops.deploy(client, spec, timeout=300)
        if not dep.available:
            raise RuntimeError(f"deploy {DEPLOYMENT}: {dep.failure}")
        t = time.perf_counter()
        import tensorflow  # noqa: F401 - promote scores with serving's SavedModel runtime

        tf_import_s = time.perf_counter() - t
        promos = []
        for i in range(args.runs):
            if i:
                reset_to(client, kube, weak_base)
            load = os.getloadavg()[0]
            p = promote_once(client, strong, hd.webhdfs_url)
            p["load_avg_1m_at_start"] = load
            p["new_pod"] = new_pod_timing(kube, p["start"])
            p["run"] = i
            promos.append(p)
            say(f"promote {i}: {p['result']} decision {p['decision_s']:.2f}s (candidate "
                f"{p['candidate_eval_s']:.2f}, live {p['live_eval_s']:.2f}), rollout→Ready "
                f"{p['rollout_to_ready_s']:.2f}s; {p['detail']}")
            if p["result"] != "promoted":
                raise RuntimeError(f"expected a promotion, got {p['result']}: {p['detail']}")
        results["promotion"] = {
            "deployment": "1 replica, LiteRT fp32, runner pod, 250m/1Gi",
            "weak_model": weak["model_uri"], "weak_holdout": weak["holdout"],
            "candidate": strong, "bench_process_tf_import_s": tf_import_s,
            "summary": {k: summary([p[k] for p in promos]) for k in (
                "candidate_eval_s", "live_eval_s", "decision_s", "patch_s",
                "rollout_to_ready_s", "total_s")},
            "new_pod_created_to_ready_api_s": summary(
                [p["new_pod"]["created_to_ready_api_s"] for p in promos if p["new_pod"]]),
            "runs": promos}
        save()
    except BaseException as exc:
        results["error"] = f"{type(exc).__name__}: {exc}"
        save()
        raise
    finally:
        local.down()
        hdfs_mod.stop(hproc)
        shutil.rmtree(base, ignore_errors=True)
    save()
    say(f"wrote {out_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
