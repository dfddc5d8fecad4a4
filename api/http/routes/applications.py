"""Real-time decisions for the onboarding flow: one application, or a bounded batch.

Both go through the decision batcher under admission control (``api.http.batcher``): a request that finds
RINGWATCH_DECISION_QUEUE_MAX requests waiting, or that is not answered within RINGWATCH_DECISION_DEADLINE_MS
of its arrival, gets 503 with Retry-After, counted in ``ringwatch_decisions_shed_total``.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request

from api.http.auth import Principal, Role, require
from api.http.batcher import NOT_STARTED, Shed, wait_until
from api.http.context import Context
from api.http.errors import ApiError
from api.http.routes.deps import AUTH, V1, errors, get_ctx
from api.http.schemas import Application, ApplicationBatch, BatchOut, DecisionOut, RejectedOut

router = APIRouter(prefix=V1, tags=["decisions"])

SHED_RETRY_AFTER_S = 1  # overload clears in about a pass, not the seconds a store outage takes

_ERRORS = errors(
    *AUTH,
    413,
    422,
    503,
    e413="body or batch too large",
    e422="invalid application",
    e503="store down, model not loaded, or overloaded (queue full or deadline passed); retry after "
    "Retry-After seconds",
)


async def _decide(request: Request, ctx: Context, applications: list[Application]) -> list:
    """The outcomes of ``applications``, or 503 once the request's deadline (from its arrival) passes."""
    received = getattr(request.state, "received_at", None) or time.monotonic()
    deadline = received + ctx.settings.decision_deadline_ms / 1000
    try:
        if time.monotonic() > deadline:
            raise Shed("deadline", NOT_STARTED)
        return await wait_until(ctx.decisions.submit(applications, deadline), deadline)
    except Shed as shed:
        ctx.metrics.shed.labels(shed.reason).inc()
        raise ApiError(
            503, "overloaded", shed.message, headers={"Retry-After": str(SHED_RETRY_AFTER_S)}
        ) from None


@router.post(
    "/applications",
    response_model=DecisionOut,
    summary="Decide on one application: persist, link, score; idempotent on application_id",
    responses=_ERRORS,
)
async def post_application(
    application: Application,
    request: Request,
    principal: Principal = Depends(require(Role.ingest)),
    ctx: Context = Depends(get_ctx),
) -> DecisionOut:
    (outcome,) = await _decide(request, ctx, [application])
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
async def post_batch(batch: ApplicationBatch, request: Request, ctx: Context = Depends(get_ctx)) -> BatchOut:
    ids = [a.application_id for a in batch.applications]
    if len(set(ids)) != len(ids):
        raise ApiError(422, "duplicate_application_id", "application_id must be unique within a batch")
    outcomes = await _decide(request, ctx, batch.applications)
    return BatchOut(
        results=[o for o in outcomes if isinstance(o, DecisionOut)],
        rejected=[o for o in outcomes if isinstance(o, RejectedOut)],
    )
