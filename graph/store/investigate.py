"""Ring reads that ``graph.store.queries`` does not provide (filters, pagination, review status, score history)
and the score-history write of the API's scoring job. Parameterised Cypher only; labels and relationship
types come from ``graph.schema``, never from request data.
"""

from __future__ import annotations

import json

from graph.store import queries
from graph.store.bolt import GraphStore


def _clean(row: dict) -> dict:
    """NaN means "no value" to pandas writers; JSON and the response models want null."""
    return {k: None if isinstance(v, float) and v != v else v for k, v in row.items()}


_RING_FILTER = """
MATCH (r:Ring)
WHERE ($min_score IS NULL OR r.score >= $min_score)
  AND ($min_size IS NULL OR r.size >= $min_size)
  AND ($max_size IS NULL OR r.size <= $max_size)
  AND ($status IS NULL OR coalesce(r.status, 'open') = $status)
"""

_RING_PAGE = (
    _RING_FILTER
    + """
RETURN r.id AS id, r.score AS score, r.size AS size, coalesce(r.status, 'open') AS status,
       r.first_seen AS first_seen, r.last_seen AS last_seen
ORDER BY r.score DESC, r.id
SKIP $offset LIMIT $limit
"""
)

_RING_COUNT = _RING_FILTER + "RETURN count(r) AS total"

_RING = """
MATCH (r:Ring {id: $id})
RETURN coalesce(r.status, 'open') AS status, r.first_seen AS first_seen, r.last_seen AS last_seen,
       r.evidence AS evidence, r.score_at AS score_at, r.score_values AS score_values, r.scored_at AS scored_at
"""

_APPEND_HISTORY = """
UNWIND $rows AS row
MATCH (r:Ring {id: row.id})
SET r.score_at = coalesce(r.score_at, []) + [$at], r.score_values = coalesce(r.score_values, []) + [row.score],
    r.scored_at = $at
"""


def rings(store: GraphStore, filters: dict, offset: int, limit: int) -> tuple[list[dict], int]:
    page = [_clean(r) for r in store.read(_RING_PAGE, offset=offset, limit=limit, **filters)]
    total = store.read(_RING_COUNT, **filters)
    return page, int(total[0]["total"]) if total else 0


def ring(store: GraphStore, ring_id: str) -> dict | None:
    """Members and shared-signal evidence from ``graph.store.queries``, plus status, face evidence and history."""
    detail = queries.ring_members(store, ring_id)
    rows = store.read(_RING, id=ring_id)
    if detail is None or not rows:
        return None
    extra = _clean(rows[0])
    stored = json.loads(extra["evidence"] or "{}")
    at, values = extra["score_at"] or [], extra["score_values"] or []
    history = [{"at": a, "score": float(v)} for a, v in zip(at, values, strict=False)]
    if not history and detail.score is not None:
        # scored only by `ringwatch score`, which keeps no history: the current score is all there is
        history = [{"at": extra["scored_at"] or extra["last_seen"] or "", "score": float(detail.score)}]
    return {
        **detail.model_dump(),
        "status": extra["status"],
        "first_seen": extra["first_seen"],
        "last_seen": extra["last_seen"],
        "face_matches": stored.get("face_matches"),
        "score_history": history,
    }


def append_score_history(store: GraphStore, ring_scores: list[dict], at: str) -> None:
    """Ring ids are stable for the same members, so a ring re-found by a later run extends its history."""
    for start in range(0, len(ring_scores), 5000):
        store.write(_APPEND_HISTORY, rows=ring_scores[start : start + 5000], at=at)
