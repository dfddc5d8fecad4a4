import numpy as np
import pandas as pd

from graph.evaluate import ring_metrics
from graph.hetero import GraphInput
from graph.rings import RingConfig, _burst_edges, extract_rings, ring_assignment, ring_id
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
