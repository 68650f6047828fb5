"""TF Serving REST v1 routes: model list, status, metadata and `:predict`."""

from __future__ import annotations

import re
import time

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from serving.protocols import tfserving
from serving.protocols.common import ClientError, dumps, parse_top_k
from serving.routes.context import JSON, RouteContext, json_response, match_path

V1_PATH = re.compile(r"^(?P<name>[^/:]+)(?:/versions/(?P<version>[^/:]+)|/labels/(?P<label>"
                     r"[^/:]+))?(?P<tail>:predict|:classify|:regress|/metadata)?$")
GET_TAILS = frozenset({None, "/metadata"})
POST_TAILS = frozenset({":predict", ":classify", ":regress"})


def tf_serving_v1_blueprint(ctx: RouteContext) -> Blueprint:
    """`/v1/models...` for the model of `ctx`."""
    bp = Blueprint("tf_serving_v1")
    host, cfg, name = ctx.host, ctx.cfg, ctx.name
    models_body = dumps({"models": [name]})

    @bp.get("/v1/models")
    async def v1_list(request: Request) -> HTTPResponse:
        return HTTPResponse(models_body, content_type=JSON)

    @bp.get("/v1/models/<rest:path>")
    async def v1_get(request: Request, rest: str) -> HTTPResponse:
        m = match_path(V1_PATH, rest, GET_TAILS, "GET /v1/models/")
        ctx.servable(m["name"], m["version"], m["label"], "status")
        if m["tail"] == "/metadata":
            runtime = ctx.loaded()
            body = tfserving.metadata_body(name, host.version,  # type: ignore[arg-type]
                                           runtime.signatures)  # loaded(): not None
            body["metadata"]["modelfleet"] = {**host.status(), "labels": host.labels,
                                              "holdout": host.meta.get("holdout")}
            return json_response(body)
        state = "UNLOADING" if host.draining and host.state == "AVAILABLE" else host.state
        ready = ctx.all_ready(request)
        body = tfserving.status_body(name, host.version, state, host.error, ready)
        body["modelfleet"] = host.status()
        if not ready:
            body["error"] = host.not_ready_message()
        return json_response(body, 200 if ready else 503)

    @bp.post("/v1/models/<rest:path>")
    async def v1_predict(request: Request, rest: str) -> HTTPResponse:
        request.ctx.started = time.perf_counter()
        m = match_path(V1_PATH, rest, POST_TAILS, "POST /v1/models/")
        ctx.servable(m["name"], m["version"], m["label"], "predict")
        if m["tail"] != ":predict":
            raise ClientError(501, f"{m['tail'][1:]} is not implemented; use :predict")
        runtime = ctx.admit()
        key = ctx.cache_key(request)
        if key and (hit := ctx.cache_hit(request, "v1", key)) is not None:
            return hit
        raw_k = request.args.get("top_k")
        k = 0 if raw_k is None else parse_top_k(raw_k, "query", len(host.labels))
        req, fmt = tfserving.decode_predict(
            request.body, runtime.signatures, runtime.default_signature,
            max_batch=cfg.max_batch_size, allow_nonfinite=cfg.allow_nonfinite)
        outputs = await host.infer(req.inputs, req.batch, req.signature)
        out = tfserving.encode_predict(ctx.post_process(outputs, k), fmt, req.batch)
        return ctx.finish(request, "v1", out, key)

    return bp
