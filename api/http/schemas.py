"""Request and response models: the API's contract, and what OpenAPI (and schemathesis) see.

Field rules mirror the data contract (DESIGN.md §2). The graph layer validates again, because the same rules
apply to files; here they give callers a precise 422 before anything is written.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from graph.store import queries

Id = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
]
Text = Annotated[str, StringConstraints(max_length=512)]
Score01 = Annotated[float, Field(ge=0.0, le=1.0)]
Decision = Literal["approve", "review", "decline"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")  # e.g. ``details`` of a 422, ``checks`` of /readyz

    code: str = Field(description="stable, machine-readable")
    message: str = Field(description="for people; never echoes the request")


class ErrorOut(BaseModel):
    """The envelope of every 4xx and 5xx answer."""

    error: ErrorDetail


class Application(Strict):
    """One onboarding application. PII fields are normalised and pseudonymised before they are stored."""

    application_id: Id
    created_at: datetime = Field(description="ISO-8601; without an offset it is taken as UTC")
    full_name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    date_of_birth: date
    national_id: Text | None = None
    email: Text | None = None
    phone: Text | None = None
    address: Text | None = None
    ip: Text | None = None
    device_id: Text | None = None
    document_number: Text | None = None
    document_type: Text | None = None
    document_country: Text | None = None
    document_template: Text | None = None
    face_embedding: list[float] | None = Field(
        default=None, max_length=4096, description="the deployment's face dimension (RINGWATCH_FACE_DIM)"
    )
    liveness_score: Score01 | None = None
    document_authenticity_score: Score01 | None = None


class ApplicationBatch(Strict):
    applications: list[Application] = Field(min_length=1, description="at most RINGWATCH_MAX_BATCH items")


class RingRef(BaseModel):
    id: str
    score: float | None = None
    size: int | None = None


class FaceMatch(BaseModel):
    application_id: str
    similarity: float
    above_threshold: bool


class DecisionOut(BaseModel):
    application_id: str
    risk_score: float
    decision: Decision
    ring: RingRef | None = None
    face_matches: list[FaceMatch] = Field(default=[], description="existing applications with the same face")
    reasons: list[str] = Field(default=[], description="the shared signals and face matches behind the score")
    model_version: str | None = None
    replayed: bool = Field(description="true when this application_id was already ingested with this content")


class RejectedOut(BaseModel):
    application_id: str | None
    reasons: list[str] = Field(description="column and reason; raw values are never echoed")


class BatchOut(BaseModel):
    results: list[DecisionOut] = Field(description="decisions for the accepted applications, in input order")
    rejected: list[RejectedOut] = Field(
        description="applications that failed validation; nothing was written"
    )


class FaceSearchIn(Strict):
    embedding: list[float] = Field(min_length=1, max_length=4096)
    k: int = Field(default=10, ge=1, le=100)


class FaceSearchOut(BaseModel):
    threshold: float = Field(description="the calibrated SAME_FACE cosine threshold")
    matches: list[FaceMatch]


class RingSummary(BaseModel):
    id: str
    score: float | None = None
    size: int | None = None
    status: Literal["open", "confirmed", "dismissed"] = "open"
    first_seen: str | None = None
    last_seen: str | None = None


class FormingRing(BaseModel):
    id: str = Field(description="a live- id, named by the first decision that formed it")
    size: int = Field(description="accounts linked into it so far")
    answered: int = Field(description="decisions answered with this candidate")
    members: list[str] = Field(description="application ids answered with it (at most 100)")


class RingPage(BaseModel):
    items: list[RingSummary]
    total: int
    offset: int
    limit: int


class ReviewOut(BaseModel):
    id: str
    decision: Literal["confirmed", "dismissed"]
    by: str
    at: str
    reason: str


class ScorePoint(BaseModel):
    at: str
    score: float


class RingDetail(RingSummary):
    members: list[queries.RingMember]
    evidence: list[queries.RingEvidence] = Field(description="signals two or more members share")
    face_matches: int | None = Field(default=None, description="face matches between members (last scoring)")
    reasons: list[str] = []
    score_history: list[ScorePoint]
    reviews: list[ReviewOut]


class ReviewIn(Strict):
    decision: Literal["confirm", "dismiss"]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=2000)]


class JobOut(BaseModel):
    id: str
    kind: str
    status: Literal["queued", "running", "succeeded", "failed"]
    submitted_at: float
    started_at: float | None = None
    finished_at: float | None = None
    result: dict | None = None
    error: str | None = None
