"""Serving benchmark: our server (latency/throughput, SavedModel/LiteRT) vs BentoML and KServe.

Everything binds 127.0.0.1. With 2+ cores the servers run on core 1 (`taskset -c 1`) and
this load generator on core 0. Every server starts first and stays up; the repetitions
then interleave the scenarios so that drift from other load on the machine spreads over
all of them. Bounded: reps x scenarios x concurrencies x (warmup + duration) seconds.

    .venv/bin/python bench/serving/run.py [--model DIR] [--reps 3] [--duration 6]
        [--concurrency 1,64] [--no-bento] [--no-kserve] [--out results.json]

The model is the demo artifact written by `fleet model demo --output DIR`. The peers run in
their own venvs, created on first use: BentoML 1.4.40 in $BENTO_VENV and KServe 0.21.0 in
$KSERVE_VENV (defaults under ~/.cache/modelfleet/bench/). After start-up every server's
listening sockets are checked: anything not on loopback stops the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

from listeners import listening, not_loopback  # noqa: E402
from loadgen import build_request, load  # noqa: E402

HOST = "127.0.0.1"
CACHE = Path.home() / ".cache" / "modelfleet" / "bench"
BENTO_VENV = Path(os.environ.get("BENTO_VENV", CACHE / "bentoml-venv"))
BENTO_PINS = ["bentoml==1.4.40", "tensorflow-cpu==2.21.0"]
KSERVE_VENV = Path(os.environ.get("KSERVE_VENV", CACHE / "kserve-venv"))
# The runtimes at the project's pins (constraints.txt); protobuf resolves to 6.x (kserve <7).
KSERVE_PINS = ["kserve==0.21.0", "tensorflow-cpu==2.21.0", "ai-edge-litert==2.3.0",
               "numpy==2.4.6"]
IMAGE = [[[round((i * 8 + j) / 64, 4)] for j in range(8)] for i in range(8)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def pin_prefix(core: int | None) -> list[str]:
    return ["taskset", "-c", str(core)] if core is not None else []


@dataclass
class Scenario:
    name: str
    cmd: list[str]
    env: dict[str, str]
    path: str
    body: bytes
    ready_path: str
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    ready_s: float = 0.0
    listen: list[str] = field(default_factory=list)
    runs: dict[int, list[dict[str, Any]]] = field(default_factory=dict)

    def start(self, log_dir: Path) -> None:
        cmd = [c.replace("{PORT}", str(self.port)) for c in self.cmd]
        log = (log_dir / f"{self.name}.log").open("wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, env={**os.environ, **self.env}, stdout=log,
                                     stderr=subprocess.STDOUT, cwd=self.env.get("CWD", REPO),
                                     start_new_session=True)

    def wait(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"http://{HOST}:{self.port}{self.ready_path}",
                                            timeout=1) as r:
                    if r.status == 200:
                        self.ready_s = round(time.monotonic() - self.t0, 2)
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s")

    def check_loopback(self) -> None:
        """Record the server's TCP listeners; refuse to go on if one is not on loopback."""
        assert self.proc is not None
        self.listen = listening(self.proc.pid)
        bad = not_loopback(self.listen)
        if bad:
            raise RuntimeError(f"{self.name} listens on {bad}, not only on loopback")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def metrics(self) -> str:
        try:
            with urllib.request.urlopen(f"http://{HOST}:{self.port}/metrics", timeout=5) as r:
                return r.read().decode()
        except OSError:
            return ""


def batch_stats(text: str) -> tuple[float, float]:
    def grab(name: str) -> float:
        m = re.search(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M)
        return float(m.group(1)) if m else 0.0

    return grab("batch_size_sum"), grab("batch_size_count")


