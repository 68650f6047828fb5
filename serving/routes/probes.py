"""Liveness and readiness probes: V2 `/v2/health/live` and `/v2/health/ready`, KServe V1 `/`."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from serving.protocols.common import dumps
from serving.routes.context import JSON, RouteContext

LIVE_BODY = dumps({"live": True})
READY_BODY = dumps({"ready": True})
ALIVE_BODY = dumps({"status": "alive"})


def probes_blueprint(ctx: RouteContext) -> Blueprint:
    """Live while the process runs; ready once every worker has loaded and warmed the model,
    and not while draining."""
    bp = Blueprint("probes")

    @bp.get("/v2/health/live")
    async def live(request: Request) -> HTTPResponse:
        return HTTPResponse(LIVE_BODY, content_type=JSON)

    @bp.get("/v2/health/ready")
    async def ready(request: Request) -> HTTPResponse:
        return ctx.ready_response(request, READY_BODY)

    @bp.get("/")
    async def v1_live(request: Request) -> HTTPResponse:  # KServe V1 liveness
        return HTTPResponse(ALIVE_BODY, content_type=JSON)

    return bp
