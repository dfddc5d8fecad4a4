"""Investigator routes for rings: list (filtered, paginated), open one, confirm or dismiss it."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Depends, Path, Query

from api.http.auth import Principal, Role, require
from api.http.context import Context
from api.http.errors import ApiError
from api.http.routes.deps import AUTH, V1, errors, get_ctx
from api.http.schemas import FormingRing, ReviewIn, ReviewOut, RingDetail, RingPage, RingSummary
from graph.store import investigate, reviews

router = APIRouter(prefix=V1, tags=["investigation"])

RingId = Path(min_length=1, max_length=128)


@router.get(
    "/rings",
    response_model=RingPage,
    summary="Rings, best first, filtered by score, size and status",
    responses=errors(*AUTH, 422, 503),
)
def list_rings(
    min_score: float | None = Query(None, ge=0, le=1),
    min_size: int | None = Query(None, ge=1, le=1_000_000),
    max_size: int | None = Query(None, ge=1, le=1_000_000),
    status: Literal["open", "confirmed", "dismissed"] | None = Query(None),
    offset: int = Query(0, ge=0, le=1_000_000),
    limit: int = Query(50, ge=1, le=500),
    principal: Principal = Depends(require(Role.investigator)),
    ctx: Context = Depends(get_ctx),
) -> RingPage:
    ctx.audit.record(principal, "rings.list", "rings", offset=offset, limit=limit)
    filters = {"min_score": min_score, "min_size": min_size, "max_size": max_size, "status": status}
    items, total = investigate.rings(ctx.store(), filters, offset, limit)
    return RingPage(items=[RingSummary(**r) for r in items], total=total, offset=offset, limit=limit)


@router.get(
    "/rings/forming",
    response_model=list[FormingRing],
    summary="Ring candidates forming in the live stream since the last batch job, largest first",
    responses=errors(*AUTH, 422, 503),
)
def forming_rings(
    limit: int = Query(50, ge=1, le=500),
    principal: Principal = Depends(require(Role.investigator)),
    ctx: Context = Depends(get_ctx),
) -> list[FormingRing]:
    ctx.audit.record(principal, "rings.forming", "rings", limit=limit)
    return [FormingRing(**r) for r in ctx.scorer().forming_rings(limit)]


@router.get(
    "/rings/{ring_id}",
    response_model=RingDetail,
    summary="A ring: members, evidence, score history and reviews",
    responses=errors(*AUTH, 404, 422, 503, e404="no such ring"),
)
def get_ring(
    ring_id: str = RingId,
    principal: Principal = Depends(require(Role.investigator)),
    ctx: Context = Depends(get_ctx),
) -> RingDetail:
    ctx.audit.record(principal, "rings.read", f"ring:{ring_id}")
    store = ctx.store()
    found = investigate.ring(store, ring_id)
    if found is None:
        raise ApiError(404, "ring_not_found", "no such ring")
    return RingDetail(**found, reviews=reviews.reviews_of(store, ring_id))


@router.post(
    "/rings/{ring_id}/review",
    response_model=ReviewOut,
    status_code=201,
    summary="Confirm or dismiss a ring, with a reason; becomes training labels for the next `ringwatch train`",
    responses=errors(*AUTH, 404, 413, 422, 503, e404="no such ring"),
)
def review_ring(
    body: ReviewIn,
    ring_id: str = RingId,
    principal: Principal = Depends(require(Role.investigator)),
    ctx: Context = Depends(get_ctx),
) -> ReviewOut:
    ctx.audit.record(principal, "rings.review", f"ring:{ring_id}", decision=body.decision)
    with ctx.write_lock:
        saved = reviews.add_review(ctx.store(), ring_id, body.decision, principal.key_id, body.reason)
    if saved is None:
        raise ApiError(404, "ring_not_found", "no such ring")
    return ReviewOut(**saved)
