"""Case reviews on the graph: the one write the API originates besides ingest.

Contract with ``graph/learn/training.py`` (labels for the next ``ringwatch train``): a review is a node
``(Ring)-[:REVIEWED]->(Review {id, ring_id, decision, by, at, reason, members})`` where ``decision`` is
``confirmed`` or ``dismissed`` and ``members`` holds the ring's account ids at review time, because a later
scoring run may redraw the ring. Confirmed members are positives, dismissed ones negatives; the newest review
of a ring wins. ``review_labels`` reads them back in the shape ``ringwatch train --labels`` takes.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pandas as pd

from graph.schema import MEMBER_OF, REVIEW_LABEL, REVIEWED
from graph.store.bolt import GraphStore

DECISION_OF = {"confirm": "confirmed", "dismiss": "dismissed"}

_WRITE = f"""
MATCH (r:Ring {{id: $ring_id}})
OPTIONAL MATCH (a:Account)-[:{MEMBER_OF}]->(r)
WITH r, collect(a.id) AS members
CREATE (r)-[:{REVIEWED}]->(v:{REVIEW_LABEL} {{
  id: $id, ring_id: $ring_id, decision: $decision, by: $by, at: $at, reason: $reason,
  members: members, ring_score: r.score
}})
SET r.status = $decision, r.reviewed_at = $at
RETURN v.id AS id, v.decision AS decision, v.by AS by, v.at AS at, v.reason AS reason, size(members) AS n
"""

_READ = f"""
MATCH (r:Ring {{id: $ring_id}})-[:{REVIEWED}]->(v:{REVIEW_LABEL})
RETURN v.id AS id, v.decision AS decision, v.by AS by, v.at AS at, v.reason AS reason
ORDER BY v.at DESC
"""


def add_review(store: GraphStore, ring_id: str, action: str, by: str, reason: str) -> dict | None:
    """Record a review; None when the ring does not exist. ``by`` is the reviewer's key id, not a name."""
    rows = store.write(
        _WRITE,
        ring_id=ring_id,
        id=uuid.uuid4().hex,
        decision=DECISION_OF[action],
        by=by,
        at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        reason=reason,
    )
    return rows[0] if rows else None


def reviews_of(store: GraphStore, ring_id: str) -> list[dict]:
    return store.read(_READ, ring_id=ring_id)


_LABELS = f"""
MATCH (v:{REVIEW_LABEL})
RETURN v.ring_id AS ring_id, v.decision AS decision, v.at AS at, v.members AS members
ORDER BY v.at
"""


def review_labels(store: GraphStore) -> pd.DataFrame:
    """``application_id, label`` from case reviews, for ``ringwatch train``: members of a confirmed ring are
    1, of a dismissed ring 0. The newest review of a ring wins, and an account in several reviewed rings
    takes its newest label."""
    labels: dict[str, int] = {}
    for row in store.read(_LABELS):  # oldest first, so later reviews overwrite
        for member in row["members"] or []:
            labels[member] = 1 if row["decision"] == "confirmed" else 0
    return pd.DataFrame({"application_id": list(labels), "label": list(labels.values())})
