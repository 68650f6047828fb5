"""Prometheus exposition: `/metrics`, and TF Serving's `/monitoring/prometheus/metrics`.

With several workers any worker renders the aggregate of all of them (`serving.metrics`)."""

from __future__ import annotations

from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from serving.metrics import Metrics


def metrics_blueprint(metrics: Metrics) -> Blueprint:
    bp = Blueprint("metrics")

    async def prometheus(request: Request) -> HTTPResponse:
        return HTTPResponse(metrics.render(), content_type=metrics.content_type)

    bp.add_route(prometheus, "/metrics", name="metrics")
    bp.add_route(prometheus, "/monitoring/prometheus/metrics", name="tf_serving_metrics")
    return bp
