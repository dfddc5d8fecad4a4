"""The FastAPI app factory.

``create_app(settings)`` builds a self-contained app (its own metrics registry, keys, audit log and
connections), so tests and the server build it the same way. The lifespan opens the store and the face
index, and on graceful shutdown (SIGTERM/SIGINT through uvicorn) waits for a running job, saves the index and
closes the store.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from api.http import errors
from api.http.batcher import DecisionBatcher
from api.http.context import Context
from api.http.decisions import decide, warm_up
from api.http.middleware import RequestMiddleware
from api.http.routes import accounts, applications, faces, jobs, ops, rings
from api.settings import ApiSettings


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or ApiSettings()
    ctx = Context.create(settings)
    ctx.decisions = DecisionBatcher(
        partial(decide, ctx), queue_max=settings.decision_queue_max, after_pass=ctx.scoring.fold_pending
    )
    ctx.warm_up = warm_up

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(ctx.open)
        try:
            yield
        finally:
            await run_in_threadpool(ctx.close)

    app = FastAPI(
        title="ringwatch",
        version="0.1.0",
        summary="Synthetic-identity ring detection at onboarding: decisions, face search, investigations.",
        lifespan=lifespan,
    )
    app.state.ctx = ctx
    errors.install(app)
    app.add_middleware(
        RequestMiddleware,
        metrics=ctx.metrics,
        max_body_bytes=settings.max_body_bytes,
        max_upload_bytes=settings.max_upload_bytes,
    )
    app.include_router(ops.router)
    for module in (applications, faces, accounts, rings, jobs):
        app.include_router(module.router)
    return app
