import pickle

import numpy as np
import pytest
import torch

from graph.learn.gnn import GNNModel
from graph.learn.hetero import FACE_EDGE, SIGNAL_FEATURES, GraphInput, build_heterodata, rel_edge, rev_edge
from graph.learn.small_gnn import SmallGraph
from graph.schema import SIGNALS

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def gnn(toy_graph):
    g = GraphInput(toy_graph[0])
    return GNNModel(hidden=8, max_epochs=5).fit(g, np.ones(g.n, bool)), g.features.shape[1]


def _random_graph(rng, n_features: int, kinds: list[int]) -> SmallGraph:
    """A receptive field as messy as real ones: NaN features, repeated links to one signal, accounts and
    signal nodes with no link at all, several face partners."""
    n_acc, n_sig = int(rng.integers(1, 30)), int(rng.integers(0, 20))
    x_acc = rng.normal(size=(n_acc, n_features)).astype(np.float32) * 3
    x_acc[rng.random(x_acc.shape) < 0.1] = np.nan
    n_link = int(rng.integers(0, 3 * n_sig + 1)) if n_sig else 0
    pairs = rng.integers(0, n_acc, 2 * int(rng.integers(0, n_acc + 1))).reshape(-1, 2)
    pairs = np.unique(np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1), axis=0)
    return SmallGraph(
        x_account=x_acc,
        x_signal=rng.normal(size=(n_sig, SIGNAL_FEATURES)).astype(np.float32),
        kind=rng.choice(kinds, n_sig),
        link_account=rng.integers(0, n_acc, n_link),
        link_signal=rng.integers(0, max(n_sig, 1), n_link),
        face_a=pairs[:, 0],
        face_b=pairs[:, 1],
        face_sim=rng.uniform(0.5, 1.0, len(pairs)).astype(np.float32),
    )


def _pyg(model: GNNModel, g: SmallGraph) -> np.ndarray:
    data, _ = build_heterodata(
        len(g.x_account),
        g.x_account,
        g.link_account,
        g.link_signal,
        np.asarray(g.kind, np.int64),
        g.x_signal,
        np.ones(len(g.x_signal), bool),
        g.face_a,
        g.face_b,
        g.face_sim,
    )
    return model.predict_proba(data)[:, 1]


def test_numpy_forward_equals_pyg_on_random_receptive_fields(gnn):
    model, n_features = gnn
    rng = np.random.default_rng(0)
    for _ in range(60):
        g = _random_graph(rng, n_features, list(range(len(SIGNALS))))
        np.testing.assert_allclose(model.predict_small(g), _pyg(model, g), atol=2e-6)


def test_untrained_relations_take_no_part_as_in_pyg(gnn):
    """A relation the model never saw in training (here: devices, and faces) passes nothing and adds no root
    term, in both forwards; so does an old model that recorded no relations."""
    model, n_features = gnn
    rng = np.random.default_rng(1)
    dev = SIGNALS[0]
    trimmed = pickle.loads(pickle.dumps(model))
    trimmed.relations_ = [
        et for et in model.relations if et not in (rel_edge(dev.label, dev.rel), rev_edge(dev.label, dev.rel))
    ]
    trimmed.relations_.remove(FACE_EDGE)
    old = pickle.loads(pickle.dumps(model))
    del old.relations_
    for _ in range(20):
        g = _random_graph(rng, n_features, list(range(len(SIGNALS))))
        for m in (trimmed, old):
            np.testing.assert_allclose(m.predict_small(g), _pyg(m, g), atol=2e-6)
    assert not np.allclose(trimmed.predict_small(g), model.predict_small(g))


def test_the_numpy_copy_follows_the_model_through_pickle_and_refit(gnn, toy_graph):
    model, n_features = gnn
    g = _random_graph(np.random.default_rng(2), n_features, [0, 1, 2])
    before = model.predict_small(g)
    loaded = pickle.loads(pickle.dumps(model))
    assert loaded._flat is None
    np.testing.assert_allclose(loaded.predict_small(g), before, atol=1e-7)
    graph = GraphInput(toy_graph[0])
    loaded.seed = 7
    loaded.fit(graph, np.ones(graph.n, bool))
    np.testing.assert_allclose(loaded.predict_small(g), _pyg(loaded, g), atol=2e-6)
    assert not np.allclose(loaded.predict_small(g), before)
