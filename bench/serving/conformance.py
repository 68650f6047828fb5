"""Conformance run: our server checked by tritonclient[http] (V2) and KServe's REST client.

    .venv/bin/python bench/serving/conformance.py [--model DIR] [--venv DIR]

(defaults under ~/.cache/modelfleet/bench/)

Creates the client venv if missing (pinned versions below), starts `python -m serving` on
a free 127.0.0.1 port in latency and throughput modes, runs conformance_client.py against
each, and prints a pass count per client. Exit status 1 if any check failed.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
PINS = ["tritonclient[http]==2.73.0", "kserve==0.21.0"]

CACHE = Path.home() / ".cache" / "modelfleet" / "bench"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ensure_venv(venv: Path) -> Path:
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    probe = subprocess.run([str(py), "-c", "import tritonclient.http, kserve"],
                           capture_output=True)
    if probe.returncode != 0:
        subprocess.run([str(py), "-m", "pip", "install", "-q", *PINS], check=True)
    return py


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=CACHE / "model")
    ap.add_argument("--venv", type=Path, default=CACHE / "conformance-venv")
    args = ap.parse_args()
    if not (args.model / "1" / "metadata.json").exists():
        subprocess.run([sys.executable, "-m", "fleet.cli", "model", "demo", "--output",
                        str(args.model)], cwd=REPO, check=True)
    py = ensure_venv(args.venv)
    failed = 0
    for mode in ("latency", "throughput"):
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--model-name", "digits", "--model-uri",
             str(args.model), "--port", str(port), "--mode", mode],
            cwd=REPO, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "LOG_LEVEL": "WARNING"},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                try:
                    with urllib.request.urlopen(f"{url}/v2/health/ready", timeout=1):
                        break
                except OSError:
                    time.sleep(0.3)
            res = subprocess.run([str(py), str(HERE / "conformance_client.py"), url, "digits"],
                                 capture_output=True, text=True, timeout=300,
                                 env={**os.environ, "NO_PROXY": "127.0.0.1,localhost"})
            if res.returncode != 0:
                print(res.stderr[-3000:])
                return 1
            checks = json.loads(res.stdout.strip().splitlines()[-1])["checks"]
        finally:
            proc.terminate()
            proc.wait(30)
        by_client: dict[str, list[int]] = {}
        for c in checks:
            ok, total = by_client.setdefault(c["client"], [0, 0])
            by_client[c["client"]] = [ok + c["ok"], total + 1]
            if not c["ok"]:
                failed += 1
                print(f"  FAIL [{mode}] {c['client']}: {c['check']}: {c['detail']}")
        summary = ", ".join(f"{k} {v[0]}/{v[1]}" for k, v in by_client.items())
        print(f"{mode}: {summary}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
