"""The real-time decision: persist and link through ``graph.ingest``, score, answer.

``ingest_records`` validates, pseudonymises, searches and adds the face, and writes the account with its
signal and SAME_FACE links (a rejected record writes nothing). The account is then read back in its stored,
pseudonymised form, the shape the scorer expects, and scored against the scorer's cached graph; the score is
written onto the account last. If the store fails after ingest but before the score is written, a retry
of the same application finds it unchanged but unscored and finishes the job.

Idempotent on ``application_id``: an application already stored with the same content and a score is
answered from the store (``replayed``) and nothing is written.

Preparing a record is the costly CPU step, so it happens once (inside ``ingest_records``) and the read-back
costs one query instead of a second preparation.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from api.context import Context
from api.schemas import Application, DecisionOut, FaceMatch, RejectedOut, RingRef
from graph.ingest import RecordOutcome, ingest_records
from graph.schema import SAME_FACE, SIGNAL_BY_REL, SIGNALS
from graph.tables import ACCOUNT_COLUMNS

_SIGNAL_RELS = [s.rel for s in SIGNALS]
_SIGNAL_COLUMNS = [s.column for s in SIGNALS]

_READ_BACK = """
UNWIND $ids AS id
MATCH (a:Account {id: id})
OPTIONAL MATCH (a)-[r]->(s)
WHERE type(r) IN $rels
RETURN a.id AS application_id, a.created_at AS created_at, a.name_key AS name_key, a.dob_key AS dob_key,
       a.birth_year AS birth_year, a.liveness_score AS liveness_score,
       a.document_authenticity_score AS document_authenticity_score,
       collect([type(r), s.id]) AS links
"""

_STORED = f"""
UNWIND $ids AS id
MATCH (a:Account {{id: id}})
OPTIONAL MATCH (a)-[f:{SAME_FACE}]-(b:Account)
RETURN a.id AS id, a.risk_score AS risk_score, a.decision AS decision, a.ring_id AS ring_id,
       a.reasons AS reasons, a.model_version AS model_version, collect([b.id, f.similarity]) AS faces
"""

_SAVE_SCORES = """
UNWIND $rows AS row
MATCH (a:Account {id: row.id})
SET a.risk_score = row.risk_score, a.decision = row.decision, a.reasons = row.reasons,
    a.model_version = row.model_version, a.ring_id = coalesce(a.ring_id, row.ring_id)
"""


def decide(ctx: Context, applications: list[Application]) -> dict[str, DecisionOut | RejectedOut]:
    """Outcomes by application id (ids are unique within a call: the batcher and the batch route see to it)."""
    records = [a.model_dump(mode="json", exclude_none=True) for a in applications]
    store, index, scorer = ctx.store(), ctx.index(), ctx.scorer()
    threshold = ctx.face_threshold()
    with ctx.write_lock:
        result = ingest_records(
            records, ctx.settings, store, index, threshold=threshold, pseudonymiser=ctx.pseudonymiser()
        )
        if any(o.status in ("new", "updated") for o in result.records):
            ctx.mark_index_dirty()
    outcomes = [o for o in result.records if o.accepted]
    unchanged = [o.application_id for o in outcomes if o.status == "unchanged"]
    stored = {r["id"]: r for r in store.read(_STORED, ids=unchanged)} if unchanged else {}
    replayed = {i for i in unchanged if i in stored and stored[i]["risk_score"] is not None}
    to_score = [o for o in outcomes if o.application_id not in replayed]
    scores = _score(ctx, scorer, to_score)
    if scores:
        with ctx.write_lock:
            store.write(
                _SAVE_SCORES,
                rows=[
                    {"id": i, "risk_score": s.risk_score, "decision": s.decision, "reasons": s.reasons,
                     "ring_id": s.ring.id if s.ring else None, "model_version": s.model_version}
                    for i, s in scores.items()
                ],
            )  # fmt: skip
    out: dict[str, DecisionOut | RejectedOut] = {}
    for app, o in zip(applications, result.records, strict=True):
        if not o.accepted:
            out[app.application_id] = RejectedOut(application_id=app.application_id, reasons=o.reasons)
            ctx.metrics.ingested.labels("rejected").inc()
            continue
        decision = (
            _replay(ctx, stored[o.application_id], threshold)
            if o.application_id in replayed
            else scores[o.application_id]
        )
        out[app.application_id] = decision
        ctx.metrics.decisions.labels(decision.decision).inc()
        ctx.metrics.ingested.labels("replayed" if decision.replayed else o.status).inc()
    return out


def _score(ctx: Context, scorer, outcomes: list[RecordOutcome]) -> dict[str, DecisionOut]:
    if not outcomes:
        return {}
    ids = [o.application_id for o in outcomes]
    frame = _frame(ctx.store().read(_READ_BACK, ids=ids, rels=_SIGNAL_RELS))
    pairs = [(o.application_id, other, sim) for o in outcomes for other, sim in o.face_matches]
    same_face = pd.DataFrame(pairs, columns=["application_id", "match_id", "similarity"]) if pairs else None
    scored = scorer.score_new_accounts(frame, same_face)
    by_id = {str(r.application_id): r for r in scored.itertuples(index=False)}
    out = {}
    for o in outcomes:
        r = by_id[o.application_id]
        out[o.application_id] = DecisionOut(
            application_id=o.application_id,
            risk_score=round(float(r.risk_score), 6),
            decision=str(r.decision),
            ring=_ring(ctx, r.ring_id),
            face_matches=[
                FaceMatch(application_id=other, similarity=round(sim, 6), above_threshold=True)
                for other, sim in o.face_matches
            ],
            reasons=list(r.reasons),
            model_version=scorer.artifact.version,
            replayed=False,
        )
    return out


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Stored accounts in ``graph.prepare``'s column layout: one column per signal, holding its pseudonym."""
    records = []
    for row in rows:
        rec = {k: v for k, v in row.items() if k != "links"}
        for rel, signal in row["links"]:
            if rel is not None:
                rec[SIGNAL_BY_REL[rel].column] = signal
        records.append(rec)
    frame = pd.DataFrame(records)
    for col in _SIGNAL_COLUMNS:
        if col not in frame:
            frame[col] = None
    for col in ACCOUNT_COLUMNS:
        if col not in frame and col != "id":
            frame[col] = np.nan
    return frame


def _replay(ctx: Context, row: dict, threshold: float) -> DecisionOut:
    faces = sorted(((b, s) for b, s in row["faces"] if b is not None), key=lambda f: -(f[1] or 0))
    return DecisionOut(
        application_id=row["id"],
        risk_score=round(float(row["risk_score"]), 6),
        decision=row["decision"],
        ring=_ring(ctx, row["ring_id"]),
        face_matches=[
            FaceMatch(application_id=b, similarity=round(float(s), 6), above_threshold=float(s) >= threshold)
            for b, s in faces
        ],
        reasons=list(row["reasons"] or []),
        model_version=row["model_version"],
        replayed=True,
    )


def _ring(ctx: Context, ring_id: object) -> RingRef | None:
    if not isinstance(ring_id, str):  # None, or NaN from a pandas writer
        return None
    score, size = ctx.ring_info(ring_id)
    return RingRef(id=ring_id, score=score, size=size)
