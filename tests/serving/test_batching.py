"""The micro-batcher with a controllable fake model, and batching on the real server."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from serving.batching import Batcher, BatchStats, QueueFull
from tests.serving.conftest import Server


class FakeModel:
    """Doubles its input; records batch sizes; can block and fail on a marker value."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.gate = threading.Event()
        self.gate.set()

    def __call__(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.gate.wait(5)
        x = inputs["x"]
        self.batches.append(len(x))
        if (x == -1).any():
            raise ValueError("poison row")
        time.sleep(self.delay)
        return {"y": x * 2}


def row(v: float, n: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.full((n, 2), v, np.float32)}


def make(model: FakeModel, **kw: object) -> tuple[Batcher, ThreadPoolExecutor]:
    threads = int(kw.pop("threads", 1))  # type: ignore[arg-type]
    pool = ThreadPoolExecutor(threads)
    opts = {"max_batch": 8, "max_wait_s": 0.002, "max_queue": 32, "threads": threads, **kw}
    return Batcher(model, pool, **opts), pool  # type: ignore[arg-type]


def test_idle_model_dispatches_at_once() -> None:
    async def go() -> float:
        model = FakeModel()
        batcher, pool = make(model, max_wait_s=1.0)
        t0 = time.perf_counter()
        out = await batcher.submit(row(3), 1)
        pool.shutdown()
        assert out["y"].tolist() == [[6, 6]]
        return time.perf_counter() - t0

    assert asyncio.run(go()) < 0.5  # never waits max_wait_s=1.0 when idle


def test_batches_grow_under_load_and_results_map_back() -> None:
    async def go() -> tuple[list[int], list[list[list[float]]]]:
        model = FakeModel(delay=0.02)
        depths: list[int] = []
        batcher, pool = make(model, stats=BatchStats(on_depth=depths.append))
        outs = await asyncio.gather(*(batcher.submit(row(i, 1 + i % 2), 1 + i % 2)
                                      for i in range(20)))
        pool.shutdown()
        assert max(depths) > 1
        return model.batches, [o["y"].tolist() for o in outs]

    batches, outs = asyncio.run(go())
    assert sum(batches) == sum(1 + i % 2 for i in range(20))
    assert batches[0] == 1 and max(batches) <= 8 and max(batches) >= 6
    for i, out in enumerate(outs):
        assert out == [[2.0 * i, 2.0 * i]] * (1 + i % 2)


def test_full_queue_rejects_immediately() -> None:
    async def go() -> None:
        model = FakeModel()
        model.gate.clear()  # the model blocks: the queue fills
        batcher, pool = make(model, max_queue=4)
        running = [asyncio.ensure_future(batcher.submit(row(1), 1)) for _ in range(5)]
        await asyncio.sleep(0.05)  # first one runs, four wait in the queue
        t0 = time.perf_counter()
        with pytest.raises(QueueFull):
            await batcher.submit(row(1), 1)
        assert time.perf_counter() - t0 < 0.01
        model.gate.set()
        await asyncio.gather(*running)
        assert await batcher.drain(1.0)
        pool.shutdown()

    asyncio.run(go())


def test_failing_request_is_isolated_from_batch_mates() -> None:
    async def go() -> list[object]:
        model = FakeModel(delay=0.01)
        batcher, pool = make(model)
        results = await asyncio.gather(
            *(batcher.submit(row(-1 if i == 5 else i), 1) for i in range(10)),
            return_exceptions=True)
        pool.shutdown()
        return results

    results = asyncio.run(go())
    assert isinstance(results[5], ValueError)
    for i, res in enumerate(results):
        if i != 5:
            assert res["y"].tolist() == [[2.0 * i, 2.0 * i]]  # type: ignore[index]


def test_partial_batch_waits_only_while_others_run() -> None:
    async def go() -> list[int]:
        model = FakeModel(delay=0.3)
        batcher, pool = make(model, threads=2, max_wait_s=0.2)
        first = asyncio.ensure_future(batcher.submit(row(1), 1))
        await asyncio.sleep(0.005)
        rest = [asyncio.ensure_future(batcher.submit(row(2), 1)) for _ in range(3)]
        await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(batcher.submit(row(3), 1)) for _ in range(2)]
        await asyncio.gather(first, *rest, *later)
        pool.shutdown()
        return model.batches

    # thread 2 is free but thread 1 is busy: the second batch waited and collected 5 rows
    assert asyncio.run(go()) == [1, 5]


def _histogram(text: str, name: str) -> dict[str, float]:
    """Cumulative bucket counts of one histogram, keyed by `le`."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(
        rf'^{name}_bucket{{.*le="([^"]+)".*}} (\S+)$', text, re.M)}


def test_server_batches_concurrent_requests(throughput_server: Server, holdout) -> None:
    x, _ = holdout
    before = httpx.get(f"{throughput_server.url}/metrics").text

    async def load() -> list[int]:
        limits = httpx.Limits(max_connections=32)
        async with httpx.AsyncClient(base_url=throughput_server.url, limits=limits,
                                     timeout=30) as client:
            async def one(i: int) -> int:
                r = await client.post("/v1/models/digits:predict",
                                      json={"instances": x[i:i + 1].tolist()})
                return r.status_code
            return list(await asyncio.gather(*(one(i) for i in range(192))))

    codes = asyncio.run(load())
    assert codes == [200] * 192
    after = httpx.get(f"{throughput_server.url}/metrics").text
    b0, b1 = _histogram(before, "batch_size"), _histogram(after, "batch_size")
    calls = b1["+Inf"] - b0.get("+Inf", 0)
    singles = b1["1.0"] - b0.get("1.0", 0)
    assert calls < 192 and calls - singles > 0  # some model calls carried several requests
