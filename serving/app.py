"""The Sanic app: config, the protocol blueprints (`serving/routes/`), the shared worker
readiness counter, model loading after start, SIGTERM drain.

Every error body is `{"error": "..."}` (`serving/routes/errors.py`). Client mistakes are 4xx;
only a failure inside the server is a 500.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal

from sanic import Sanic

from serving.cache import ResponseCache
from serving.config import ServingConfig
from serving.host import ModelHost
from serving.metrics import MULTIPROC_ENV, Metrics
from serving.routes.context import RouteContext
from serving.routes.errors import JsonErrorHandler
from serving.routes.metrics import metrics_blueprint
from serving.routes.open_inference_v2 import open_inference_v2_blueprint
from serving.routes.probes import probes_blueprint
from serving.routes.tfserving_v1 import tf_serving_v1_blueprint

log = logging.getLogger(__name__)


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
    ctx = RouteContext(cfg, host, metrics, cache)
    app.blueprint([probes_blueprint(ctx), metrics_blueprint(metrics),
                   tf_serving_v1_blueprint(ctx), open_inference_v2_blueprint(ctx)])

    if cfg.workers > 1:  # ready only when every worker is (RouteContext.all_ready)
        @app.main_process_start
        async def shared_counter(app: Sanic) -> None:
            app.shared_ctx.workers_ready = multiprocessing.Value("i", 0)

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
            log.info("model %s ready on %s:%d", cfg.model_name, cfg.host, cfg.port)
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
