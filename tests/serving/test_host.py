"""ModelHost request paths with a fake runtime: deadlines (504), full queue (503), not ready."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from serving.config import ServingConfig
from serving.host import ModelHost
from serving.metrics import Metrics
from serving.protocols.common import ClientError
from serving.runtime import Signature


class SlowRuntime:
    name = "fake"
    platform = "fake"
    default_signature = "serving_default"
    signatures = {"serving_default": Signature.from_dict({
        "inputs": {"x": {"dtype": "float32", "shape": [-1, 2]}},
        "outputs": {"y": {"dtype": "float32", "shape": [-1, 2]}}})}

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0
        self.lock = threading.Lock()

    def predict(self, inputs: dict[str, np.ndarray], signature: str = "serving_default"
                ) -> dict[str, np.ndarray]:
        with self.lock:
            self.calls += 1
        time.sleep(self.delay)
        return {"y": inputs["x"] + 1}


def make_host(mode: str, delay: float, **cfg: object) -> tuple[ModelHost, SlowRuntime]:
    host = ModelHost(ServingConfig(model_name="m", model_uri="/nowhere", mode=mode, **cfg),
                     Metrics("m"))
    runtime = SlowRuntime(delay)
    host.runtime, host.version = runtime, 1  # as a finished load() leaves them
    host.activate()
    return host, runtime


def x(n: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.zeros((n, 2), np.float32)}


@pytest.mark.parametrize("mode", ["latency", "throughput"])
def test_deadline_is_504(mode: str) -> None:
    host, _ = make_host(mode, 0.3, request_timeout_s=0.05)

    async def go() -> None:
        with pytest.raises(ClientError) as err:
            await host.infer(x(), 1, "serving_default")
        assert err.value.status == 504 and "deadline of 0.05s exceeded" in err.value.message

    asyncio.run(go())
    host.close()


def test_full_queue_is_503_and_shed_refuses_early() -> None:
    host, runtime = make_host("throughput", 0.6, max_queue=2, max_batch_size=2)

    async def go() -> list[object]:
        first = asyncio.ensure_future(host.infer(x(), 1, "serving_default"))
        await asyncio.sleep(0.05)  # the first batch runs; the next two rows fill the queue
        queued = [asyncio.ensure_future(host.infer(x(), 1, "serving_default"))
                  for _ in range(2)]
        await asyncio.sleep(0.02)
        with pytest.raises(ClientError) as err:
            host.shed()
        assert err.value.status == 503
        with pytest.raises(ClientError) as err2:
            await host.infer(x(), 1, "serving_default")
        assert err2.value.status == 503 and "queue full" in err2.value.message
        return await asyncio.gather(first, *queued)

    outs = asyncio.run(go())
    assert [o["y"].tolist() for o in outs] == [[[1.0, 1.0]]] * 3
    assert runtime.calls == 2  # one batch of 1, then one batch of 2
    host.close()


def test_not_loaded_and_failed_load_are_503() -> None:
    host = ModelHost(ServingConfig(model_name="m", model_uri="/nowhere/at/all"), Metrics("m"))

    async def go() -> ClientError:
        with pytest.raises(ClientError) as err:
            await host.infer(x(), 1, "serving_default")
        return err.value

    assert asyncio.run(go()).status == 503
    host.load()  # fails: the store path does not exist
    host.activate()
    assert host.state == "END" and not host.ready
    err = asyncio.run(go())
    assert err.status == 503 and "/nowhere/at/all" in err.message
    host.close()
