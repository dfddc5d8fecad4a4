"""Real-time decisions for the onboarding flow: one application, or a bounded batch."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Request

from api.http.auth import Principal, Role, require
from api.http.context import Context
from api.http.errors import ApiError
from api.http.routes.deps import V1, get_ctx
from api.http.schemas import Application, ApplicationBatch, BatchOut, DecisionOut, RejectedOut

router = APIRouter(prefix=V1, tags=["decisions"])

_ERRORS = {
    413: {"description": "body or batch too large"},
    422: {"description": "invalid application"},
    503: {"description": "store down or model not loaded; retry after Retry-After seconds"},
}


@router.post(
    "/applications",
    response_model=DecisionOut,
    summary="Decide on one application: persist, link, score; idempotent on application_id",
    responses=_ERRORS,
)
async def post_application(
    application: Application,
    principal: Principal = Depends(require(Role.ingest)),
    ctx: Context = Depends(get_ctx),
) -> DecisionOut:
    (outcome,) = await asyncio.wrap_future(ctx.decisions.submit([application]))
    if isinstance(outcome, RejectedOut):
        raise ApiError(422, "invalid_application", "; ".join(outcome.reasons))
    return outcome


async def _batch_size_guard(request: Request, ctx: Context = Depends(get_ctx)) -> None:
    """413 for an oversized batch before validating thousands of items; FastAPI has parsed (and cached)
    the JSON already, so this costs a lookup."""
    try:
        items = (await request.json()).get("applications")
    except (ValueError, AttributeError):
        return  # not a JSON object: validation answers 422
    if isinstance(items, list) and len(items) > ctx.settings.max_batch:
        raise ApiError(413, "batch_too_large", f"at most {ctx.settings.max_batch} applications per batch")


@router.post(
    "/applications:batch",
    response_model=BatchOut,
    summary="Decide on up to RINGWATCH_MAX_BATCH applications; invalid ones are listed and not written",
    responses=_ERRORS,
    dependencies=[Depends(require(Role.ingest)), Depends(_batch_size_guard)],
)
async def post_batch(batch: ApplicationBatch, ctx: Context = Depends(get_ctx)) -> BatchOut:
    ids = [a.application_id for a in batch.applications]
    if len(set(ids)) != len(ids):
        raise ApiError(422, "duplicate_application_id", "application_id must be unique within a batch")
    outcomes = await asyncio.wrap_future(ctx.decisions.submit(batch.applications))
    return BatchOut(
        results=[o for o in outcomes if isinstance(o, DecisionOut)],
        rejected=[o for o in outcomes if isinstance(o, RejectedOut)],
    )
