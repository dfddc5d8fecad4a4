"""Batch scores and rings into the graph: ``Account.risk_score``, ``Ring`` nodes and ``MEMBER_OF``."""

from __future__ import annotations

import json

from graph.store import cypher


def write_back(store, result, batch_size: int | None = None) -> dict[str, int]:
    """``result``: a ``graph.learn.scoring.ScoreResult``. Previous memberships are replaced; rings that lost
    all members and were never reviewed are removed."""
    acc_rows = [
        {"id": a, "risk": float(r), "decision": d, "ring_id": g}
        for a, r, d, g in result.scores[["application_id", "risk_score", "decision", "ring_id"]].itertuples(
            index=False, name=None
        )
    ]
    n_acc = store.write_batches(cypher.SET_SCORES, acc_rows, batch_size)
    store.write(cypher.DROP_MEMBERSHIPS)
    ring_rows = [
        {
            "id": r.id,
            "score": float(r.score),
            "size": int(r.size),
            "reasons": list(r.reasons),
            "evidence": json.dumps(r.evidence),
            "first_seen": r.first_seen,
            "last_seen": r.last_seen,
        }
        for r in result.rings
    ]
    n_ring = store.write_batches(cypher.MERGE_RINGS, ring_rows, batch_size)
    member_rows = [{"account": m, "ring": r.id} for r in result.rings for m in r.members]
    n_mem = store.write_batches(cypher.MERGE_MEMBERSHIPS, member_rows, batch_size)
    store.write(cypher.DROP_EMPTY_RINGS)
    return {"accounts": n_acc, "rings": n_ring, "memberships": n_mem}
