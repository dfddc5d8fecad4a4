import numpy as np

from graph.evaluate.metrics import account_metrics
from graph.learn.baselines import EnsembleModel, GBTModel, RulesModel
from graph.learn.hetero import GraphInput


def test_baselines_fit_and_score_a_held_out_graph(toy_graph, toy_graph_other_seed):
    train = GraphInput(toy_graph[0])
    test = GraphInput(toy_graph_other_seed[0])
    mask = np.ones(train.n, bool)
    rules = RulesModel().fit(train, mask)
    gbt = GBTModel(max_iter=100).fit(train, mask)
    pr, pg = rules.predict_proba(test)[:, 1], gbt.predict_proba(test)[:, 1]
    assert account_metrics(test.labels, pg)["auprc"] > 0.8
    assert account_metrics(test.labels, pr)["auroc"] > 0.7
    ens = EnsembleModel([rules, gbt])
    assert np.allclose(ens.predict_proba(test)[:, 1], (pr + pg) / 2)
    # the real-time entry point: the whole feature array, columns in any order
    x, columns = test.features.to_numpy(np.float32), list(test.features.columns)
    order = np.random.default_rng(0).permutation(len(columns))
    got = rules.predict_features(x[:, order], [columns[k] for k in order])[:, 1]
    np.testing.assert_allclose(got, pr, atol=1e-12)


def test_fit_uses_only_the_masked_rows(toy_graph):
    g = GraphInput(toy_graph[0])
    y = g.labels.copy()
    mask = np.zeros(g.n, bool)
    mask[: g.n // 2] = True
    a = GBTModel(max_iter=30).fit(g, mask, y).predict_proba(g)[:, 1]
    y[~mask] = 1 - y[~mask]  # labels outside the mask must not matter
    b = GBTModel(max_iter=30).fit(g, mask, y).predict_proba(g)[:, 1]
    assert np.allclose(a, b)
