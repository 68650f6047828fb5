"""Open Inference Protocol (KServe V2) routes: server metadata, model metadata and ready,
`/infer` (JSON tensors or Triton's binary tensor data extension)."""

from __future__ import annotations

import re
import time

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from serving.protocols import v2
from serving.protocols.common import ClientError, dumps
from serving.routes.context import JSON, RouteContext, json_response, match_path

SERVER_NAME = "modelfleet-serving"
SERVER_VERSION = "0.1.0"
BINARY_HEADER = "Inference-Header-Content-Length"  # Triton's binary tensor extension
V2_PATH = re.compile(r"^(?P<name>[^/]+)(?:/versions/(?P<version>[^/]+))?(?P<tail>/ready|/infer)?$")
GET_TAILS = frozenset({None, "/ready"})
POST_TAILS = frozenset({"/infer"})


def open_inference_v2_blueprint(ctx: RouteContext) -> Blueprint:
    """`/v2` and `/v2/models/...` for the model of `ctx` (the health probes: `probes.py`)."""
    bp = Blueprint("open_inference_v2")
    host, cfg, name = ctx.host, ctx.cfg, ctx.name
    server_body = dumps({"name": SERVER_NAME, "version": SERVER_VERSION,
                         "extensions": ["binary_tensor_data"]})
    model_ready_body = dumps({"name": name, "ready": True})

    @bp.get("/v2")
    async def server_meta(request: Request) -> HTTPResponse:
        return HTTPResponse(server_body, content_type=JSON)

    @bp.get("/v2/models/<rest:path>")
    async def v2_get(request: Request, rest: str) -> HTTPResponse:
        m = match_path(V2_PATH, rest, GET_TAILS, "GET /v2/models/")
        ctx.servable(m["name"], m["version"], None, "status")
        if m["tail"] == "/ready":
            return ctx.ready_response(request, model_ready_body)
        runtime = ctx.loaded()
        sig = runtime.signatures[runtime.default_signature]
        return json_response(v2.metadata_body(name, host.version,  # type: ignore[arg-type]
                                              runtime.platform, sig))  # loaded(): not None

    @bp.post("/v2/models/<rest:path>")
    async def v2_infer(request: Request, rest: str) -> HTTPResponse:
        request.ctx.started = time.perf_counter()
        m = match_path(V2_PATH, rest, POST_TAILS, "POST /v2/models/")
        ctx.servable(m["name"], m["version"], None, "predict")
        runtime = ctx.admit()
        header = request.headers.get(BINARY_HEADER)
        if header is not None and not header.isdigit():
            raise ClientError(400, f"{BINARY_HEADER} must be an integer, got {header!r}")
        key = ctx.cache_key(request, header or "")
        if key and (hit := ctx.cache_hit(request, "v2", key)) is not None:
            return hit
        sig = runtime.signatures[runtime.default_signature]
        req = v2.decode_infer(request.body, sig, max_batch=cfg.max_batch_size,
                              allow_nonfinite=cfg.allow_nonfinite, n_labels=len(host.labels),
                              header_length=int(header) if header is not None else None)
        outputs = ctx.post_process(await host.infer(req.inputs, req.batch, req.signature),
                                   req.top_k)
        out, json_length = v2.encode_infer(name, host.version,  # type: ignore[arg-type]
                                           req, v2.select_outputs(outputs, req.outputs))
        if json_length is not None:  # binary tensor extension: not cached
            ctx.metrics.observe_request("v2", 200, time.perf_counter() - request.ctx.started)
            return HTTPResponse(out, content_type="application/octet-stream",
                                headers={BINARY_HEADER: str(json_length)})
        return ctx.finish(request, "v2", out, key)

    return bp
