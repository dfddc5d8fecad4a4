"""Investigator reads over the identity graph: parameterised Cypher, plain pydantic answers.

Hubs are the hazard: a carrier NAT IP or an official document template is shared by thousands of honest
people, so every query that walks through a signal checks its degree first and reports a hub instead of
expanding it. Labels and relationship types come from ``graph.schema``, never from callers.
"""

from __future__ import annotations

from collections import defaultdict

from pydantic import BaseModel, Field

from graph import schema
from graph.store.bolt import GraphStore

SIGNAL_RELS = [s.rel for s in schema.SIGNALS]
LABEL_OF_REL = {s.rel: s.label for s in schema.SIGNALS}
MAX_HOPS = 4
# properties safe and useful to show for a node in a neighbourhood (never the face vector)
_NODE_PROPS = "m.risk_score AS risk_score, m.ring_id AS ring_id, m.decision AS decision, m.score AS score, m.size AS size"


class SignalShare(BaseModel):
    rel: str
    label: str
    signal: str = Field(description="pseudonym of the signal value")
    shared_with: int = Field(description="other accounts on this signal")


class FaceMatch(BaseModel):
    account_id: str
    similarity: float | None


class AccountProfile(BaseModel):
    id: str
    created_at: int | None = None
    created_at_iso: str | None = None
    risk_score: float | None = None
    decision: str | None = None
    ring_id: str | None = None
    known_ring_id: str | None = None
    label: float | None = None
    liveness_score: float | None = None
    document_authenticity_score: float | None = None
    signals: list[SignalShare] = []
    face_matches: list[FaceMatch] = []
    rings: list[str] = []


class GraphNode(BaseModel):
    id: str
    label: str
    properties: dict = {}
    degree: int | None = None
    expanded: bool = False


class GraphEdge(BaseModel):
    source: str
    target: str
    type: str
    properties: dict = {}


class Neighbourhood(BaseModel):
    nodes: list[GraphNode]
    edges: list[GraphEdge]
    truncated: bool = Field(description="true when a hub was left unexpanded or the node cap was reached")


class SharedEvidence(BaseModel):
    rel: str
    label: str
    signal: str


class SharingAccount(BaseModel):
    account_id: str
    shared: list[SharedEvidence] = []
    face_similarity: float | None = None


class HubSignal(BaseModel):
    rel: str
    signal: str
    accounts: int


class SharedSignals(BaseModel):
    account_id: str
    accounts: list[SharingAccount]
    skipped_hubs: list[HubSignal] = []


class RingMember(BaseModel):
    id: str
    risk_score: float | None = None


class RingEvidence(BaseModel):
    rel: str
    signal: str
    members_sharing: int
    accounts_overall: int


class RingSummary(BaseModel):
    id: str
    score: float | None = None
    size: int | None = None
    reasons: list[str] = []
    last_review: str | None = None
    reviewed_at: str | None = None


class RingDetail(RingSummary):
    members: list[RingMember] = []
    evidence: list[RingEvidence] = []


# ---- an account --------------------------------------------------------------------------------------

_PROFILE = """
MATCH (a:Account {id: $id})
RETURN a.id AS id, a.created_at AS created_at, a.created_at_iso AS created_at_iso, a.risk_score AS risk_score,
       a.decision AS decision, a.ring_id AS ring_id, a.known_ring_id AS known_ring_id, a.label AS label,
       a.liveness_score AS liveness_score, a.document_authenticity_score AS document_authenticity_score,
       [(a)-[:MEMBER_OF]->(r:Ring) | r.id] AS rings
"""
_PROFILE_SIGNALS = """
MATCH (a:Account {id: $id})-[r]->(s)
WHERE type(r) IN $rels
RETURN type(r) AS rel, s.id AS signal, COUNT { (s)<--(:Account) } - 1 AS shared_with
ORDER BY shared_with DESC, rel
"""
_FACES = f"""
MATCH (a:Account {{id: $id}})-[f:{schema.SAME_FACE}]-(b:Account)
RETURN b.id AS account_id, f.similarity AS similarity
ORDER BY similarity DESC
LIMIT $limit
"""


