"""The Cypher that ingest, scoring write-back and the real-time path run, in one place beside the store.

Every statement takes parameters; labels and relationship types come from ``graph.schema``, never from
input. Investigator reads live in ``graph.store.queries`` and ``graph.store.investigate``.
"""

from __future__ import annotations

from graph import schema
from graph.schema import MEMBER_OF, SAME_FACE


def _signal_merges() -> list[str]:
    return [
        f"FOREACH (x IN row.{s.column} | MERGE (n:{s.label} {{id: x}}) MERGE (a)-[:{s.rel}]->(n))"
        for s in schema.SIGNALS
    ]


# ---- ingest (bulk) --------------------------------------------------------------------------------------
ACCOUNT = " ".join(
    ["UNWIND $rows AS row MERGE (a:Account {id: row.id}) SET a += row.props", *_signal_merges()]
)
CLEAR = (
    "UNWIND $rows AS row MATCH (a:Account {id: row.id}) REMOVE a.content_hash "
    "WITH a OPTIONAL MATCH (a)-[r]-() WHERE type(r) IN $rels DELETE r"
)
FACE_LINK = (
    "UNWIND $rows AS row MATCH (a:Account {id: row.a}) MATCH (b:Account {id: row.b}) "
    f"MERGE (a)-[r:{SAME_FACE}]->(b) SET r.similarity = row.similarity"
)
# the face and the hash travel together, last: a row with its hash is complete
DONE = "UNWIND $rows AS row MATCH (a:Account {id: row.id}) SET a.face = row.face, a.content_hash = row.hash"
HASHES = "UNWIND $ids AS id MATCH (a:Account {id: id}) RETURN a.id AS id, a.content_hash AS h"
FACE_COUNT = "MATCH (a:Account) WHERE a.face IS NOT NULL RETURN count(a) AS n"
FACE_IDS = "MATCH (a:Account) WHERE a.face IS NOT NULL RETURN a.id AS id"
FACES = (
    "UNWIND $ids AS id MATCH (a:Account {id: id}) WHERE a.face IS NOT NULL RETURN a.id AS id, a.face AS face"
)

# ---- ingest (real time): a handful of records in one transaction -----------------------------------------
ONE_SHOT = " ".join(
    [
        "UNWIND $rows AS row MERGE (a:Account {id: row.id})",
        # an updated account drops what it owned before it is written again
        "WITH a, row OPTIONAL MATCH (a)-[old]-() WHERE row.clear AND type(old) IN $rels DELETE old",
        # a ring found for an account never overrides the one batch scoring drew
        "WITH DISTINCT a, row SET a += row.props, a.ring_id = coalesce(a.ring_id, row.ring_id)",
        *_signal_merges(),
        "FOREACH (f IN row.face_out | MERGE (b:Account {id: f.id}) "
        f"MERGE (a)-[r:{SAME_FACE}]->(b) SET r.similarity = f.similarity)",
        "FOREACH (f IN row.face_in | MERGE (b:Account {id: f.id}) "
        f"MERGE (b)-[r:{SAME_FACE}]->(a) SET r.similarity = f.similarity)",
    ]
)
# what a decision needs to know of ids already stored (replays, re-scores)
STORED_DECISIONS = f"""
UNWIND $ids AS id
MATCH (a:Account {{id: id}})
OPTIONAL MATCH (a)-[f:{SAME_FACE}]-(b:Account)
RETURN a.id AS id, a.content_hash AS content_hash, a.risk_score AS risk_score, a.decision AS decision,
       a.ring_id AS ring_id, a.reasons AS reasons, a.model_version AS model_version,
       collect([b.id, f.similarity]) AS faces
"""

# ---- scoring write-back -----------------------------------------------------------------------------------
SET_SCORES = (
    "UNWIND $rows AS row MATCH (a:Account {id: row.id}) "
    "SET a.risk_score = row.risk, a.decision = row.decision, a.ring_id = row.ring_id"
)
DROP_MEMBERSHIPS = f"MATCH (:Account)-[m:{MEMBER_OF}]->(:Ring) DELETE m"
MERGE_RINGS = (
    "UNWIND $rows AS row MERGE (r:Ring {id: row.id}) "
    "SET r.score = row.score, r.size = row.size, r.reasons = row.reasons, r.evidence = row.evidence, "
    "r.first_seen = row.first_seen, r.last_seen = row.last_seen"
)
MERGE_MEMBERSHIPS = (
    "UNWIND $rows AS row MATCH (a:Account {id: row.account}) MATCH (r:Ring {id: row.ring}) "
    f"MERGE (a)-[:{MEMBER_OF}]->(r)"
)
DROP_EMPTY_RINGS = f"MATCH (r:Ring) WHERE NOT (r)<-[:{MEMBER_OF}]-() AND NOT (r)-[:REVIEWED]-() DELETE r"
RING_OF = "MATCH (a:Account) WHERE a.ring_id IS NOT NULL RETURN a.id AS id, a.ring_id AS ring_id"
RINGS = "MATCH (r:Ring) RETURN r.id AS id, r.score AS score, r.size AS size"
