"""Sanic wiring: TF Serving v1 and Open Inference v2 routes, probes, metrics, drain, errors.

Every error body is `{"error": "..."}`. Client mistakes are 4xx; only a failure inside
the server is a 500.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import re
import signal
import time
from typing import Any

from sanic import Request, Sanic
from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse

from serving.cache import ResponseCache
from serving.config import ServingConfig
from serving.host import ModelHost
from serving.metrics import MULTIPROC_ENV, Metrics
from serving.protocols import tfserving, v2
from serving.protocols.common import ClientError, apply_top_k, dumps, parse_top_k

log = logging.getLogger(__name__)

SERVER_NAME = "modelfleet-serving"
SERVER_VERSION = "0.1.0"
JSON = "application/json"
BINARY_HEADER = "Inference-Header-Content-Length"  # Triton's binary tensor extension
V1_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>"
                     r"[^/:]+))?(?P<tail>:predict|:classify|:regress|/metadata)?$")
V2_PATH = re.compile(r"^(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<tail>/ready|/infer)?$")


def json_response(obj: Any, status: int = 200) -> HTTPResponse:
    return HTTPResponse(dumps(obj), status=status, content_type=JSON)


def error_response(status: int, message: str) -> HTTPResponse:
    return HTTPResponse(dumps({"error": message}), status=status, content_type=JSON)


def protocol_of(path: str) -> str:
    return "v2" if path.startswith("/v2") else "v1" if path.startswith("/v1") else "other"


class JsonErrorHandler(ErrorHandler):
    """Sanic's own errors (unknown route, 405, 413, timeouts) as `{"error": ...}`."""

    def __init__(self, metrics: Metrics, max_bytes: int) -> None:
        super().__init__()
        self.metrics = metrics
        self.max_bytes = max_bytes

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        if isinstance(exception, ClientError):
            status, message = exception.status, exception.message
        elif isinstance(exception, SanicException):
            status = exception.status_code
            message = str(exception) or type(exception).__name__
            if status == 413:
                message = f"request body exceeds the limit of {self.max_bytes} bytes"
            elif status == 404:
                message = f"no route for {request.method} {request.path}"
        else:
            status, message = 500, f"internal error: {type(exception).__name__}: {exception}"
            log.exception("unhandled error on %s %s", request.method, request.path,
                          exc_info=exception)
        started = getattr(request.ctx, "started", None)
        self.metrics.observe_request(protocol_of(request.path), status,
                                     time.perf_counter() - started if started else 0.0)
        return error_response(status, message)