def account_profile(store: GraphStore, account_id: str, face_limit: int = 50) -> AccountProfile | None:
    """All the account's signals with how many other accounts share each, its face matches and rings."""
    rows = store.read(_PROFILE, id=account_id)
    if not rows:
        return None
    signals = [
        SignalShare(
            rel=r["rel"], label=LABEL_OF_REL[r["rel"]], signal=r["signal"], shared_with=r["shared_with"]
        )
        for r in store.read(_PROFILE_SIGNALS, id=account_id, rels=SIGNAL_RELS)
    ]
    faces = [FaceMatch(**r) for r in store.read(_FACES, id=account_id, limit=face_limit)]
    return AccountProfile(**rows[0], signals=signals, face_matches=faces)


_SHARED = """
MATCH (a:Account {id: $id})-[r]->(s)
WHERE type(r) IN $rels
WITH a, r, s, COUNT { (s)<--(:Account) } AS accounts
RETURN type(r) AS rel, s.id AS signal, accounts,
       CASE WHEN accounts <= $max_degree THEN [(s)<--(b:Account) WHERE b <> a | b.id] ELSE [] END AS others
"""


def shared_signal_accounts(
    store: GraphStore, account_id: str, limit: int = 100, max_degree: int = 1000
) -> SharedSignals | None:
    """Accounts that share a signal or a face with this one, most evidence first.

    A signal on more than ``max_degree`` accounts is a hub: it is listed in ``skipped_hubs``, not expanded.
    """
    if not store.read("MATCH (a:Account {id: $id}) RETURN a.id AS id", id=account_id):
        return None
    evidence: dict[str, list[SharedEvidence]] = defaultdict(list)
    hubs = []
    for row in store.read(_SHARED, id=account_id, rels=SIGNAL_RELS, max_degree=max_degree):
        if row["accounts"] > max_degree:
            hubs.append(HubSignal(rel=row["rel"], signal=row["signal"], accounts=row["accounts"]))
            continue
        for other in row["others"]:
            evidence[other].append(
                SharedEvidence(rel=row["rel"], label=LABEL_OF_REL[row["rel"]], signal=row["signal"])
            )
    faces = {r["account_id"]: r["similarity"] for r in store.read(_FACES, id=account_id, limit=limit)}
    ids = set(evidence) | set(faces)
    accounts = [
        SharingAccount(account_id=i, shared=evidence.get(i, []), face_similarity=faces.get(i)) for i in ids
    ]
    accounts.sort(key=lambda s: (-(len(s.shared) + (s.face_similarity is not None)), s.account_id))
    return SharedSignals(account_id=account_id, accounts=accounts[:limit], skipped_hubs=hubs)


def _expand_query(label: str) -> str:
    return (
        f"UNWIND $ids AS id MATCH (n:{label} {{id: id}}) "
        "WITH n, COUNT { (n)--() } AS deg "
        f"OPTIONAL MATCH (n)-[r]-(m) WHERE deg <= $hub_degree AND NOT m:{schema.REVIEW_LABEL} "
        "RETURN n.id AS id, deg, type(r) AS type, startNode(r) = n AS out, labels(m)[0] AS label, m.id AS other, "
        f"r.similarity AS similarity, {_NODE_PROPS}"
    )


def neighbourhood(
    store: GraphStore, account_id: str, hops: int = 2, max_nodes: int = 300, hub_degree: int = 50
) -> Neighbourhood | None:
    """The k-hop neighbourhood as nodes and edges, breadth first.

    ``hops`` is capped at ``MAX_HOPS`` and the answer at ``max_nodes`` nodes; a node with more than
    ``hub_degree`` relationships is shown but not expanded. ``truncated`` says when either cap cut it.
    """
    hops = max(0, min(int(hops), MAX_HOPS))
    root = store.read(
        f"MATCH (m:Account {{id: $id}}) RETURN m.id AS id, COUNT {{ (m)--() }} AS deg, {_NODE_PROPS}",
        id=account_id,
    )
    if not root:
        return None
    nodes: dict[tuple[str, str], GraphNode] = {("Account", account_id): _node("Account", root[0])}
    nodes[("Account", account_id)].degree = root[0]["deg"]
    edges: dict[tuple[str, str, str], GraphEdge] = {}
    truncated = False
    frontier = [("Account", account_id)]
    for _ in range(hops):
        by_label: dict[str, list[str]] = defaultdict(list)
        for label, node_id in frontier:
            by_label[label].append(node_id)
        nxt: list[tuple[str, str]] = []
        for label, ids in by_label.items():
            for row in store.read(_expand_query(label), ids=ids, hub_degree=hub_degree):
                here = nodes[(label, row["id"])]
                here.degree = row["deg"]
                if row["deg"] > hub_degree:
                    truncated = True
                    continue
                here.expanded = True
                if row["other"] is None:
                    continue
                key = (row["label"], row["other"])
                if key not in nodes:
                    if len(nodes) >= max_nodes:
                        truncated = True
                        continue
                    nodes[key] = _node(row["label"], row)
                    nxt.append(key)
                src, dst = (row["id"], row["other"]) if row["out"] else (row["other"], row["id"])
                props = {"similarity": row["similarity"]} if row["similarity"] is not None else {}
                edges.setdefault(
                    (src, row["type"], dst),
                    GraphEdge(source=src, target=dst, type=row["type"], properties=props),
                )
        frontier = nxt
        if not frontier:
            break
    return Neighbourhood(nodes=list(nodes.values()), edges=list(edges.values()), truncated=truncated)


