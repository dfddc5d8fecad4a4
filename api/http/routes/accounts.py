"""Investigator reads of one account: its profile and its bounded neighbourhood. Every read is audited."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Query

from api.http.auth import Principal, Role, require
from api.http.context import Context
from api.http.errors import ApiError
from api.http.routes.deps import AUTH, V1, errors, get_ctx
from graph.store import queries

router = APIRouter(prefix=V1, tags=["investigation"])

AccountId = Path(min_length=1, max_length=128)


@router.get(
    "/accounts/{account_id}",
    response_model=queries.AccountProfile,
    summary="An account: risk, ring, its signals with how many others share each, its face links",
    responses=errors(*AUTH, 404, 422, 503, e404="no such account"),
)
def get_account(
    account_id: str = AccountId,
    principal: Principal = Depends(require(Role.investigator)),
    ctx: Context = Depends(get_ctx),
) -> queries.AccountProfile:
    ctx.audit.record(principal, "accounts.read", f"account:{account_id}")
    found = queries.account_profile(ctx.store(), account_id)
    if found is None:
        raise ApiError(404, "account_not_found", "no such account")
    return found


@router.get(
    "/accounts/{account_id}/neighbourhood",
    response_model=queries.Neighbourhood,
    summary="The account's k-hop neighbourhood as nodes and edges; hubs shown but not expanded",
    responses=errors(*AUTH, 404, 422, 503, e404="no such account"),
)
def get_neighbourhood(
    account_id: str = AccountId,
    hops: int = Query(2, ge=1, le=queries.MAX_HOPS),
    max_nodes: int = Query(300, ge=1, le=2000, description="cap on nodes in the answer"),
    hub_degree: int = Query(50, ge=1, le=10_000, description="nodes with more links are not expanded"),
    principal: Principal = Depends(require(Role.investigator)),
    ctx: Context = Depends(get_ctx),
) -> queries.Neighbourhood:
    ctx.audit.record(principal, "accounts.neighbourhood", f"account:{account_id}", hops=hops)
    found = queries.neighbourhood(
        ctx.store(), account_id, hops=hops, max_nodes=max_nodes, hub_degree=hub_degree
    )
    if found is None:
        raise ApiError(404, "account_not_found", "no such account")
    return found
