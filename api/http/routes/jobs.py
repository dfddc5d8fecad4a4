"""Background batch scoring: score every account, redraw the rings, write them back. One job at a time."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path

from api.http.auth import Principal, Role, require
from api.http.context import Context
from api.http.errors import ApiError
from api.http.jobs import Job, JobBusy
from api.http.routes.deps import AUTH, V1, errors, get_ctx
from api.http.schemas import JobOut

router = APIRouter(prefix=V1, tags=["jobs"])


def _out(job: Job) -> JobOut:
    return JobOut(**{k: getattr(job, k) for k in JobOut.model_fields})


@router.post(
    "/jobs/score",
    response_model=JobOut,
    status_code=202,
    summary="Start batch scoring in the background (409 while one runs)",
    responses=errors(*AUTH, 409, 503, e409="a job is already running"),
)
def start_scoring(
    principal: Principal = Depends(require(Role.admin)), ctx: Context = Depends(get_ctx)
) -> JobOut:
    store = ctx.store()  # 503 now rather than a failed job later
    try:
        job = ctx.jobs.submit("score", lambda: ctx.run_batch_scoring(store))
    except JobBusy as busy:
        raise ApiError(409, "job_running", f"job {busy.running.id} is still running") from busy
    return _out(job)


@router.get(
    "/jobs/{job_id}",
    response_model=JobOut,
    summary="A job's status and result",
    responses=errors(*AUTH, 404, 422, e404="no such job"),
)
def get_job(
    job_id: str = Path(max_length=64),
    principal: Principal = Depends(require(Role.admin)),
    ctx: Context = Depends(get_ctx),
) -> JobOut:
    job = ctx.jobs.get(job_id)
    if job is None:
        raise ApiError(404, "job_not_found", "no such job")
    return _out(job)
