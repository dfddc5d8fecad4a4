"""1:N face search: which applications share this face?

One route takes either a JSON embedding or an uploaded selfie (multipart), because investigators have one or
the other; the uploaded image is embedded by the built-in extractor and never stored.
"""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Depends, Request
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from api.http.auth import Principal, Role, require
from api.http.context import Context
from api.http.errors import ApiError
from api.http.routes.deps import AUTH, V1, errors, get_ctx
from api.http.schemas import FaceMatch, FaceSearchIn, FaceSearchOut
from graph.contract.validate import as_embedding

router = APIRouter(prefix=V1, tags=["faces"])

_OPENAPI_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": FaceSearchIn.model_json_schema(ref_template="#/components/schemas/{model}")
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["image"],
                    "properties": {
                        "image": {"type": "string", "format": "binary", "description": "a selfie (JPEG/PNG)"},
                        "k": {"type": "integer", "minimum": 1, "maximum": 100, "default": 10},
                    },
                }
            },
        },
    }
}


@router.post(
    "/faces/search",
    response_model=FaceSearchOut,
    summary="Top-k applications with the most similar face (embedding or uploaded image)",
    openapi_extra=_OPENAPI_BODY,
    responses=errors(
        *AUTH,
        413,
        415,
        422,
        503,
        e413="body or image upload too large (RINGWATCH_MAX_BODY_BYTES, RINGWATCH_MAX_UPLOAD_BYTES)",
        e422="invalid body or embedding, unreadable image, too many pixels, or no face found",
        e503="face index, threshold or extractor not available",
    ),
)
async def search_faces(
    request: Request,
    principal: Principal = Depends(require(Role.investigator)),
    ctx: Context = Depends(get_ctx),
) -> FaceSearchOut:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        vector, k = await _from_image(request, ctx)
    elif content_type in ("application/json", ""):
        query = _parse_json(await request.body())
        vector, k = query.embedding, query.k
    else:
        raise ApiError(415, "unsupported_media_type", "send application/json or multipart/form-data")
    index = ctx.index()
    try:  # the applications' own check: finite, the index's dimension, and a float32 norm to divide by
        vector = as_embedding(vector, index.dim)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", f"embedding: {exc}") from exc
    try:
        hits = await run_in_threadpool(index.search, vector, k)
    except ValueError as exc:  # anything else the index refuses
        raise ApiError(422, "invalid_request", str(exc)) from exc
    ctx.metrics.face_searches.inc()
    ctx.audit.record(principal, "faces.search", "faces", k=k)
    threshold = ctx.face_threshold()
    return FaceSearchOut(
        threshold=threshold,
        matches=[
            FaceMatch(
                application_id=face_id,
                similarity=round(sim, 6),
                above_threshold=sim >= threshold,
            )
            for face_id, sim in hits[0]
        ],
    )


def _parse_json(body: bytes) -> FaceSearchIn:
    try:
        return FaceSearchIn.model_validate_json(body or b"null")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise ApiError(422, "invalid_request", f"{where}: {first['msg']}" if where else first["msg"]) from exc


async def _from_image(request: Request, ctx: Context) -> tuple[np.ndarray, int]:
    form = await request.form(max_files=1, max_fields=4)
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise ApiError(422, "invalid_request", "image: a file field named 'image' is required")
    try:
        k = int(form.get("k") or 10)
    except ValueError as exc:
        raise ApiError(422, "invalid_request", "k: must be an integer") from exc
    if not 1 <= k <= 100:
        raise ApiError(422, "invalid_request", "k: must be between 1 and 100")
    limit = ctx.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise ApiError(
            413, "upload_too_large", f"the image exceeds {limit} bytes (RINGWATCH_MAX_UPLOAD_BYTES)"
        )
    vector = await run_in_threadpool(ctx.embed_image, data)
    return vector, k
