"""Every error as `{"error": "..."}`: a handler's `ClientError` and Sanic's own (unknown
route, 405, 413, timeouts) get their status; anything else is a 500, logged. Each is counted
in the request metrics (timed from `request.ctx.started` when a predict handler set it)."""

from __future__ import annotations

import logging
import time

from sanic import Request
from sanic.exceptions import SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse

from serving.metrics import Metrics
from serving.protocols.common import ClientError
from serving.routes.context import error_response

log = logging.getLogger(__name__)


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
