"""One error envelope for every failure: ``{"error": {"code": ..., "message": ...}}``.

Codes are stable and machine-readable; messages are for humans and never echo request bodies (they may hold
PII). A store outage becomes 503 with Retry-After, so clients back off instead of treating it as their fault.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from neo4j.exceptions import DriverError
from starlette.exceptions import HTTPException as StarletteHTTPException

from graph.store.arcade import ArcadeError
from graph.store.bolt import StoreError

log = logging.getLogger("ringwatch.api")

RETRY_AFTER_S = 5

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    503: "unavailable",
}


class ApiError(Exception):
    """Raised by routes and dependencies; rendered by the handler below."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


class StoreUnavailable(ApiError):
    def __init__(self, message: str = "the graph store is unavailable; retry later"):
        super().__init__(503, "store_unavailable", message, headers={"Retry-After": str(RETRY_AFTER_S)})


def envelope(status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any):
    body: dict[str, Any] = {"error": {"code": code, "message": message, **extra}}
    return JSONResponse(status_code=status, content=body, headers=headers)


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    # location and reason only: pydantic's "input" field would echo the caller's data into the response
    return [
        {"loc": [str(p) for p in err.get("loc", ())], "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in exc.errors()
    ]


def install(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError):
        return envelope(exc.status, exc.code, exc.message, exc.headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400:  # a body FastAPI or the form parser could not read: a bad request body,
            # answered as broken JSON is (422), the status every route documents for it
            return envelope(422, "invalid_request", "the request body cannot be parsed")
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return envelope(exc.status_code, code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        details = _validation_details(exc)
        first = details[0] if details else {"loc": [], "msg": "invalid request"}
        where = ".".join(first["loc"][1:] if len(first["loc"]) > 1 else first["loc"])
        message = f"{where}: {first['msg']}" if where else first["msg"]
        return envelope(422, "invalid_request", message, details=details)

    # the driver's ServiceUnavailable/SessionExpired are DriverErrors; GraphStore wraps failures that outlast
    # its retries in StoreError. From the caller's side all of them mean "the store is not answering".
    @app.exception_handler(DriverError)
    @app.exception_handler(StoreError)
    @app.exception_handler(ArcadeError)
    async def _store_down(request: Request, exc: Exception):
        log.warning("store unavailable", extra={"error_type": type(exc).__name__})
        down = StoreUnavailable()
        return envelope(down.status, down.code, down.message, down.headers)
