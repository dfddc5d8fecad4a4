"""Operational endpoints: liveness, readiness and Prometheus metrics. Unversioned and unauthenticated, as
orchestrators and scrapers expect; they expose no data."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.http.context import Context
from api.http.errors import RETRY_AFTER_S, envelope
from api.http.routes.deps import errors, get_ctx

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    store: bool
    face_index: bool
    scorer: bool = Field(description="false while a trained model is still loading (or failed to load)")


@router.get("/healthz", response_model=Health, summary="The process is up")
def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The store answers, the face index is loaded, and the model (if one is trained) is loaded",
    responses=errors(503, e503="not ready: the checks say which part is down"),
)
async def readyz(ctx: Context = Depends(get_ctx)):
    checks = await run_in_threadpool(ctx.ready)
    if all(checks.values()):
        return Readiness(status="ready", **checks)
    down = ", ".join(name for name, ok in checks.items() if not ok)
    return envelope(
        503, "not_ready", f"not ready: {down}", {"Retry-After": str(RETRY_AFTER_S)}, checks=checks
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(ctx: Context = Depends(get_ctx)) -> Response:
    return Response(ctx.metrics.render(), media_type=CONTENT_TYPE_LATEST)