def ensure_bento_venv() -> Path | None:
    py = BENTO_VENV / "bin" / "python"
    if not (BENTO_VENV / "bin" / "bentoml").exists():
        print(f"creating {BENTO_VENV} ({', '.join(BENTO_PINS)})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(BENTO_VENV)], check=True)
        res = subprocess.run([str(py), "-m", "pip", "install", "-q", *BENTO_PINS])
        if res.returncode != 0:
            return None
    return BENTO_VENV / "bin" / "bentoml"


def ensure_kserve_venv() -> Path | None:
    """KServe's venv with KSERVE_PINS (pip runs only when a pinned version is missing)."""
    py = KSERVE_VENV / "bin" / "python"
    if not py.exists():
        print(f"creating {KSERVE_VENV} ({', '.join(KSERVE_PINS)})", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(KSERVE_VENV)], check=True)
    probe = ("import sys; from importlib.metadata import version as v; "
             f"sys.exit(any(v(n) != w for n, w in {[p.split('==') for p in KSERVE_PINS]!r}))")
    missing = subprocess.run([str(py), "-c", probe], capture_output=True).returncode != 0
    if missing and subprocess.run([str(py), "-m", "pip", "install", "-q", *KSERVE_PINS]).returncode:
        return None
    return py


def ours(name: str, model: Path, core: int | None, **opts: str) -> Scenario:
    args = ["--model-name", "digits", "--model-uri", str(model), "--host", HOST,
            "--port", "{PORT}", "--intra-op-threads", "1"]
    for key, value in opts.items():
        args += [f"--{key.replace('_', '-')}", value]
    body = json.dumps({"instances": [IMAGE]}).encode()
    return Scenario(name, [*pin_prefix(core), sys.executable, "-m", "serving", *args],
                    {"TF_CPP_MIN_LOG_LEVEL": "2", "LOG_LEVEL": "WARNING"},
                    "/v1/models/digits:predict", body, "/v2/health/ready")


def bento(name: str, bentoml: Path, version_dir: Path, core: int | None,
          batchable: bool) -> Scenario:
    cmd = [*pin_prefix(core), str(bentoml), "serve", "bento_service:Digits", "--host", HOST,
           "--port", "{PORT}"]
    env = {"BENCH_MODEL_DIR": str(version_dir), "BENCH_BENTO_BATCHABLE": str(int(batchable)),
           "TF_CPP_MIN_LOG_LEVEL": "2", "CWD": str(HERE), "BENTOML_DO_NOT_TRACK": "True"}
    body = json.dumps({"image": [IMAGE]}).encode()
    return Scenario(name, cmd, env, "/predict", body, "/readyz")


