"""The baselines the GNN has to beat, behind the same ``fit``/``predict_proba`` interface.

- ``RulesModel``: what fraud teams run today in Neo4j GDS: weakly connected components over shared
  identifiers (hubs cut at a degree cap), plus counts of shared identifiers and of faces reused under another
  name. Its only learning is the weight of those three counts (a logistic regression), the equivalent of
  tuning alert thresholds.
- ``GBTModel``: gradient-boosted trees on the full neighbour-aggregated feature set, the strongest family on
  GADBench.
- ``EnsembleModel``: a weighted mean of members' probabilities.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from graph.learn.features import feature_coverage
from graph.learn.hetero import GraphInput
from graph.learn.trees import FlatTrees

RULE_COLUMNS = ("comp_size", "n_rare", "face_other_both")
FLAT_MAX_ROWS = 16  # up to here numpy walks the trees faster than sklearn (real-time decisions)


def _xy(graph: GraphInput, mask: np.ndarray, y: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    y = graph.labels if y is None else np.asarray(y, dtype=np.float64)
    idx = np.flatnonzero(np.asarray(mask) & ~np.isnan(y))
    return idx, y


class RulesModel:
    name = "rules"

    def __init__(self) -> None:
        self.lr = LogisticRegression(class_weight="balanced", max_iter=1000)

    def _x(self, graph: GraphInput) -> np.ndarray:
        return _rule_x(graph.features[list(RULE_COLUMNS)].to_numpy(np.float64), list(RULE_COLUMNS))

    def fit(
        self, graph: GraphInput, mask: np.ndarray, y: np.ndarray | None = None, groups=None
    ) -> RulesModel:
        idx, y = _xy(graph, mask, y)
        self.lr.fit(self._x(graph)[idx], y[idx].astype(int))
        return self

    def predict_proba(self, graph: GraphInput) -> np.ndarray:
        return self.lr.predict_proba(self._x(graph))

    def predict_features(self, x: np.ndarray, columns: list[str]) -> np.ndarray:
        """From a feature array whose columns are ``columns`` (a real-time decision's)."""
        return self.lr.predict_proba(_rule_x(x, columns))

    def predict_new(self, new) -> np.ndarray:
        """Positive-class probability of each new account (``graph.learn.scoring.NewAccounts``)."""
        return self.predict_features(new.x, new.columns)[:, 1]


def _rule_x(x: np.ndarray, columns: list[str]) -> np.ndarray:
    rule = [columns.index(c) for c in RULE_COLUMNS]
    return np.nan_to_num(np.asarray(x)[:, rule].astype(np.float64))


class GBTModel:
    name = "gbt"

    def __init__(self, max_iter: int = 400, learning_rate: float = 0.08, seed: int = 0):
        self.clf = HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=31,
            min_samples_leaf=40,
            l2_regularization=1.0,
            early_stopping=True,
            validation_fraction=0.15,
            n_iter_no_change=30,
            random_state=seed,
        )
        self.columns: list[str] = []
        self.neutralised: list[str] = []
        self._flat: FlatTrees | None = None

    def fit(self, graph: GraphInput, mask: np.ndarray, y: np.ndarray | None = None, groups=None) -> GBTModel:
        """A column with no value on the fitted rows (an optional input absent, ``feature_coverage``) is fitted
        as zeros: sklearn's binning fails on a column without any value, and a constant column is one the
        trees never split on, so the column keeps its place in the schema and its values are ignored when
        scoring (a new application that has the input is scored as if it had not)."""
        idx, y = _xy(graph, mask, y)
        self.columns = list(graph.features.columns)
        self._flat = None
        x = graph.features.to_numpy(np.float32)[idx]
        self.neutralised = feature_coverage(x, self.columns)["all_nan"]
        x[:, [self.columns.index(c) for c in self.neutralised]] = 0.0
        self.clf.fit(x, y[idx].astype(int))
        return self

    def predict_features(self, x: np.ndarray) -> np.ndarray:
        if len(x) > FLAT_MAX_ROWS:
            return self.clf.predict_proba(x)
        if self._flat is None:
            self._flat = FlatTrees(self.clf)
        return self._flat.predict_proba(x)

    def predict_new(self, new) -> np.ndarray:
        return self.predict_features(new.x)[:, 1]

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "_flat"}  # rebuilt on first use

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._flat = None

    def predict_proba(self, graph: GraphInput) -> np.ndarray:
        return self.predict_features(graph.features[self.columns].to_numpy(np.float32))


class EnsembleModel:
    """Weighted mean of the members' positive-class probabilities (members already fitted). The one place
    an ensemble score is computed: for a whole graph, for new accounts, and from members' scores at hand."""

    name = "ensemble"

    def __init__(self, members: list, weights: list[float] | None = None):
        self.members = members
        self.weights = np.asarray(weights or [1.0] * len(members), dtype=np.float64)

    def fit(
        self, graph: GraphInput, mask: np.ndarray, y: np.ndarray | None = None, groups=None
    ) -> EnsembleModel:
        for m in self.members:
            m.fit(graph, mask, y, groups)
        return self

    def combine(self, member_scores: list[np.ndarray]) -> np.ndarray:
        p = sum(w * s for w, s in zip(self.weights, member_scores, strict=True))
        return p / self.weights.sum()

    def predict_proba(self, graph: GraphInput) -> np.ndarray:
        p = self.combine([m.predict_proba(graph)[:, 1] for m in self.members])
        return np.column_stack([1 - p, p])

    def predict_new(self, new) -> np.ndarray:
        return self.combine([m.predict_new(new) for m in self.members])
