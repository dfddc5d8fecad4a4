"""Small shared dependencies for routes."""

from __future__ import annotations

from fastapi import Request

from api.http.context import Context

V1 = "/v1"


def get_ctx(request: Request) -> Context:
    return request.app.state.ctx