def create_app(cfg: ServingConfig) -> Sanic:
    app = Sanic("modelfleet_serving", configure_logging=False)
    app.config.update({
        "REQUEST_MAX_SIZE": cfg.request_max_bytes,
        "RESPONSE_TIMEOUT": cfg.request_timeout_s + 5,
        "GRACEFUL_SHUTDOWN_TIMEOUT": cfg.shutdown_timeout_s,
        "KEEP_ALIVE_TIMEOUT": 75,
        "ACCESS_LOG": False,
        "MOTD": False,
        "NOISY_EXCEPTIONS": False,
    })
    metrics = Metrics(cfg.model_name, os.environ.get(MULTIPROC_ENV, "") if cfg.workers > 1
                      else "")
    host = ModelHost(cfg, metrics)
    cache = ResponseCache(cfg.cache_size if cfg.mode == "latency" else 0)
    app.ctx.host, app.ctx.metrics, app.ctx.cache = host, metrics, cache
    app.error_handler = JsonErrorHandler(metrics, cfg.request_max_bytes)
    name = cfg.model_name

    def finish(request: Request, protocol: str, body: bytes, status: int = 200) -> HTTPResponse:
        metrics.observe_request(protocol, status, time.perf_counter() - request.ctx.started)
        return HTTPResponse(body, status=status, content_type=JSON)

    def servable(model: str, version: str | None, label: str | None, kind: str) -> None:
        """404 unless the request names the served model (and its version)."""
        if model != name:
            raise ClientError(404, f"Servable not found for request: Latest({model})")
        if label is not None:
            raise ClientError(404, f"Servable not found for request: Labeled({model}, {label})")
        if version is None:
            return
        if not version.isdigit():
            raise ClientError(400, f"version must be a positive integer, got {version!r}")
        if host.version is not None and int(version) != host.version:
            raise ClientError(404, f"Servable not found for request: Specific({model}, {version})")
        if host.version is None and kind != "status":
            raise ClientError(503, host.not_ready_message())

    def top_k_of(request: Request) -> int:
        raw = request.args.get("top_k")
        if raw is None:
            return cfg.top_k if host.labels else 0
        return parse_top_k(raw, "query", len(host.labels))

    def post_process(outputs: dict[str, Any], k: int) -> dict[str, Any]:
        if k and host.label_output in outputs:
            return apply_top_k(outputs, host.label_output, host.labels, k)
        return outputs

    def all_ready() -> bool:
        """This worker is ready, and so is every other worker (several workers)."""
        if not host.ready:
            return False
        counter = getattr(app.shared_ctx, "workers_ready", None)
        return counter is None or counter.value >= cfg.workers

    if cfg.workers > 1:
        @app.main_process_start
        async def shared_counter(app: Sanic) -> None:
            app.shared_ctx.workers_ready = multiprocessing.Value("i", 0)

    # -- health and server metadata ------------------------------------------
    @app.get("/v2/health/live")
    async def live(request: Request) -> HTTPResponse:
        return json_response({"live": True})

    @app.get("/v2/health/ready")
    async def ready(request: Request) -> HTTPResponse:
        if all_ready():
            return json_response({"ready": True})
        return error_response(503, host.not_ready_message())

    @app.get("/")
    async def v1_live(request: Request) -> HTTPResponse:  # KServe V1 liveness
        return json_response({"status": "alive"})

    @app.get("/v2")
    async def server_meta(request: Request) -> HTTPResponse:
        return json_response({"name": SERVER_NAME, "version": SERVER_VERSION,
                              "extensions": ["binary_tensor_data"]})

    async def prometheus(request: Request) -> HTTPResponse:
        return HTTPResponse(metrics.render(), content_type=metrics.content_type)

    app.add_route(prometheus, "/metrics", name="metrics")
    app.add_route(prometheus, "/monitoring/prometheus/metrics", name="tf_serving_metrics")

    # -- TF Serving v1 ----------------------------------------------------------
    @app.get("/v1/models")
    async def v1_list(request: Request) -> HTTPResponse:
        return json_response({"models": [name]})

    @app.get("/v1/models/<rest:path>")
    async def v1_get(request: Request, rest: str) -> HTTPResponse:
        m = V1_PATH.match(rest)
        if not m or m["tail"] not in (None, "/metadata"):
            raise ClientError(404, f"no route for GET /v1/models/{rest}")
        servable(m["name"], m["version"], m["label"], "status")
        if m["tail"] == "/metadata":
            if host.runtime is None or host.version is None:
                raise ClientError(503, host.not_ready_message())
            body = tfserving.metadata_body(name, host.version, host.runtime.signatures)
            body["metadata"]["modelfleet"] = {**host.status(), "labels": host.labels,
                                              "holdout": host.meta.get("holdout")}
            return json_response(body)
        state = "UNLOADING" if host.draining and host.state == "AVAILABLE" else host.state
        ready = all_ready()
        body = tfserving.status_body(name, host.version, state, host.error, ready)
        body["modelfleet"] = host.status()
        if not ready:
            body["error"] = host.not_ready_message()
        return json_response(body, 200 if ready else 503)

    @app.post("/v1/models/<rest:path>")
    async def v1_post(request: Request, rest: str) -> HTTPResponse:
        request.ctx.started = time.perf_counter()
        m = V1_PATH.match(rest)
        if not m or m["tail"] is None or m["tail"] == "/metadata":
            raise ClientError(404, f"no route for POST /v1/models/{rest}")
        servable(m["name"], m["version"], m["label"], "predict")
        if m["tail"] != ":predict":
            raise ClientError(501, f"{m['tail'][1:]} is not implemented; use :predict")
        host.shed()
        runtime = host.runtime
        if runtime is None:
            raise ClientError(503, host.not_ready_message())
        body = request.body
        key = b""
        if cache.size and host.ready:
            key = cache.key(request.path.encode(), request.query_string.encode(), body)
            hit = cache.get(key)
            if hit is not None:
                metrics.cache_hits.inc()
                return finish(request, "v1", hit)
        k = top_k_of(request)
        req, fmt = tfserving.decode_predict(
            body, runtime.signatures, runtime.default_signature,
            max_batch=cfg.max_batch_size, allow_nonfinite=cfg.allow_nonfinite)
        outputs = await host.infer(req.inputs, req.batch, req.signature)
        out = tfserving.encode_predict(post_process(outputs, k), fmt, req.batch)
        if key:
            cache.put(key, out)
        return finish(request, "v1", out)

    # -- Open Inference v2 ------------------------------------------------------
    @app.get("/v2/models/<rest:path>")
    async def v2_get(request: Request, rest: str) -> HTTPResponse:
        m = V2_PATH.match(rest)
        if not m or m["tail"] == "/infer":
            raise ClientError(404, f"no route for GET /v2/models/{rest}")
        servable(m["name"], m["version"], None, "status")
        if m["tail"] == "/ready":
            if all_ready():
                return json_response({"name": name, "ready": True})
            return error_response(503, host.not_ready_message())
        if host.runtime is None or host.version is None:
            raise ClientError(503, host.not_ready_message())
        sig = host.runtime.signatures[host.runtime.default_signature]
        return json_response(v2.metadata_body(name, host.version, host.runtime.platform, sig))

    @app.post("/v2/models/<rest:path>")
    async def v2_infer(request: Request, rest: str) -> HTTPResponse:
        request.ctx.started = time.perf_counter()
        m = V2_PATH.match(rest)
        if not m or m["tail"] != "/infer":
            raise ClientError(404, f"no route for POST /v2/models/{rest}")
        servable(m["name"], m["version"], None, "predict")
        host.shed()
        runtime = host.runtime
        if runtime is None or host.version is None:
            raise ClientError(503, host.not_ready_message())
        body = request.body
        header = request.headers.get(BINARY_HEADER)
        if header is not None and not header.isdigit():
            raise ClientError(400, f"{BINARY_HEADER} must be an integer, got {header!r}")
        key = b""
        if cache.size and host.ready:
            key = cache.key(request.path.encode(), (header or "").encode(), body)
            hit = cache.get(key)
            if hit is not None:
                metrics.cache_hits.inc()
                return finish(request, "v2", hit)
        sig = runtime.signatures[runtime.default_signature]
        req = v2.decode_infer(body, sig, max_batch=cfg.max_batch_size,
                              allow_nonfinite=cfg.allow_nonfinite, n_labels=len(host.labels),
                              header_length=int(header) if header is not None else None)
        k = req.top_k or (cfg.top_k if host.labels else 0)
        outputs = post_process(await host.infer(req.inputs, req.batch, req.signature), k)
        out, json_length = v2.encode_infer(name, host.version, req,
                                           v2.select_outputs(outputs, req.outputs))
        if json_length is not None:  # binary tensor extension: not cached
            metrics.observe_request("v2", 200, time.perf_counter() - request.ctx.started)
            return HTTPResponse(out, content_type="application/octet-stream",
                                headers={BINARY_HEADER: str(json_length)})
        if key:
            cache.put(key, out)
        return finish(request, "v2", out)

    # -- lifecycle --------------------------------------------------------------
    @app.after_server_start
    async def start(app: Sanic) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, begin_drain, app)
        app.add_task(load_model(), name="load-model")

    async def load_model() -> None:
        await asyncio.get_running_loop().run_in_executor(None, host.load)
        host.activate()
        if host.ready:
            log.info("model %s ready on %s:%d", name, cfg.host, cfg.port)
            counter = getattr(app.shared_ctx, "workers_ready", None)
            if counter is not None:
                with counter.get_lock():
                    counter.value += 1

    def begin_drain(app: Sanic) -> None:
        if host.draining:
            return
        log.info("SIGTERM: not ready; draining for %.1fs, then finishing in-flight requests",
                 cfg.drain_grace_s)
        host.begin_drain()
        cache.clear()
        asyncio.get_running_loop().call_later(cfg.drain_grace_s, app.stop, False)

    @app.after_server_stop
    async def stop(app: Sanic) -> None:
        await host.drain(cfg.shutdown_timeout_s)
        host.close()
        log.info("stopped")

    return app
