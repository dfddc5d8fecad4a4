"""Small shared dependencies for routes, and the error answers their OpenAPI entries document."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from api.http.context import Context
from api.http.schemas import ErrorOut

V1 = "/v1"

_ERRORS = {
    401: "missing or unknown API key",
    403: "the key's role does not allow this route",
    404: "not found",
    409: "conflict",
    413: "request body too large",
    415: "unsupported content type",
    422: "invalid request",
    503: "the store (or another part it needs) is unavailable; retry after Retry-After seconds",
}


def errors(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the error envelope under each status it can answer, described as
    ``_ERRORS`` says, or as given (``described``: ``e404="no such ring"``)."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = {"model": ErrorOut, "description": described.get(f"e{code}", _ERRORS[code])}
        if code == 503:
            out[code]["headers"] = {
                "Retry-After": {
                    "description": "seconds to wait before retrying",
                    "schema": {"type": "integer"},
                }
            }
    return out


AUTH = (401, 403)


def get_ctx(request: Request) -> Context:
    return request.app.state.ctx
