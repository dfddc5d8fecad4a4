"""A fitted binary ``HistGradientBoostingClassifier`` as flat arrays, walked with numpy for a few rows.

sklearn's ``predict_proba`` validates its input and makes one compiled call per tree: for one row of a
hundred trees that was most of a real-time decision's model time. Walking every tree at once, one numpy step
per level, costs a few calls per level instead. Batch scoring keeps sklearn, which is faster for many rows.
"""

from __future__ import annotations

import numpy as np


class FlatTrees:
    def __init__(self, clf) -> None:
        binary = len(getattr(clf, "classes_", ())) == 2 and clf.n_trees_per_iteration_ == 1
        if not binary or getattr(clf, "_preprocessor", None) is not None:
            raise ValueError("only binary classifiers on numeric features")
        trees = [p[0].nodes for p in clf._predictors]
        nodes = np.concatenate(trees)
        if nodes["is_categorical"].any():
            raise ValueError("categorical splits are not supported")
        sizes = [len(t) for t in trees]
        self.roots = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        offset = np.repeat(self.roots, sizes)
        leaf = nodes["is_leaf"].astype(bool)
        here = np.arange(len(nodes), dtype=np.intp)
        # a leaf points at itself, so every walk can take the same number of steps
        self.left = np.where(leaf, here, nodes["left"].astype(np.intp) + offset)
        self.right = np.where(leaf, here, nodes["right"].astype(np.intp) + offset)
        self.feature = nodes["feature_idx"].astype(np.intp)
        self.threshold = nodes["num_threshold"].astype(np.float64)
        self.nan_left = nodes["missing_go_to_left"].astype(bool)
        self.value = nodes["value"].astype(np.float64)
        self.depth = int(nodes["depth"].max())
        self.baseline = float(np.ravel(clf._baseline_prediction)[0])

    def raw(self, x: np.ndarray) -> np.ndarray:
        """The decision function (log-odds), as sklearn's ``_raw_predict`` gives it."""
        x = np.asarray(x, dtype=np.float64)
        n, t = len(x), len(self.roots)
        node = np.tile(self.roots, n)
        row = np.repeat(np.arange(n), t)
        for _ in range(self.depth):
            v = x[row, self.feature[node]]
            left = np.where(np.isnan(v), self.nan_left[node], v <= self.threshold[node])
            node = np.where(left, self.left[node], self.right[node])
        return self.baseline + self.value[node].reshape(n, t).sum(axis=1)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.raw(x)))
        return np.column_stack([1.0 - p, p])
