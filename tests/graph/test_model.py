import numpy as np
import torch

from graph.evaluate import account_metrics
from graph.hetero import ACCOUNT, FACE_EDGE, GraphInput
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


def _heteroconv_forward(net: HeteroGNN, x, ei, fw) -> torch.Tensor:
    """The textbook forward: HeteroConv over every relation, every node type updated (eval mode)."""
    h = {nt: torch.relu(net.enc[nt](v)) for nt, v in x.items()}
    h0 = h[ACCOUNT]
    for conv, norm in zip(net.convs, net.norms, strict=True):
        out = conv(h, ei, edge_weight_dict={FACE_EDGE: fw} if FACE_EDGE in ei else {})
        h = {nt: norm[nt](h[nt] + torch.relu(out[nt])) if nt in out else h[nt] for nt in h}
    return net.head(torch.cat([h0, h[ACCOUNT]], dim=-1)).squeeze(-1)


def test_fast_forward_computes_what_heteroconv_computes(toy_graph):
    """The rearranged forward (summed root weights, messages projected before the mean, no signal update in
    the last layer) must give HeteroConv's numbers, with and without edges into accounts."""
    g = GraphInput(toy_graph[0])
    model = GNNModel(hidden=8, max_epochs=3).fit(g, np.ones(g.n, bool))
    x, ei, fw = model._inputs(g.hetero[0])
    with torch.no_grad():
        for edges in (ei, {et: e for et, e in ei.items() if et[2] != ACCOUNT}, {FACE_EDGE: ei[FACE_EDGE]}):
            fast, ref = model.net(x, edges, fw), _heteroconv_forward(model.net, x, edges, fw)
            assert torch.allclose(fast, ref, atol=1e-5), float((fast - ref).abs().max())
    assert len(ei) > 3 and ei[FACE_EDGE].shape[1] > 0