def _node(label: str, row: dict) -> GraphNode:
    keys = {"Account": ("risk_score", "ring_id", "decision"), "Ring": ("score", "size")}.get(label, ())
    props = {k: row[k] for k in keys if row.get(k) is not None}
    return GraphNode(id=row.get("other") or row["id"], label=label, properties=props)


# ---- rings -------------------------------------------------------------------------------------------

_TOP_RINGS = f"""
MATCH (r:Ring)
WHERE r.score >= $min_score
WITH r ORDER BY r.score DESC, r.id LIMIT $limit
OPTIONAL MATCH (r)-[:{schema.REVIEWED}]->(v:{schema.REVIEW_LABEL})
WITH r, v ORDER BY v.at DESC
WITH r, collect(v)[0] AS last
RETURN r.id AS id, r.score AS score, r.size AS size, r.reasons AS reasons,
       last.decision AS last_review, last.at AS reviewed_at
ORDER BY score DESC, id
"""
_RING = f"""
MATCH (r:Ring {{id: $id}})
OPTIONAL MATCH (r)-[:{schema.REVIEWED}]->(v:{schema.REVIEW_LABEL})
WITH r, v ORDER BY v.at DESC
WITH r, collect(v)[0] AS last
RETURN r.id AS id, r.score AS score, r.size AS size, r.reasons AS reasons,
       last.decision AS last_review, last.at AS reviewed_at
"""
_RING_MEMBERS = f"""
MATCH (a:Account)-[:{schema.MEMBER_OF}]->(r:Ring {{id: $id}})
RETURN a.id AS id, a.risk_score AS risk_score
ORDER BY risk_score DESC, id
"""
_RING_EVIDENCE = f"""
MATCH (r:Ring {{id: $id}})<-[:{schema.MEMBER_OF}]-(a:Account)-[e]->(s)
WHERE type(e) IN $rels
WITH s, type(e) AS rel, count(DISTINCT a) AS members
WHERE members > 1
RETURN rel, s.id AS signal, members AS members_sharing, COUNT {{ (s)<--(:Account) }} AS accounts_overall
ORDER BY members_sharing DESC, accounts_overall ASC, signal
"""


def top_rings(store: GraphStore, limit: int = 25, min_score: float = 0.0) -> list[RingSummary]:
    rows = store.read(_TOP_RINGS, limit=int(limit), min_score=float(min_score))
    return [RingSummary(**{**r, "reasons": r["reasons"] or []}) for r in rows]


def ring_members(store: GraphStore, ring_id: str) -> RingDetail | None:
    """A ring, its members by risk, and the signals two or more of them share (with the signal's overall
    use, so a hub stands out from a ring-only identifier)."""
    rows = store.read(_RING, id=ring_id)
    if not rows:
        return None
    members = [RingMember(**r) for r in store.read(_RING_MEMBERS, id=ring_id)]
    evidence = [RingEvidence(**r) for r in store.read(_RING_EVIDENCE, id=ring_id, rels=SIGNAL_RELS)]
    return RingDetail(**{**rows[0], "reasons": rows[0]["reasons"] or []}, members=members, evidence=evidence)
