import numpy as np
import torch

from graph.evaluate import account_metrics
from graph.hetero import ACCOUNT, GraphInput
from graph.model import GNNModel, HeteroGNN

torch.set_num_threads(1)


def test_gnn_learns_rings_on_a_held_out_graph(toy_graph, toy_graph_other_seed):
    train = GraphInput(toy_graph[0])
    test = GraphInput(toy_graph_other_seed[0])
    model = GNNModel(hidden=16, max_epochs=60, patience=20).fit(train, np.ones(train.n, bool))
    p = model.predict_proba(test)
    assert p.shape == (test.n, 2) and np.allclose(p.sum(1), 1)
    m = account_metrics(test.labels, p[:, 1])
    assert m["auprc"] > 0.8, m
    assert 1 <= model.epochs_ <= 60


def test_gnn_scores_a_node_from_its_neighbourhood_only(toy_graph):
    """Inductive: changing an unrelated part of the graph leaves an account's score unchanged."""
    g = GraphInput(toy_graph[0])
    data, _ = g.hetero
    model = GNNModel(hidden=8, max_epochs=5).fit(g, np.ones(g.n, bool))
    before = model.predict_proba(data)[:, 1]
    assert isinstance(model.net, HeteroGNN)
    data2 = data.clone()
    x = data2[ACCOUNT].x.clone()
    x[-1] += 5.0  # the last account is a ring member: perturb it
    data2[ACCOUNT].x = x
    after = model.predict_proba(data2)[:, 1]
    changed = np.flatnonzero(~np.isclose(before, after, atol=1e-6))
    assert (len(changed) >= 1) and (len(changed) < 50)
