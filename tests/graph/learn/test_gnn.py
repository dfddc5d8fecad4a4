import resource
import sys

import numpy as np
import pytest
import torch

from graph.evaluate.metrics import account_metrics
from graph.learn.gnn import GNNModel, HeteroGNN, _dropout
from graph.learn.heap import reuse_freed_memory
from graph.learn.hetero import ACCOUNT, FACE_EDGE, GraphInput

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


def test_dropout_drops_at_its_rate_and_keeps_the_mean():
    """The 16-bit mask of ``_dropout`` behaves like ``nn.Dropout``: rate p, inverted scaling, no-op at p=0."""
    torch.manual_seed(0)
    x = torch.ones(400_000)
    y = _dropout(x, 0.2)
    assert abs(float((y == 0).float().mean()) - 0.2) < 0.003
    assert abs(float(y.mean()) - 1.0) < 0.005
    assert torch.allclose(y[y != 0], torch.tensor(1 / 0.8), atol=1e-4)
    assert _dropout(x, 0.0) is x
    z = torch.randn(1000, 3, requires_grad=True)
    out = _dropout(z, 0.5)
    out.sum().backward()
    assert torch.equal(z.grad, (out != 0).float() * 2.0)  # gradient flows through the kept entries only


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc tuning, /proc/self/statm")
def test_reuse_freed_memory_stops_refaulting_large_tensors():
    """A freed 64 MB tensor is served again from the heap inside the block (no fresh pages once the heap holds
    it, as in every epoch after the first), while outside it glibc maps fresh zeroed pages every time; the
    numbers the GNN computes are the same either way.

    Fresh pages are counted as the bytes the resident set grows by while the tensor is alive, not as page
    faults: under transparent huge pages one fault maps 2 MB, so a count of 4 KB faults fails there."""
    size = 64 * 1024 * 1024

    def fresh_bytes_of_second_alloc() -> int:
        torch.ones(size // 4)  # allocated then freed
        before = _resident_bytes()
        alive = torch.ones(size // 4)
        grown = _resident_bytes() - before
        del alive
        return grown

    assert fresh_bytes_of_second_alloc() > 0.6 * size
    with reuse_freed_memory():
        with reuse_freed_memory():  # nested blocks are fine
            pass
        fresh_bytes_of_second_alloc()  # the heap may first grow (and fault) to hold it
        assert fresh_bytes_of_second_alloc() < 0.06 * size
    assert fresh_bytes_of_second_alloc() > 0.6 * size  # defaults restored on exit


def test_time_budget_stops_at_the_best_checkpoint_and_says_so(toy_graph):
    g = GraphInput(toy_graph[0])
    # patience out of reach: on a quiet machine 30 epochs without a gain took less than the budget
    model = GNNModel(hidden=8, max_epochs=500, time_budget_s=0.5, eval_every=2, patience=10_000).fit(
        g, np.ones(g.n, bool)
    )
    assert model.stopped_by_.startswith("time budget") and model.epochs_ < 500
    assert 1 <= model.best_epoch_ <= model.epochs_ and model.best_val_ap_ > 0
    assert model._lr(model.epochs_, 0.5) == pytest.approx(model.lr * model.min_lr_ratio)  # annealed in time
