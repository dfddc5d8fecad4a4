import numpy as np

from graph.evaluate import ring_metrics
from graph.hetero import GraphInput
from graph.rings import RingConfig, extract_rings, ring_assignment, ring_id


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
