"""Graceful drain: restart one of two instances under constant load; no request fails."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.serving.conftest import Server

ROW = [[[0.25]] * 8] * 8


def _args(store: Path) -> list[str]:
    return ["--model-name", "digits", "--model-uri", str(store), "--mode", "throughput",
            "--drain-grace-s", "1.0", "--runtime", "tflite-fp32"]


async def _balanced_load(servers: dict[str, Server], stop: asyncio.Event,
                         results: Counter[str], served: Counter[str],
                         ready: set[str]) -> None:
    """Round-robin over instances whose readiness probe passes (like Service endpoints)."""

    async def probe(client: httpx.AsyncClient) -> None:
        while not stop.is_set():
            for name, srv in servers.items():
                try:
                    r = await client.get(f"{srv.url}/v2/health/ready", timeout=0.5)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                (ready.add if ok else ready.discard)(name)
            await asyncio.sleep(0.05)

    async def worker(client: httpx.AsyncClient, i: int) -> None:
        turn = i
        while not stop.is_set():
            names = sorted(ready)
            if not names:
                await asyncio.sleep(0.01)
                continue
            name = names[turn % len(names)]
            turn += 1
            try:
                r = await client.post(f"{servers[name].url}/v1/models/digits:predict",
                                      json={"instances": [ROW]}, timeout=10)
                results[str(r.status_code)] += 1
                served[name] += r.status_code == 200
            except httpx.HTTPError as exc:
                results[type(exc).__name__] += 1
            await asyncio.sleep(0.002)

    async with httpx.AsyncClient() as client:
        await asyncio.gather(probe(client), *(worker(client, i) for i in range(8)))


def test_restart_under_load_loses_nothing(demo_model: Path, tmp_path: Path) -> None:
    a = Server(_args(demo_model), log_path=tmp_path / "a.log").start()
    b = Server(_args(demo_model), log_path=tmp_path / "b.log").start()
    servers = {"a": a, "b": b}
    try:
        a.wait()
        b.wait()
        results: Counter[str] = Counter()
        served: Counter[str] = Counter()
        ready: set[str] = set()
        not_ready_seen = []

        async def scenario() -> None:
            stop = asyncio.Event()
            load = asyncio.ensure_future(_balanced_load(servers, stop, results, served, ready))
            await asyncio.sleep(1.5)
            before = served["a"]
            assert before > 0
            t0 = time.monotonic()
            old = a.proc
            assert old is not None
            old.terminate()  # SIGTERM
            async with httpx.AsyncClient() as client:  # readiness flips at once
                await asyncio.sleep(0.2)
                r = await client.get(f"{a.url}/v2/health/ready")
                not_ready_seen.append(r.status_code)
            code = await asyncio.to_thread(old.wait, 30)
            assert code == 0 and time.monotonic() - t0 >= 1.0  # stayed up for the grace
            a.proc = None
            a.start()
            await asyncio.to_thread(a.wait)
            mark = served["a"]
            await asyncio.sleep(1.5)
            stop.set()
            await load
            assert served["a"] > mark, "restarted instance got no traffic"

        asyncio.run(scenario())
        assert not_ready_seen == [503]
        assert set(results) == {"200"}, results
        assert results["200"] > 100
    finally:
        for srv in servers.values():
            srv.stop()


def _slow_model(base: Path, iterations: int) -> None:
    """A SavedModel with the demo signature that burns ~iterations matmuls per call."""
    import tensorflow as tf

    from serving import store

    class Slow(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 8, 8, 1], tf.float32,
                                                    name="image")])
        def serve(self, image: tf.Tensor) -> dict[str, tf.Tensor]:
            m = tf.ones([256, 256]) / 256.0
            _, acc = tf.while_loop(lambda i, a: i < iterations,
                                   lambda i, a: (i + 1, tf.matmul(a, m)), [0, m])
            return {"probabilities": tf.reshape(image, [-1, 64])[:, :10]
                    + 0.0 * tf.reduce_mean(acc)}

    module = Slow()
    vdir = base.parent / "slow-src"
    tf.saved_model.save(module, str(vdir), signatures={"serving_default": module.serve})
    store.seal(vdir, {"name": "slow", "signature": {
        "inputs": {"image": {"dtype": "float32", "shape": [-1, 8, 8, 1]}},
        "outputs": {"probabilities": {"dtype": "float32", "shape": [-1, 10]}}}})
    store.Store(str(base)).publish(vdir)


async def _queued(client: httpx.AsyncClient) -> float:
    """The server's `queue_depth` gauge (rows waiting for the model)."""
    text = (await client.get("/metrics")).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("queue_depth{"))


def test_sigterm_finishes_in_flight_requests(tmp_path: Path) -> None:
    base = tmp_path / "slow"
    _slow_model(base, 300)
    srv = Server(["--model-name", "digits", "--model-uri", str(base), "--mode", "throughput",
                  "--runtime", "savedmodel", "--max-batch-size", "1", "--intra-op-threads", "1",
                  "--drain-grace-s", "0"], log_path=tmp_path / "slow.log").start()
    try:
        srv.wait()

        async def scenario() -> tuple[list[int], int]:
            async with httpx.AsyncClient(base_url=srv.url, timeout=60) as client:
                await client.post("/v1/models/digits:predict", json={"instances": [ROW]})  # warm
                sent = [asyncio.ensure_future(client.post("/v1/models/digits:predict",
                                                          json={"instances": [ROW]}))
                        for _ in range(4)]
                # all four arrived (the first running, three queued) before SIGTERM: awaited on
                # the server's own queue gauge, not guessed with a sleep
                deadline = time.monotonic() + 30
                while await _queued(client) < 3:
                    assert time.monotonic() < deadline, "the 4 requests never queued"
                    await asyncio.sleep(0.01)
                assert srv.proc is not None
                srv.proc.terminate()
                pending = sum(not f.done() for f in sent)
                codes = [r.status_code for r in await asyncio.gather(*sent)]
                return codes, pending

        codes, pending_at_term = asyncio.run(scenario())
        assert pending_at_term >= 3  # they were in flight (queued) when SIGTERM came
        assert codes == [200] * 4  # ... and all finished before the process exited
        assert srv.proc is not None and srv.proc.wait(30) == 0
    finally:
        srv.stop()
