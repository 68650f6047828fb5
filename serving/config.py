"""Server configuration from environment variables, overridable by matching flags.

Every option has an environment variable (the container's interface) and a flag
(`python -m serving --port 9000`). Flags win over the environment.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

MODES = ("latency", "throughput")
RUNTIMES = ("auto", "savedmodel", "tflite-fp32", "tflite-int8")


def cpu_limit() -> int:
    """CPUs this process may use: the cgroup v2 quota if set, else the affinity mask."""
    cpus = len(os.sched_getaffinity(0))
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


@dataclass(frozen=True, slots=True)
class ServingConfig:
    """Everything the server needs; see `build_parser` for the meaning of each field."""

    model_name: str = "model"
    model_uri: str = ""
    mode: str = "latency"
    host: str = "127.0.0.1"
    port: int = 8080
    runtime: str = "auto"
    max_batch_size: int = 32
    max_batch_wait_ms: float = 2.0
    max_queue: int = 256
    workers: int = 1
    inference_threads: int = 1
    intra_op_threads: int = 0
    request_max_bytes: int = 4_000_000
    request_timeout_s: float = 10.0
    drain_grace_s: float = 0.0
    shutdown_timeout_s: float = 15.0
    cache_size: int = 0
    top_k: int = 0
    allow_nonfinite: bool = False
    webhdfs_url: str = ""
    cache_dir: str = ""
    version: int = 0

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"SERVING_MODE must be one of {MODES}, got {self.mode!r}")
        if self.runtime not in RUNTIMES:
            raise ValueError(f"SERVING_RUNTIME must be one of {RUNTIMES}, got {self.runtime!r}")
        if self.max_batch_size < 1 or self.max_queue < 1 or self.workers < 1:
            raise ValueError("max_batch_size, max_queue and workers must be >= 1")
        if self.inference_threads < 1:
            raise ValueError("inference_threads must be >= 1")

    @property
    def tf_intra_op_threads(self) -> int:
        """TensorFlow intra-op threads: the flag if set, else the CPU share of one worker."""
        if self.intra_op_threads > 0:
            return self.intra_op_threads
        return max(1, cpu_limit() // self.workers)


# field -> (environment variable, help)
_ENV: dict[str, tuple[str, str]] = {
    "model_name": ("MODEL_NAME", "name served under /v1/models/<name> and /v2/models/<name>"),
    "model_uri": ("MODEL_URI", "model base: hdfs://namenode:port/path, webhdfs://host:port/path "
                  "or a local directory holding numeric version directories"),
    "mode": ("SERVING_MODE", "latency: run each request at once; throughput: micro-batch"),
    "host": ("HOST", "address to bind"),
    "port": ("PORT", "TCP port"),
    "runtime": ("SERVING_RUNTIME",
                "auto picks the fastest fp32 runtime, and int8 when it qualifies"),
    "max_batch_size": ("MAX_BATCH_SIZE",
                       "largest batch given to the model (also the per-request cap)"),
    "max_batch_wait_ms": ("MAX_BATCH_WAIT_MS", "longest a partial batch waits while other batches "
                          "run; an idle model never waits"),
    "max_queue": ("MAX_QUEUE", "queued rows before new requests get 503"),
    "workers": ("SERVING_WORKERS", "server worker processes"),
    "inference_threads": ("INFERENCE_THREADS", "concurrent model calls per worker"),
    "intra_op_threads": ("INTRA_OP_THREADS",
                         "TensorFlow/LiteRT threads per call (0: CPU limit / workers)"),
    "request_max_bytes": ("REQUEST_MAX_BYTES", "larger bodies get 413"),
    "request_timeout_s": ("REQUEST_TIMEOUT_S", "per-request deadline; past it the answer is 504"),
    "drain_grace_s": ("DRAIN_GRACE_S", "after SIGTERM keep accepting (not ready) this long"),
    "shutdown_timeout_s": ("SHUTDOWN_TIMEOUT_S", "longest wait for in-flight requests at exit"),
    "cache_size": ("RESPONSE_CACHE_SIZE", "latency mode: LRU entries of responses (0: off)"),
    "top_k": ("TOP_K", "default top-k labels with scores (0: raw outputs)"),
    "allow_nonfinite": ("ALLOW_NONFINITE", "accept NaN/Infinity inputs"),
    "webhdfs_url": ("WEBHDFS_URL", "WebHDFS base (http://host:port) for hdfs:// URIs"),
    "cache_dir": ("MODEL_CACHE_DIR", "where remote artifacts are downloaded"),
    "version": ("MODEL_VERSION", "serve this version (0: the largest)"),
}


def _parse_bool(text: str) -> bool:
    return text.strip().lower() in ("1", "true", "yes", "on")


def add_arguments(parser: argparse.ArgumentParser, env: Mapping[str, str] | None = None) -> None:
    """Add one flag per field; defaults come from `env` (os.environ by default)."""
    env = os.environ if env is None else env
    defaults = ServingConfig()
    for f in fields(ServingConfig):
        var, help_text = _ENV[f.name]
        default = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            value = _parse_bool(env[var]) if var in env else default
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=value,
                                help=f"{help_text} [${var}]")
            continue
        kind = type(default)
        try:
            value = kind(env[var]) if var in env else default
        except ValueError:
            parser.error(f"${var}={env[var]!r} is not a valid {kind.__name__}")
        choices = {"mode": MODES, "runtime": RUNTIMES}.get(f.name)
        if choices and value not in choices:
            parser.error(f"${var}={value!r} is not one of {', '.join(choices)}")
        parser.add_argument(flag, type=kind, default=value, choices=choices,
                            help=f"{help_text} [${var}]")


def build_parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serving", description=__doc__)
    add_arguments(parser, env)
    return parser


def from_namespace(ns: argparse.Namespace) -> ServingConfig:
    return ServingConfig(**{f.name: getattr(ns, f.name) for f in fields(ServingConfig)})


def load(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> ServingConfig:
    """Parse flags over environment defaults (exit 2 with a message on bad values)."""
    parser = build_parser(env)
    ns = parser.parse_args(argv)
    try:
        return from_namespace(ns)
    except ValueError as exc:
        parser.error(str(exc))
        raise  # unreachable: parser.error exits
