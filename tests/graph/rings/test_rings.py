import numpy as np
import pandas as pd

from graph.evaluate.metrics import ring_metrics
from graph.learn.hetero import GraphInput
from graph.rings.clusters import (
    RingConfig,
    _burst_edges,
    _candidate_edges,
    _communities,
    extract_rings,
    ring_assignment,
    ring_id,
)
from graph.tables import ACCOUNT_COLUMNS, GraphTables


def test_true_labels_as_risk_recover_the_rings_with_evidence(toy_graph):
    tables, truth = toy_graph
    g = GraphInput(tables)
    rings = extract_rings(g, g.labels, RingConfig(min_risk=0.5))
    m = ring_metrics([r.members for r in rings], truth)
    assert m["recall"] >= 0.9 and m["precision"] >= 0.9, m
    r = rings[0]
    assert r.size == len(r.members) >= 2
    assert r.id == ring_id(list(reversed(r.members)))  # stable under order
    assert r.first_seen <= r.last_seen
    assert r.evidence["shared_signals"] or r.evidence["face_matches"]
    assert all(s["members"] >= 2 for s in r.evidence["shared_signals"])
    assert [x.score for x in rings] == sorted((x.score for x in rings), reverse=True)


def test_hubs_and_low_risk_accounts_form_no_rings(toy_graph):
    tables, truth = toy_graph
    g = GraphInput(tables)
    honest = (truth["label"] == 0).to_numpy()
    # every honest account risky: the only links left are households and hubs, scored low by member risk
    risk = np.where(honest, 0.6, 0.0)
    rings = extract_rings(g, risk, RingConfig(min_risk=0.5, min_score=0.9))
    assert rings == []
    ids, scores = ring_assignment([], tables.accounts["id"].to_numpy())
    assert all(i is None for i in ids) and np.isnan(scores).all()


def _prefix_tables(n_busy: int) -> GraphTables:
    """Two candidates 10 minutes apart on a quiet /24, two on a busy one (``n_busy`` others over 90 days)."""
    day = 86_400_000
    t0 = 1_767_225_600_000
    created = [t0, t0 + 600_000, t0 + day, t0 + day + 600_000] + [
        t0 + i * (90 * day // n_busy) for i in range(n_busy)
    ]
    n = len(created)
    accounts = pd.DataFrame({c: [np.nan] * n for c in ACCOUNT_COLUMNS})
    accounts["id"] = [f"a{i}" for i in range(n)]
    accounts["created_at"] = np.asarray(created, dtype=np.int64)
    accounts["name_key"] = [f"n{i}" for i in range(n)]
    accounts["dob_key"] = [f"d{i}" for i in range(n)]
    prefix = ["quiet", "quiet", "busy", "busy"] + ["busy"] * n_busy
    links = pd.DataFrame({"account": np.arange(n), "rel": "FROM_PREFIX", "signal": prefix})
    same_face = pd.DataFrame({"src": np.array([], np.int64), "dst": np.array([], np.int64), "similarity": []})
    return GraphTables(accounts, links, same_face)


def test_burst_links_skip_busy_prefixes():
    """Two applications minutes apart on a carrier-NAT /24 (thousands a quarter) are no evidence of a ring; on a
    quiet residential /24 they are."""
    g = GraphInput(_prefix_tables(n_busy=2000))
    cand = np.zeros(g.tables.n_accounts, dtype=bool)
    cand[:4] = True
    edges = _burst_edges(g, cand, RingConfig())
    assert sorted(map(tuple, edges[["a", "b"]].to_numpy().tolist())) == [(0, 1)]
    everything = _burst_edges(g, cand, RingConfig(burst_max_rate=float("inf")))
    assert sorted(map(tuple, everything[["a", "b"]].to_numpy().tolist())) == [(0, 1), (2, 3)]


def _clique(members: list[int], w: float) -> list[tuple[int, int, float]]:
    return [(a, b, w) for i, a in enumerate(members) for b in members[i + 1 :]]


def _edges(rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    a, b, w = zip(*rows, strict=True)
    return pd.DataFrame({"a": a, "b": b, "w": w, "node": 0})


def test_two_rings_joined_by_one_weak_link_stay_two():
    """Two rings whose members happen to share one popular template: a modularity floor of 0.7 kept them as one
    (two cliques joined by one edge score at most 0.5), the seam rule splits them."""
    left, right = list(range(6)), list(range(6, 11))
    edges = _edges(_clique(left, 1.0) + _clique(right, 0.9) + [(5, 6, 0.18)])
    parts = _communities(edges, RingConfig())
    assert sorted(map(sorted, parts)) == [left, right]


def test_one_ring_of_two_face_cliques_joined_by_its_device_stays_one():
    """A face-reuse ring run through two faces, half of each clique also on the ring's shared device."""
    face_a, face_b = list(range(8)), list(range(8, 16))
    device = [0, 1, 2, 3, 8, 9, 10, 11]
    edges = _edges(_clique(face_a, 0.9) + _clique(face_b, 0.9) + _clique(device, 0.33))
    parts = _communities(edges, RingConfig())
    assert sorted(map(sorted, parts)) == [face_a + face_b]
    # with no rejoining at all, Louvain cuts it at the faces
    cut = _communities(edges, RingConfig(seam_ratio=float("inf")))
    assert len(cut) == 2


def _template_tables(n_users: int) -> GraphTables:
    """Accounts 0-1 share a template with ``n_users - 2`` other accounts; accounts 2-4 share a forged one."""
    n = max(n_users, 5)
    accounts = pd.DataFrame({c: [np.nan] * n for c in ACCOUNT_COLUMNS})
    accounts["id"] = [f"a{i}" for i in range(n)]
    accounts["created_at"] = 1_767_225_600_000 + np.arange(n, dtype=np.int64) * 3_600_000
    accounts["name_key"] = [f"n{i}" for i in range(n)]
    accounts["dob_key"] = [f"d{i}" for i in range(n)]
    template = ["official"] * 2 + ["forged"] * 3 + ["official"] * (n - 5)
    links = pd.DataFrame({"account": np.arange(n), "rel": "HAS_TEMPLATE", "signal": template})
    same_face = pd.DataFrame({"src": np.array([], np.int64), "dst": np.array([], np.int64), "similarity": []})
    return GraphTables(accounts, links, same_face)


def test_a_signal_mostly_used_by_low_risk_accounts_links_nobody():
    g = GraphInput(_template_tables(n_users=40))
    cand = np.zeros(g.tables.n_accounts, dtype=bool)
    cand[:5] = True  # two official-template users and the three forged-template users
    pairs = _candidate_edges(g, cand, RingConfig())
    assert sorted(map(tuple, pairs[["a", "b"]].to_numpy().tolist())) == [(2, 3), (2, 4), (3, 4)]
    everything = _candidate_edges(g, cand, RingConfig(min_share=0.0))
    assert (0, 1) in set(map(tuple, everything[["a", "b"]].to_numpy().tolist()))
