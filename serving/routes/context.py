"""What every route handler shares: the served model, response cache, metrics, config, and
the steps of a request that each protocol repeats, written once here.

A model request goes: `match_path` (404 for an unknown path), `servable` (404/400/503 for a
model or version not served), then for a predict `admit` (503 while the batch queue is full
or no model is loaded), `cache_key` + `cache_hit` (latency mode: a repeated request answered
from the cache), the protocol's own decode / infer / encode, and `finish` (store in the
cache, observe the request's metrics, 200 response). Predict handlers set
`request.ctx.started` first, so every answer, errors included (see `errors.py`), is timed.
These are plain calls on purpose: no extra await or wrapper per request.
"""

from __future__ import annotations

import re
import time
from typing import Any

from sanic import Request
from sanic.response import HTTPResponse

from serving.cache import ResponseCache
from serving.config import ServingConfig
from serving.host import ModelHost
from serving.metrics import Metrics
from serving.protocols.common import ClientError, apply_top_k, dumps
from serving.runtime import Runtime

JSON = "application/json"


def json_response(obj: Any, status: int = 200) -> HTTPResponse:
    return HTTPResponse(dumps(obj), status=status, content_type=JSON)


def error_response(status: int, message: str) -> HTTPResponse:
    return HTTPResponse(dumps({"error": message}), status=status, content_type=JSON)


def match_path(pattern: re.Pattern[str], rest: str, tails: frozenset[str | None],
               where: str) -> re.Match[str]:
    """`rest` (the path after `/v1/models/` or `/v2/models/`) matched, with a tail this
    route answers (`:predict`, `/metadata`, None for none, ...); else 404 naming `where`."""
    m = pattern.match(rest)
    if m is None or m["tail"] not in tails:
        raise ClientError(404, f"no route for {where}{rest}")
    return m


class RouteContext:
    """The objects one app's handlers work on, and the request steps they share."""

    def __init__(self, cfg: ServingConfig, host: ModelHost, metrics: Metrics,
                 cache: ResponseCache) -> None:
        self.cfg = cfg
        self.host = host
        self.metrics = metrics
        self.cache = cache
        self.name = cfg.model_name

    # -- readiness ---------------------------------------------------------------
    def all_ready(self, request: Request) -> bool:
        """This worker is ready, and so is every other worker (several workers)."""
        if not self.host.ready:
            return False
        counter = getattr(request.app.shared_ctx, "workers_ready", None)
        return counter is None or counter.value >= self.cfg.workers

    def ready_response(self, request: Request, body: bytes) -> HTTPResponse:
        """200 with `body` when every worker is ready, else 503 with the reason."""
        if self.all_ready(request):
            return HTTPResponse(body, content_type=JSON)
        return error_response(503, self.host.not_ready_message())

    # -- the model a request names ---------------------------------------------
    def servable(self, model: str, version: str | None, label: str | None, kind: str) -> None:
        """404 unless the request names the served model (and its version)."""
        host = self.host
        if model != self.name:
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

    def loaded(self) -> Runtime:
        """The loaded runtime; 503 until a version is loaded."""
        host = self.host
        runtime = host.runtime
        if runtime is None or host.version is None:
            raise ClientError(503, host.not_ready_message())
        return runtime

    # -- predict requests --------------------------------------------------------
    def admit(self) -> Runtime:
        """Refuse a predict at once (503) while the batch queue is full or nothing is
        loaded, before its body is parsed; else the runtime to decode it for."""
        host = self.host
        host.shed()
        runtime = host.runtime  # as loaded(), inline: this is every predict's path
        if runtime is None or host.version is None:
            raise ClientError(503, host.not_ready_message())
        return runtime

    def cache_key(self, request: Request, variant: str | None = None) -> bytes:
        """The response cache key of a predict request, b"" when not caching (throughput
        mode, cache size 0, or not ready). It covers the path, the body and `variant`, what
        else changes the answer: by default the query string (v1's `?top_k`)."""
        if self.cache.size and self.host.ready:
            return self.cache.key(
                request.path.encode(),
                (request.query_string if variant is None else variant).encode(), request.body)
        return b""

    def cache_hit(self, request: Request, protocol: str, key: bytes) -> HTTPResponse | None:
        """The cached answer for `key` (counted as a cache hit), or None."""
        body = self.cache.get(key)
        if body is None:
            return None
        self.metrics.cache_hits.inc()
        return self.finish(request, protocol, body)

    def post_process(self, outputs: dict[str, Any], k: int) -> dict[str, Any]:
        """Labels and scores of the `k` best classes (`k` 0: the configured TOP_K when the
        model has labels), when the model has a label output."""
        host = self.host
        if not k:
            k = self.cfg.top_k if host.labels else 0
        if k and host.label_output in outputs:
            return apply_top_k(outputs, host.label_output, host.labels, k)
        return outputs

    def finish(self, request: Request, protocol: str, body: bytes,
               key: bytes = b"") -> HTTPResponse:
        """The 200 JSON answer: cached under `key` (unless b""), timed in the metrics."""
        if key:
            self.cache.put(key, body)
        self.metrics.observe_request(protocol, 200, time.perf_counter() - request.ctx.started)
        return HTTPResponse(body, status=200, content_type=JSON)
