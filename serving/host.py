"""The served model's lifecycle: fetch, load, warm up, report state, and run requests.

`load()` blocks (run it off the event loop); `activate()` then attaches the micro-batcher
to the loop. Until both finish, or after a failed load, the model is not ready and
`infer` answers 503; the failure reason is kept for the status endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from serving import runtime as rt
from serving import warmup as warmup_mod
from serving.batching import Batcher, BatchStats, QueueFull
from serving.config import ServingConfig
from serving.metrics import Metrics
from serving.protocols.common import ClientError
from serving.store import Store

log = logging.getLogger(__name__)

INLINE_MAX_MS = 1.0  # latency mode runs faster models on the event loop itself


class ModelHost:
    def __init__(self, cfg: ServingConfig, metrics: Metrics) -> None:
        self.cfg = cfg
        self.metrics = metrics
        self.state = "START"  # START, LOADING, AVAILABLE, END (failed)
        self.error = ""
        self.draining = False
        self.version: int | None = None
        self.runtime: rt.Runtime | None = None
        self.selection: rt.Selection | None = None
        self.meta: dict[str, Any] = {}
        self.labels: list[str] = []
        self.label_output = ""
        self.warm_ms: dict[int, float] = {}
        self.warmup_source = ""  # "tf_serving_warmup_requests" or "synthetic"
        self.warmup_records = 0
        self.inline = False
        self.batcher: Batcher | None = None
        self.executor = ThreadPoolExecutor(cfg.inference_threads, thread_name_prefix="infer")

    @property
    def ready(self) -> bool:
        return self.state == "AVAILABLE" and not self.draining

    def not_ready_message(self) -> str:
        reason = f" Load failed: {self.error}" if self.error else ""
        return f"Model with name {self.cfg.model_name} is not ready.{reason}"

    # -- startup ---------------------------------------------------------------
    def load(self) -> None:
        """Fetch, load and warm the model; on failure keep state END with the reason."""
        self.state = "LOADING"
        try:
            self._load()
        except Exception as exc:  # any failure keeps the process alive but not ready
            self.state = "END"
            self.error = f"{type(exc).__name__}: {exc}"
            log.error("model %s failed to load: %s", self.cfg.model_name, self.error)

    def _load(self) -> None:
        cfg = self.cfg
        started = time.perf_counter()
        store = Store(cfg.model_uri, webhdfs_url=cfg.webhdfs_url, cache_dir=cfg.cache_dir)
        version, path, meta = store.fetch(cfg.version)
        threads = cfg.tf_intra_op_threads
        primary = 1 if cfg.mode == "latency" else cfg.max_batch_size
        runtime, selection = rt.load(path, meta, choice=cfg.runtime, primary_batch=primary,
                                     max_batch=cfg.max_batch_size, num_threads=threads,
                                     pool_size=cfg.inference_threads)
        loaded = time.perf_counter()
        self.metrics.load_seconds.set(loaded - started)
        self.warm_ms = self._warm(runtime, path)
        self.metrics.warmup_seconds.set(time.perf_counter() - loaded)
        self.meta = meta
        self.labels = list(meta.get("labels") or [])
        self.label_output = meta.get("label_output", "")
        self.runtime, self.selection, self.version = runtime, selection, version
        self.inline = cfg.mode == "latency" and self.warm_ms.get(1, 1e9) < INLINE_MAX_MS
        log.info("model %s version %d: runtime %s (%s); warm ms %s; %.2fs", cfg.model_name,
                 version, selection.runtime, selection.reason, self.warm_ms,
                 time.perf_counter() - started)

    def _warm(self, runtime: rt.Runtime, version_dir: Path) -> dict[int, float]:
        """Replay TF Serving's warm-up file when the version has one, else run every served
        batch size (and every signature) with synthetic inputs, so nothing is cold later."""
        if isinstance(runtime, rt.TFLiteRuntime):
            runtime.prepare()
        if warmup_mod.warmup_path(version_dir).is_file():
            return self._replay(runtime, warmup_mod.warmup_path(version_dir))
        self.warmup_source, self.warmup_records = "synthetic", 0
        timings = {}
        for name, sig in runtime.signatures.items():
            for b in rt.batch_sizes_upto(self.cfg.max_batch_size):
                times = rt.time_model(lambda x, n=name: runtime.predict(x, n),
                                      rt.synthetic_inputs(sig, b), iters=3, warm=2)
                if name == runtime.default_signature:
                    timings[b] = round(1e3 * statistics.median(times), 4)
        return timings

    def _replay(self, runtime: rt.Runtime, path: Path) -> dict[int, float]:
        """Run each PredictionLog once, as TF Serving does; any failure fails the load."""
        requests = warmup_mod.read_warmup_file(path)
        times: dict[int, list[float]] = {}
        for i, req in enumerate(requests):
            name = req.signature or runtime.default_signature
            sig = runtime.signatures.get(name)
            if sig is None:
                raise warmup_mod.WarmupError(
                    f"{path}: record {i}: signature {name!r} not found (have "
                    f"{sorted(runtime.signatures)})")
            if set(req.inputs) != set(sig.inputs):
                raise warmup_mod.WarmupError(
                    f"{path}: record {i}: inputs {sorted(req.inputs)} do not match the "
                    f"signature's {sorted(sig.inputs)}")
            inputs = {}
            for key, arr in req.inputs.items():
                want = sig.inputs[key].np_dtype
                if arr.dtype != want:
                    raise warmup_mod.WarmupError(
                        f"{path}: record {i}: input {key!r} is {arr.dtype}, the signature "
                        f"wants {sig.inputs[key].dtype}")
                inputs[key] = arr
            t0 = time.perf_counter()
            try:
                runtime.predict(inputs, name)
            except Exception as exc:
                raise warmup_mod.WarmupError(
                    f"{path}: record {i} failed: {type(exc).__name__}: {exc}") from exc
            if name == runtime.default_signature:
                times.setdefault(req.batch, []).append(time.perf_counter() - t0)
        self.warmup_source, self.warmup_records = warmup_mod.WARMUP_FILE, len(requests)
        log.info("warm-up: replayed %d records of %s", len(requests), path)
        return {b: round(1e3 * statistics.median(t), 4) for b, t in sorted(times.items())}

    def activate(self) -> None:
        """Attach the batcher (throughput mode) on the running loop; report ready."""
        if self.state == "END" or self.runtime is None:
            return
        runtime = self.runtime
        if self.cfg.mode == "throughput":
            m = self.metrics
            self.batcher = Batcher(
                lambda x: runtime.predict(x, runtime.default_signature), self.executor,
                max_batch=self.cfg.max_batch_size, max_wait_s=self.cfg.max_batch_wait_ms / 1e3,
                max_queue=self.cfg.max_queue, threads=self.cfg.inference_threads,
                stats=BatchStats(m.batch_size.observe, m.queue_delay.observe, m.queue_depth.set),
            )
        self.state = "AVAILABLE"
        self.metrics.ready.set(0 if self.draining else 1)

    def begin_drain(self) -> None:
        self.draining = True
        self.metrics.ready.set(0)

    async def drain(self, timeout: float) -> None:
        if self.batcher is not None:
            await self.batcher.drain(timeout)

    def close(self) -> None:
        self.executor.shutdown(wait=True)

    # -- requests --------------------------------------------------------------
    def shed(self) -> None:
        """Refuse at once (503) while the batch queue is full, before parsing the body."""
        b = self.batcher
        if b is not None and b.queued_rows >= b.max_queue:
            raise ClientError(503, f"overloaded: batch queue full ({b.queued_rows} of "
                                   f"{b.max_queue} rows)")

    async def infer(self, inputs: dict[str, np.ndarray], rows: int,
                    signature: str) -> dict[str, np.ndarray]:
        """Run one validated request (503 when not loaded, queue full; 504 past the deadline)."""
        runtime = self.runtime
        if self.state != "AVAILABLE" or runtime is None:
            raise ClientError(503, self.not_ready_message())
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            fut.cancel()

        try:
            if self.batcher is not None and signature == runtime.default_signature:
                fut = self.batcher.submit(inputs, rows)
            elif self.inline:
                return runtime.predict(inputs, signature)
            else:
                fut = loop.run_in_executor(self.executor, runtime.predict, inputs, signature)
            timer = loop.call_later(self.cfg.request_timeout_s, expire)
            try:
                return await fut
            finally:
                timer.cancel()
        except QueueFull as exc:
            raise ClientError(503, f"overloaded: {exc}") from None
        except asyncio.CancelledError:
            if expired:
                raise ClientError(504, f"deadline of {self.cfg.request_timeout_s}s exceeded"
                                  ) from None
            raise
        finally:
            self.metrics.predict.observe(time.perf_counter() - started)

    def status(self) -> dict[str, Any]:
        sel = self.selection
        return {
            "state": self.state,
            "draining": self.draining,
            "version": self.version,
            "error": self.error,
            "runtime": sel.runtime if sel else None,
            "runtime_reason": sel.reason if sel else None,
            "runtime_timings_ms": sel.timings_ms if sel else {},
            "warmup_ms": self.warm_ms,
            "warmup_source": self.warmup_source,
            "warmup_records": self.warmup_records,
            "mode": self.cfg.mode,
            "inline": self.inline,
        }
