"""Each protocol blueprint alone: an app with only that blueprint (and the JSON error
handler), served in-process on 127.0.0.1 over a fake model, and the shared request steps of
`RouteContext` without any server."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import numpy as np
import pytest
from sanic import Blueprint, Sanic

from serving.cache import ResponseCache
from serving.config import ServingConfig
from serving.host import ModelHost
from serving.metrics import Metrics
from serving.protocols.common import ClientError
from serving.routes.context import RouteContext
from serving.routes.errors import JsonErrorHandler
from serving.routes.metrics import metrics_blueprint
from serving.routes.open_inference_v2 import BINARY_HEADER, open_inference_v2_blueprint
from serving.routes.probes import probes_blueprint
from serving.routes.tfserving_v1 import tf_serving_v1_blueprint
from serving.runtime import Signature

APP_IDS = itertools.count()
ROW = [0.1, 0.7, 0.2]


class FakeRuntime:
    name = "fake"
    platform = "fake_platform"
    default_signature = "serving_default"
    signatures = {"serving_default": Signature.from_dict({
        "inputs": {"x": {"dtype": "float32", "shape": [-1, 3]}},
        "outputs": {"scores": {"dtype": "float32", "shape": [-1, 3]}}})}

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, inputs: dict[str, np.ndarray], signature: str = "serving_default"
                ) -> dict[str, np.ndarray]:
        self.calls += 1
        return {"scores": inputs["x"] + 1}


def make_ctx(mode: str = "latency", loaded: bool = True, **cfg: Any) -> RouteContext:
    config = ServingConfig(model_name="m", model_uri="/nowhere", mode=mode, cache_size=8,
                           top_k=0, **cfg)
    metrics = Metrics("m")
    host = ModelHost(config, metrics)
    if loaded:  # as a finished load() leaves it
        host.runtime, host.version = FakeRuntime(), 1
        host.labels, host.label_output = ["a", "b", "c"], "scores"
    return RouteContext(config, host, metrics,
                        ResponseCache(config.cache_size if mode == "latency" else 0))


@asynccontextmanager
async def serve(ctx: RouteContext, blueprint: Blueprint) -> AsyncIterator[httpx.AsyncClient]:
    """An app with only `blueprint`, on a free loopback port, and a client for it."""
    app = Sanic(f"routes_test_{next(APP_IDS)}", configure_logging=False)
    # TOUCHUP rewrites Sanic's protocol classes for the first app started in a process;
    # the next app would fail to rewrite them again.
    app.config.update({"ACCESS_LOG": False, "MOTD": False, "NOISY_EXCEPTIONS": False,
                       "TOUCHUP": False})
    app.error_handler = JsonErrorHandler(ctx.metrics, ctx.cfg.request_max_bytes)
    app.blueprint(blueprint)
    srv = await app.create_server(host="127.0.0.1", port=0, return_asyncio_server=True)
    assert srv is not None
    await srv.startup()
    await srv.start_serving()
    port = srv.server.sockets[0].getsockname()[1]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        srv.close()
        await srv.wait_closed()
        ctx.host.close()


def run(ctx: RouteContext, blueprint: Callable[[RouteContext], Blueprint],
        scenario: Callable[[httpx.AsyncClient], Any]) -> Any:
    async def go() -> Any:
        async with serve(ctx, blueprint(ctx)) as client:
            return await scenario(client)

    return asyncio.run(go())


def count(ctx: RouteContext, protocol: str, code: int) -> float:
    value = ctx.metrics.registry.get_sample_value(
        "request_total", {"model_name": "m", "protocol": protocol, "code": str(code)})
    return value or 0.0


def hits(ctx: RouteContext) -> float:
    return ctx.metrics.registry.get_sample_value("response_cache_hits_total",
                                                 {"model_name": "m"}) or 0.0


# -- TF Serving v1 ----------------------------------------------------------------
def test_v1_blueprint_alone_predicts_caches_and_times() -> None:
    ctx = make_ctx()
    ctx.host.activate()

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        body = {"instances": [ROW]}
        return [await c.post("/v1/models/m:predict", json=body),
                await c.post("/v1/models/m:predict", json=body),  # the cached answer
                await c.post("/v1/models/m/versions/1:predict?top_k=2", json=body),
                await c.get("/v1/models"), await c.get("/v1/models/m"),
                await c.get("/v2/health/live")]  # not this blueprint's

    first, cached, top2, listing, status, other = run(ctx, tf_serving_v1_blueprint, scenario)
    assert first.status_code == 200 and first.headers["content-type"] == "application/json"
    assert np.allclose(first.json()["predictions"], [[1.1, 1.7, 1.2]])
    assert cached.content == first.content
    assert ctx.host.runtime.calls == 2  # type: ignore[union-attr]
    assert hits(ctx) == 1
    assert top2.json()["predictions"][0]["labels"] == ["b", "c"]
    assert listing.json() == {"models": ["m"]}
    assert status.status_code == 200 and status.json()["model_version_status"][0]["state"] \
        == "AVAILABLE"
    assert other.status_code == 404
    assert count(ctx, "v1", 200) == 3  # GETs are not timed, predicts (and hits) are


@pytest.mark.parametrize(("method", "path", "status", "needle"), [
    ("POST", "/v1/models/m:classify", 501, "classify is not implemented; use :predict"),
    ("POST", "/v1/models/other:predict", 404, "Servable not found for request: Latest(other)"),
    ("POST", "/v1/models/m/metadata", 404, "no route for POST /v1/models/m/metadata"),
    ("GET", "/v1/models/m:predict", 404, "no route for GET /v1/models/m:predict"),
    ("POST", "/v1/models/m/versions/x:predict", 400, "version must be a positive integer"),
    ("POST", "/v1/models/m:predict?top_k=9", 400, "top_k must be between 1 and 3"),
])
def test_v1_blueprint_alone_errors(method: str, path: str, status: int, needle: str) -> None:
    ctx = make_ctx()
    ctx.host.activate()

    async def scenario(c: httpx.AsyncClient) -> httpx.Response:
        return await c.request(method, path, json={"instances": [ROW]})

    r = run(ctx, tf_serving_v1_blueprint, scenario)
    assert r.status_code == status
    assert needle in r.json()["error"]
    assert count(ctx, "v1", status) == 1


def test_v1_blueprint_alone_not_loaded_is_503() -> None:
    ctx = make_ctx(loaded=False)

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [await c.post("/v1/models/m:predict", json={"instances": [ROW]}),
                await c.get("/v1/models/m"), await c.get("/v1/models/m/metadata")]

    for r in run(ctx, tf_serving_v1_blueprint, scenario):
        assert r.status_code == 503
        assert r.json()["error"] == "Model with name m is not ready."


# -- Open Inference v2 ------------------------------------------------------------
def test_v2_blueprint_alone_infers_json_and_binary() -> None:
    ctx = make_ctx()
    ctx.host.activate()
    tensor = {"name": "x", "shape": [1, 3], "datatype": "FP32"}
    raw = np.array([ROW], np.float32).tobytes()
    header = json.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}],
                         "parameters": {"binary_data_output": True}}).encode()

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        body = {"id": "r1", "inputs": [{**tensor, "data": ROW}]}
        return [await c.post("/v2/models/m/infer", json=body),
                await c.post("/v2/models/m/infer", json=body),
                await c.post("/v2/models/m/infer", content=header + raw,
                             headers={BINARY_HEADER: str(len(header))}),
                await c.post("/v2/models/m/infer", json=body, headers={BINARY_HEADER: "x"}),
                await c.get("/v2/models/m/ready"), await c.get("/v2/models/m"),
                await c.get("/v2")]

    first, cached, binary, bad, ready, meta, server = run(ctx, open_inference_v2_blueprint,
                                                          scenario)
    assert first.status_code == 200 and first.json()["id"] == "r1"
    assert first.json()["outputs"][0]["name"] == "scores"
    assert cached.content == first.content and hits(ctx) == 1
    assert binary.status_code == 200
    assert binary.headers["content-type"] == "application/octet-stream"
    json_len = int(binary.headers[BINARY_HEADER])
    assert np.allclose(np.frombuffer(binary.content[json_len:], "<f4"), [1.1, 1.7, 1.2])
    assert bad.status_code == 400 and BINARY_HEADER in bad.json()["error"]
    assert ready.json() == {"name": "m", "ready": True}
    assert meta.json()["platform"] == "fake_platform" and meta.json()["versions"] == ["1"]
    assert server.json()["extensions"] == ["binary_tensor_data"]
    assert count(ctx, "v2", 200) == 3 and count(ctx, "v2", 400) == 1


# -- probes and metrics -------------------------------------------------------------
def test_probes_blueprint_alone_follow_the_host() -> None:
    ctx = make_ctx()

    async def scenario(c: httpx.AsyncClient) -> list[tuple[int, Any]]:
        seen = []
        for step in ("loading", "ready", "draining"):
            if step == "ready":
                ctx.host.activate()
            elif step == "draining":
                ctx.host.begin_drain()
            for path in ("/v2/health/live", "/v2/health/ready", "/"):
                r = await c.get(path)
                seen.append((r.status_code, r.json()))
        return seen

    not_ready = (503, {"error": "Model with name m is not ready."})
    live, alive = (200, {"live": True}), (200, {"status": "alive"})
    assert run(ctx, probes_blueprint, scenario) == [
        live, not_ready, alive, live, (200, {"ready": True}), alive, live, not_ready, alive]


def test_metrics_blueprint_alone_renders_both_paths() -> None:
    ctx = make_ctx()
    ctx.metrics.observe_request("v1", 200, 0.001)

    async def scenario(c: httpx.AsyncClient) -> list[httpx.Response]:
        return [await c.get("/metrics"), await c.get("/monitoring/prometheus/metrics")]

    for r in run(ctx, lambda c: metrics_blueprint(c.metrics), scenario):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/plain")
        assert 'request_total{code="200",model_name="m",protocol="v1"} 1.0' in r.text


# -- the shared steps, no server ------------------------------------------------------
def test_servable_names_what_is_not_served() -> None:
    ctx = make_ctx()
    ctx.servable("m", "1", None, "predict")
    for args, status in [(("x", None, None), 404), (("m", None, "canary"), 404),
                         (("m", "2", None), 404), (("m", "v1", None), 400)]:
        with pytest.raises(ClientError) as err:
            ctx.servable(*args, "predict")
        assert err.value.status == status
    ctx.host.version = None  # loading: a version asked for cannot be checked yet
    ctx.servable("m", "3", None, "status")
    with pytest.raises(ClientError) as err:
        ctx.servable("m", "3", None, "predict")
    assert err.value.status == 503


def test_admit_refuses_before_parsing() -> None:
    with pytest.raises(ClientError) as err:
        make_ctx(loaded=False).admit()
    assert err.value.status == 503
    ctx = make_ctx("throughput", max_queue=1)
    ctx.host.activate()
    assert ctx.admit() is ctx.host.runtime
    ctx.host.batcher.queued_rows = 1  # type: ignore[union-attr]
    with pytest.raises(ClientError) as err:
        ctx.admit()
    assert err.value.status == 503 and "batch queue full" in err.value.message
    ctx.host.close()


def test_cache_key_only_when_caching_and_ready() -> None:
    class Req:
        path, query_string, body = "/v1/models/m:predict", "top_k=1", b"{}"

    req: Any = Req()
    latency = make_ctx()
    assert latency.cache_key(req) == b""  # loaded, not yet ready
    latency.host.activate()
    key = latency.cache_key(req)
    assert key and key != latency.cache_key(req, "")  # the query string is in the key
    assert latency.cache_key(req, "") != latency.cache_key(req, "12")
    throughput = make_ctx("throughput")
    throughput.host.activate()
    assert throughput.cache_key(req) == b""
    for ctx in (latency, throughput):
        ctx.host.close()
