"""The outermost request layer: request ids, body-size limit, latency metrics, one access log line, and a
last-resort guard that answers an unexpected error with the standard envelope instead of a stack trace.

Written as plain ASGI (not ``BaseHTTPMiddleware``) so it adds little latency and can stop an oversized body
while it streams in.
"""

from __future__ import annotations

import json
import logging
import time
import uuid

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.http.metrics import Metrics

log = logging.getLogger("ringwatch.api.access")

# room for a multipart form's boundaries, headers and small fields beside its one file
FORM_OVERHEAD_BYTES = 64 * 1024


def _error_body(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}).encode()


class RequestMiddleware:
    """``max_body_bytes`` bounds every body but a multipart upload's, which ``max_upload_bytes`` bounds (plus
    the form's own bytes): a selfie is larger than any JSON body needs to be. The route then checks the file
    itself against ``max_upload_bytes``."""

    def __init__(self, app: ASGIApp, metrics: Metrics, max_body_bytes: int, max_upload_bytes: int = 0):
        self.app = app
        self.metrics = metrics
        self.max_body_bytes = max_body_bytes
        self.max_form_bytes = max(max_body_bytes, max_upload_bytes + FORM_OVERHEAD_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # where request deadlines count from (``request.state.received_at``)
        scope.setdefault("state", {})["received_at"] = time.monotonic()
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        limit = self.max_form_bytes if _is_multipart(scope) else self.max_body_bytes
        try:
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                await self._reply(send_wrapper, 413, "payload_too_large", _too_large_message(limit))
            else:
                await self.app(scope, self._limited(receive, limit), send_wrapper)
        except Exception as exc:  # the guard: nothing escapes as a stack trace
            log.error(
                "unhandled error",
                extra={"request_id": request_id, "route": _route(scope)},
                exc_info=exc,
            )
            if not response_started:
                await self._reply(send_wrapper, 500, "internal_error", "internal error")
        finally:
            elapsed = time.perf_counter() - started
            route = _route(scope)
            self.metrics.latency.labels(route, scope["method"], str(status)).observe(elapsed)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": route,
                    "status": status,
                    "ms": round(elapsed * 1000, 2),
                },
            )

    @staticmethod
    def _limited(receive: Receive, limit: int) -> Receive:
        received = 0

        async def wrapped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # FastAPI re-raises HTTPException from body reading; our handler renders the envelope
                    raise HTTPException(413, _too_large_message(limit))
            return message

        return wrapped

    @staticmethod
    async def _reply(send: Send, status: int, code: str, message: str) -> None:
        body = _error_body(code, message)
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _too_large_message(limit: int) -> str:
    return f"request body exceeds {limit} bytes"


def _is_multipart(scope: Scope) -> bool:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"multipart/form-data"
    return False


def _route(scope: Scope) -> str:
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _incoming_request_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            # only echo ids that are safe to log and to put back in a header
            if 0 < len(text) <= 64 and all(c.isalnum() or c in "-_." for c in text):
                return text
    return None
