import pickle

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from graph.learn.baselines import FLAT_MAX_ROWS, GBTModel
from graph.learn.trees import FlatTrees


def _data(seed=0, n=3000, d=8):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)).astype(np.float32)
    y = ((x[:, 0] + x[:, 1] * x[:, 2] > 0.3) ^ (rng.random(n) < 0.1)).astype(int)
    x[rng.random(x.shape) < 0.1] = np.nan  # trains with missing values, so splits learn a NaN side
    return x, y


def test_flat_trees_equal_sklearn_with_missing_values():
    x, y = _data()
    clf = HistGradientBoostingClassifier(max_iter=60, max_leaf_nodes=31, random_state=0).fit(
        x[:2000], y[:2000]
    )
    flat = FlatTrees(clf)
    test = x[2000:]
    np.testing.assert_allclose(flat.raw(test), clf._raw_predict(test).ravel(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(flat.predict_proba(test), clf.predict_proba(test), rtol=0, atol=1e-12)
    # rows that are all NaN follow each split's missing-value side
    empty = np.full((2, x.shape[1]), np.nan, dtype=np.float32)
    np.testing.assert_allclose(flat.predict_proba(empty), clf.predict_proba(empty), atol=1e-12)


def test_flat_trees_refuse_what_they_cannot_walk():
    x, y = _data(1, n=600)
    with pytest.raises(ValueError, match="binary"):
        FlatTrees(HistGradientBoostingClassifier(max_iter=5).fit(x, np.arange(len(x)) % 3))
    with pytest.raises(ValueError, match="numeric features|categorical"):
        cat = np.abs(np.nan_to_num(x[:, :1]) * 3).astype(int).astype(np.float32)
        FlatTrees(HistGradientBoostingClassifier(max_iter=5, categorical_features=[0]).fit(cat, y))
    with pytest.raises(ValueError, match="binary"):
        FlatTrees(HistGradientBoostingRegressor(max_iter=5).fit(x, y))


def test_gbt_model_small_batches_match_sklearn_and_pickle_without_the_copy():
    x, y = _data(2)
    model = GBTModel(max_iter=40)
    model.clf.fit(x[:2000], y[:2000])
    for n in (1, 3, FLAT_MAX_ROWS, FLAT_MAX_ROWS + 1):
        rows = x[2000 : 2000 + n]
        np.testing.assert_allclose(model.predict_features(rows), model.clf.predict_proba(rows), atol=1e-12)
    assert model._flat is not None
    again = pickle.loads(pickle.dumps(model))
    assert again._flat is None
    np.testing.assert_allclose(again.predict_features(x[:1]), model.predict_features(x[:1]), atol=0)
