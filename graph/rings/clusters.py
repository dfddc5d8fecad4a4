"""Rings an investigator can act on (DESIGN.md §6).

Risky accounts are linked through the rare signals they share (each shared signal weighted by its inverse
log-degree, so a kiosk or an official template links weakly and a hub above ``hub_degree`` not at all; a signal
whose accounts are mostly not risky links nobody), through face matches and through applications from one
quiet /24 within hours; communities are cut with Louvain inside each connected component, and rejoined
where the seam between them is dense (one ring's cliques) rather than a lone link (two rings). A ring's score
combines its members' risk, how tightly they are linked, its size and how bunched in time they signed up.
Every ring carries the evidence behind it: which signals its members share, how often, and the face matches.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import networkx as nx
import numpy as np
import pandas as pd

from graph.learn.features import REL_CODE, RELS, is_linking
from graph.learn.hetero import GraphInput


@dataclass(frozen=True)
class RingConfig:
    """``min_risk``: accounts below it are not ring candidates. ``min_size``: smallest ring reported.
    ``min_score``: rings scoring below it are dropped. ``face_weight``: link weight of a face match;
    ``burst_weight``: of two applications from one /24 within ``FeatureConfig.burst_hours``.
    ``seam_ratio``: Louvain communities of one connected group are joined back while the link density
    between two of them is at least this share of the smaller one's internal density (``_rejoin``): one
    ring's face or device cliques joined by its own secondary device or phone stay one ring, two rings joined
    by one popular template or IP stay two. (A modularity floor of 0.7 never cut such a pair: two cliques
    joined by one edge score at most 0.5.)
    ``min_share``: a shared signal links candidates only when at least this share of its accounts are
    candidates: an official template or an IP used by 40 people, two of them in different rings weeks apart,
    is no evidence that they work together; a forged template or a drop address is mostly candidates.
    ``burst_max_rate``: a /24 links by timing only while it expects fewer than this many other applications
    within ``burst_hours`` of one (its degree times the window over the data's time span): on a carrier-NAT
    /24, thousands of strangers apply within hours of each other, and such pairs merged separate rings."""

    min_risk: float = 0.2
    min_size: int = 2
    min_score: float = 0.3
    face_weight: float = 1.0
    burst_weight: float = 0.5
    louvain_resolution: float = 1.0
    seam_ratio: float = 0.03
    min_share: float = 0.1
    burst_max_rate: float = 0.25
    seed: int = 0


@dataclass
class Ring:
    id: str
    score: float
    size: int
    members: list[str]
    evidence: dict
    first_seen: str
    last_seen: str
    member_risk: float
    cohesion: float
    span_days: float
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def ring_id(members: list[str]) -> str:
    """Stable across runs: the same members give the same id."""
    return "ring-" + hashlib.sha1("\x1f".join(sorted(members)).encode()).hexdigest()[:16]


def _iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _candidate_edges(graph: GraphInput, cand: np.ndarray, cfg: RingConfig) -> pd.DataFrame:
    """Weighted account pairs among candidates: shared rare signals (1/log2(1+deg) each, only signals with at
    least ``min_share`` candidates among their accounts), face matches and quiet-/24 bursts."""
    state = graph.state
    acc = graph.tables.links["account"].to_numpy(np.int64)
    node = state.nodes.link_node
    keep = is_linking(state)[node] & cand[acc]
    share = np.bincount(node[keep], minlength=state.nodes.n_nodes) / np.maximum(state.nodes.deg, 1)
    keep &= share[node] >= cfg.min_share
    lk = pd.DataFrame({"node": node[keep], "a": acc[keep]})
    pairs = lk.merge(lk, on="node")
    pairs = pairs[pairs.a_x < pairs.a_y]
    deg = state.nodes.deg[pairs["node"].to_numpy()]
    sig = pd.DataFrame(
        {
            "a": pairs.a_x.to_numpy(),
            "b": pairs.a_y.to_numpy(),
            "w": 1.0 / np.log2(1.0 + deg),
            "node": pairs.node,
        }
    )
    sf = graph.tables.same_face
    fm = cand[sf["src"].to_numpy(np.int64)] & cand[sf["dst"].to_numpy(np.int64)]
    face = pd.DataFrame(
        {
            "a": sf["src"].to_numpy(np.int64)[fm],
            "b": sf["dst"].to_numpy(np.int64)[fm],
            "w": cfg.face_weight * sf["similarity"].to_numpy(np.float64)[fm],
            "node": -1,
        }
    )
    return pd.concat([sig, face, _burst_edges(graph, cand, cfg)], ignore_index=True)


def _burst_edges(graph: GraphInput, cand: np.ndarray, cfg: RingConfig) -> pd.DataFrame:
    """Candidates that applied from the same /24 within ``burst_hours`` of each other (node -2)."""
    state = graph.state
    acc = graph.tables.links["account"].to_numpy(np.int64)
    node = state.nodes.link_node
    created = graph.tables.accounts["created_at"].to_numpy(np.int64) // 1000
    span_s = max(float(np.ptp(created)) if len(created) else 0.0, 1.0)
    window_s = state.config.burst_hours * 3600
    quiet = state.nodes.deg * (2 * window_s) / span_s < cfg.burst_max_rate
    keep = (state.nodes.rel_code[node] == REL_CODE["FROM_PREFIX"]) & quiet[node] & cand[acc]
    a, nd = acc[keep], node[keep]
    t = created[a]
    key = nd * 10**10 + (t - t.min(initial=0))
    order = np.argsort(key)
    a, key = a[order], key[order]
    hi = np.searchsorted(key, key + int(window_s), side="right")
    cnt = hi - np.arange(len(key)) - 1
    i = np.repeat(np.arange(len(key)), cnt)
    j = i + 1 + (np.arange(len(i)) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    lo_, hi_ = np.minimum(a[i], a[j]), np.maximum(a[i], a[j])
    return pd.DataFrame({"a": lo_, "b": hi_, "w": cfg.burst_weight, "node": -2})


def _communities(edges: pd.DataFrame, cfg: RingConfig) -> list[list[int]]:
    w = edges.groupby(["a", "b"], as_index=False)["w"].sum()
    g = nx.Graph()
    g.add_weighted_edges_from(w[["a", "b", "w"]].itertuples(index=False, name=None))
    out: list[list[int]] = []
    for comp in nx.connected_components(g):
        if len(comp) < cfg.min_size:
            continue
        sub = g.subgraph(comp)
        parts = nx.community.louvain_communities(
            sub, weight="weight", resolution=cfg.louvain_resolution, seed=cfg.seed
        )
        out.extend(sorted(c) for c in _rejoin(sub, parts, cfg.seam_ratio) if len(c) >= cfg.min_size)
    return out


def _rejoin(sub: nx.Graph, parts: list[set], ratio: float) -> list[set]:
    """Louvain parts joined back while the link density between two of them is at least ``ratio`` times the
    smaller of their internal densities (a singleton part always joins its best neighbour).

    A ring run through several faces or devices is cliques joined by many secondary-resource pairs (dense
    seam); two rings merged by one popular template or IP used weeks apart are joined by a single weak pair
    (sparse seam). Modularity cannot tell them apart: two cliques joined by one edge score at most 0.5."""
    if len(parts) < 2:
        return parts
    nodes = list(sub.nodes)
    pos = {v: i for i, v in enumerate(nodes)}
    lab = np.empty(len(nodes), dtype=np.int64)
    for k, p in enumerate(parts):
        lab[[pos[v] for v in p]] = k
    e = np.array([(pos[u], pos[v], w) for u, v, w in sub.edges(data="weight")], dtype=np.float64)
    u, v, w = e[:, 0].astype(np.int64), e[:, 1].astype(np.int64), e[:, 2]
    while True:
        k = int(lab.max()) + 1
        lu, lv = lab[u], lab[v]
        same = lu == lv
        size = np.bincount(lab, minlength=k).astype(np.float64)
        inner = np.bincount(lu[same], weights=w[same], minlength=k)
        dens = np.where(size > 1, inner / np.maximum(size * (size - 1) / 2, 1), np.inf)
        i, j = np.minimum(lu[~same], lv[~same]), np.maximum(lu[~same], lv[~same])
        if not len(i):
            break
        keys, inv = np.unique(i * k + j, return_inverse=True)
        cross = np.bincount(inv, weights=w[~same])
        pi, pj = keys // k, keys % k
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (cross / (size[pi] * size[pj])) / np.minimum(dens[pi], dens[pj])
        r = np.where((size[pi] > 1) & (size[pj] > 1), r, np.inf)
        best = int(np.argmax(r))
        if r[best] < ratio:
            break
        lab[lab == pj[best]] = pi[best]
        _, lab = np.unique(lab, return_inverse=True)
    return [{nodes[x] for x in np.flatnonzero(lab == c)} for c in range(int(lab.max()) + 1)]


def _evidence(members: np.ndarray, edges: pd.DataFrame, graph: GraphInput) -> tuple[dict, float, list[str]]:
    mset = set(members.tolist())
    inside = edges[edges.a.isin(mset) & edges.b.isin(mset)]
    state = graph.state
    shared = []
    by_kind: dict[str, int] = {}
    sig_nodes = inside.loc[inside.node >= 0, "node"].unique()
    acc = graph.tables.links["account"].to_numpy(np.int64)
    in_ring = np.isin(acc, members)
    link_nodes = state.nodes.link_node[in_ring]
    counts = pd.Series(link_nodes).value_counts()
    for nd in sig_nodes:
        rel = RELS[int(state.nodes.rel_code[nd])]
        k = int(counts.get(nd, 0))
        shared.append(
            {
                "kind": rel,
                "signal": str(state.nodes.signal[nd]),
                "members": k,
                "degree": int(state.nodes.deg[nd]),
            }
        )
        by_kind[rel] = by_kind.get(rel, 0) + 1
    shared.sort(key=lambda s: (-s["members"], s["kind"]))
    faces = inside[inside.node == -1]
    bursts = inside[inside.node == -2]
    n = len(members)
    pairs = inside.groupby(["a", "b"]).size()
    cohesion = float(len(pairs) / (n * (n - 1) / 2)) if n > 1 else 0.0
    evidence = {
        "shared_signals": shared[:20],
        "shared_signal_counts": by_kind,
        "face_matches": int(len(faces)),
        "face_mean_similarity": float(faces.w.mean()) if len(faces) else None,
        "same_prefix_within_hours": int(len(bursts)),
    }
    reasons = [f"{v} shared {k}" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1])]
    if len(faces):
        reasons.append(f"{len(faces)} face matches across identities")
    if len(bursts):
        reasons.append(f"{len(bursts)} pairs applied from one /24 within hours")
    return evidence, cohesion, reasons


def extract_rings(graph: GraphInput, risk: np.ndarray, config: RingConfig | None = None) -> list[Ring]:
    """Rings among accounts with ``risk >= min_risk``, best first."""
    cfg = config or RingConfig()
    risk = np.asarray(risk, dtype=np.float64)
    cand = risk >= cfg.min_risk
    edges = _candidate_edges(graph, cand, cfg)
    if edges.empty:
        return []
    ids = graph.tables.accounts["id"].to_numpy(dtype=object)
    created = graph.tables.accounts["created_at"].to_numpy(np.float64)
    rings = []
    for comm in _communities(edges, cfg):
        m = np.asarray(comm, dtype=np.int64)
        evidence, cohesion, reasons = _evidence(m, edges, graph)
        t = created[m]
        span = float((t.max() - t.min()) / 86_400_000.0)
        member_risk = float(risk[m].mean())
        size_factor = 1.0 - 1.0 / len(m)
        tight = float(np.exp(-span / 30.0))
        score = member_risk * (0.6 + 0.4 * cohesion) * (0.8 + 0.2 * size_factor) * (0.8 + 0.2 * tight)
        if score < cfg.min_score:
            continue
        members = sorted(str(ids[i]) for i in m)
        rings.append(
            Ring(
                id=ring_id(members),
                score=round(score, 6),
                size=len(m),
                members=members,
                evidence=evidence,
                first_seen=_iso(t.min()),
                last_seen=_iso(t.max()),
                member_risk=round(member_risk, 6),
                cohesion=round(cohesion, 6),
                span_days=round(span, 3),
                reasons=reasons,
            )
        )
    rings.sort(key=lambda r: -r.score)
    return rings


def ring_assignment(rings: list[Ring], account_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per account: its ring id (None) and ring score (NaN)."""
    pos = {a: i for i, a in enumerate(np.asarray(account_ids, dtype=object).tolist())}
    rid = np.full(len(pos), None, dtype=object)
    rscore = np.full(len(pos), np.nan)
    for r in rings:
        for m in r.members:
            i = pos[m]
            if rid[i] is None:
                rid[i], rscore[i] = r.id, r.score
    return rid, rscore
