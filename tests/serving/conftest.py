"""Serving fixtures: the demo model made by `fleet model demo`, and real server processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
START_TIMEOUT_S = 180.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def quiet_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "NO_PROXY": "127.0.0.1,localhost",
           "no_proxy": "127.0.0.1,localhost", "PYTHONUNBUFFERED": "1"}
    env.update(extra or {})
    return env


def make_demo(output: str, extra_env: dict[str, str] | None = None,
              *args: str) -> subprocess.CompletedProcess[str]:
    """Run the real `fleet model demo` command."""
    return subprocess.run(
        [sys.executable, "-m", "fleet.cli", "model", "demo", "--output", output, *args],
        cwd=REPO, env=quiet_env(extra_env), capture_output=True, text=True, timeout=600,
    )


@dataclass
class Server:
    """A `python -m serving` subprocess on a free loopback port."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    log_path: Path | None = None
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> Server:
        assert self.log_path is not None
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "serving", "--host", HOST, "--port", str(self.port),
             *self.args],
            cwd=REPO, env=quiet_env(self.env), stdout=log, stderr=subprocess.STDOUT,
        )
        return self

    def wait(self, path: str = "/v2/health/ready", timeout: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + path, timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path else ""

    def stop(self, timeout: float = 30) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


@pytest.fixture(scope="session")
def demo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo artifact store, written by `fleet model demo --output DIR`."""
    out = tmp_path_factory.mktemp("store") / "digits"
    res = make_demo(str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.strip().endswith(f"{out}/1")
    return out


@pytest.fixture(scope="session")
def holdout() -> tuple[np.ndarray, np.ndarray]:
    from serving.demo_model import load_digits_split

    _x, _y, x_ho, y_ho = load_digits_split()
    return x_ho, y_ho


def _server(tmp_path_factory: pytest.TempPathFactory, name: str, args: list[str],
            env: dict[str, str] | None = None) -> Server:
    log = tmp_path_factory.mktemp("logs") / f"{name}.log"
    return Server(args, env or {}, log).start()


@pytest.fixture(scope="session")
def latency_server(demo_model: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[Server]:
    """Latency mode, runtime chosen by the selection rules, response cache on."""
    srv = _server(tmp_path_factory, "latency", [
        "--model-name", "digits", "--model-uri", str(demo_model), "--mode", "latency",
        "--request-max-bytes", "200000", "--max-batch-size", "16", "--cache-size", "64"])
    srv.wait()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def throughput_server(demo_model: Path, tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[Server]:
    """Throughput mode on the SavedModel backend, configured through env vars."""
    srv = _server(tmp_path_factory, "throughput", [], {
        "MODEL_NAME": "digits", "MODEL_URI": str(demo_model), "SERVING_MODE": "throughput",
        "SERVING_RUNTIME": "savedmodel", "MAX_BATCH_SIZE": "32", "MAX_QUEUE": "64",
        "INFERENCE_THREADS": "1", "TOP_K": "0"})
    srv.wait()
    yield srv
    srv.stop()


@pytest.fixture(params=["latency", "throughput"])
def server(request: pytest.FixtureRequest) -> Server:
    return request.getfixturevalue(f"{request.param}_server")


def image_rows(x: np.ndarray) -> list:
    return x.tolist()