def kserve(name: str, py: Path, version_dir: Path, core: int | None, runtime: str) -> Scenario:
    cmd = [*pin_prefix(core), str(py), "kserve_model.py", "--port", "{PORT}", "--model-dir",
           str(version_dir), "--runtime", runtime]
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "KSERVE_LOGLEVEL": "WARNING", "CWD": str(HERE)}
    body = json.dumps({"instances": [IMAGE]}).encode()
    return Scenario(name, cmd, env, "/v1/models/digits:predict", body, "/v1/models/digits")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, help="store base written by `fleet model demo`")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--concurrency", default="1,64")
    ap.add_argument("--overload-concurrency", type=int, default=256)
    ap.add_argument("--no-bento", action="store_true")
    ap.add_argument("--no-kserve", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated scenario names")
    ap.add_argument("--out", type=Path, default=CACHE / "results-serving.json")
    args = ap.parse_args()
    concs = [int(c) for c in args.concurrency.split(",")]
    cores = len(os.sched_getaffinity(0))
    server_core, client_core = (1, 0) if cores >= 2 else (None, None)
    log_dir = CACHE / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)

    model = args.model
    if model is None:
        model = CACHE / "model"
        if not (model / "1" / "metadata.json").exists():
            subprocess.run([sys.executable, "-m", "fleet.cli", "model", "demo", "--output",
                            str(model)], cwd=REPO, check=True)
    version_dir = model / "1"

    noop = CACHE / "noop"
    if not (noop / "1" / "metadata.json").exists():
        subprocess.run([sys.executable, str(HERE / "noop_model.py"), str(noop)], check=True,
                       env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})

    print("measuring in-process model time", flush=True)
    mt = subprocess.run([*pin_prefix(server_core), sys.executable, str(HERE / "model_time.py"),
                         str(version_dir)], capture_output=True, text=True, check=True,
                        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    model_time = json.loads(mt.stdout.strip().splitlines()[-1])

    scenarios = [
        ours("ours-noop-http", noop, server_core, mode="latency", runtime="tflite-fp32",
             max_batch_size="64"),
        ours("ours-latency-savedmodel", model, server_core, mode="latency",
             runtime="savedmodel", max_batch_size="64"),
        ours("ours-throughput-savedmodel", model, server_core, mode="throughput",
             runtime="savedmodel", max_batch_size="64", max_queue="4096"),
        ours("ours-latency-auto", model, server_core, mode="latency", runtime="auto",
             max_batch_size="64"),
        ours("ours-throughput-auto", model, server_core, mode="throughput", runtime="auto",
             max_batch_size="64", max_queue="4096"),
        ours("ours-overload-savedmodel", model, server_core, mode="throughput",
             runtime="savedmodel", max_batch_size="64", max_queue="64"),
    ]
    bento_note = "not run (--no-bento)"
    if not args.no_bento:
        bentoml = ensure_bento_venv()
        if bentoml is None:
            bento_note = f"not run: installing {BENTO_PINS} into {BENTO_VENV} failed"
        else:
            bento_note = "bentoml " + subprocess.run(
                [str(BENTO_VENV / "bin" / "python"), "-c",
                 "import bentoml; print(bentoml.__version__)"],
                capture_output=True, text=True).stdout.strip()
            scenarios += [bento("bento-batching", bentoml, version_dir, server_core, True),
                          bento("bento-unbatched", bentoml, version_dir, server_core, False)]
    kserve_note = "not run (--no-kserve)"
    if not args.no_kserve:
        kpy = ensure_kserve_venv()
        if kpy is None:
            kserve_note = f"not run: installing {KSERVE_PINS} into {KSERVE_VENV} failed"
        else:
            kserve_note = "kserve 0.21.0 ModelServer (bench/serving/kserve_model.py)"
            scenarios += [kserve("kserve-savedmodel", kpy, version_dir, server_core,
                                 "savedmodel"),
                          kserve("kserve-litert", kpy, version_dir, server_core, "tflite-fp32")]
    if args.only:
        keep = set(args.only.split(","))
        scenarios = [s for s in scenarios if s.name in keep]

    if client_core is not None:
        os.sched_setaffinity(0, {client_core})
    try:
        for sc in scenarios:  # one at a time so start-up times are not contended
            sc.start(log_dir)
            sc.wait()
            sc.check_loopback()
            print(f"{sc.name}: ready in {sc.ready_s}s on {sc.listen}", flush=True)
        for rep in range(args.reps):
            for sc in scenarios:
                for c in ([args.overload_concurrency] if "overload" in sc.name else concs):
                    before = batch_stats(sc.metrics())
                    res = load(HOST, sc.port, build_request(sc.path, sc.body), c,
                               args.warmup, args.duration).summary()
                    after = batch_stats(sc.metrics())
                    calls = after[1] - before[1]
                    res["mean_batch"] = round((after[0] - before[0]) / calls, 2) if calls else None
                    sc.runs.setdefault(c, []).append(res)
                    print(f"rep {rep} {sc.name} c={c}: {res['rps']} rps p50 {res['p50_ms']} "
                          f"p99 {res['p99_ms']} codes {res['codes']} batch {res['mean_batch']}",
                          flush=True)
    finally:
        for sc in scenarios:
            sc.stop()

    def med(runs: list[dict[str, Any]], key: str) -> dict[str, float]:
        vals = [r[key] for r in runs if r.get(key) is not None]
        return {"median": round(statistics.median(vals), 3), "min": min(vals),
                "max": max(vals)} if vals else {}

    report = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"nproc": os.cpu_count(), "affinity_cores": cores,
                    "cpu": _cpu_model(), "python": platform.python_version(),
                    "server_core": server_core, "client_core": client_core},
        "settings": {"reps": args.reps, "warmup_s": args.warmup, "duration_s": args.duration,
                     "concurrency": concs, "payload": "one 8x8x1 float image per request"},
        "peer": f"{bento_note}; {kserve_note}",
        "model_time": model_time,
        "scenarios": {
            sc.name: {"ready_s": sc.ready_s, "listen": sc.listen, "by_concurrency": {
                str(c): {k: med(runs, k) for k in ("rps", "p50_ms", "p99_ms", "mean_batch",
                                                   "error_p50_ms")}
                | {"errors": sum(sum(v for k, v in r["codes"].items() if k != "200")
                                 for r in runs)}
                for c, runs in sc.runs.items()}, "raw": sc.runs}
            for sc in scenarios},
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.out}")
    return 0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
