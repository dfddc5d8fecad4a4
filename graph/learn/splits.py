"""Splits that keep whole rings on one side, so no metric is measured on a ring the model has seen."""

from __future__ import annotations

import numpy as np
import pandas as pd


def ring_groups(application_ids: np.ndarray, ring_ids: np.ndarray | None) -> np.ndarray:
    """Group key per row: the ring id for ring members, the application id for everyone else."""
    ids = np.asarray(application_ids, dtype=object)
    if ring_ids is None:
        return ids
    rings = pd.Series(ring_ids, dtype=object)
    return np.where(rings.notna().to_numpy(), "ring:" + rings.fillna("").astype(str).to_numpy(), ids)


def group_split(groups: np.ndarray, test_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of the test side; whole groups go to one side."""
    codes, uniq = pd.factorize(pd.Series(groups, dtype=object))
    rng = np.random.default_rng(seed)
    test_groups = rng.random(len(uniq)) < test_fraction
    return test_groups[codes]


def validation_split(
    idx: np.ndarray, y: np.ndarray, groups: np.ndarray | None, seed: int, fraction: float = 0.2
) -> tuple[np.ndarray, np.ndarray]:
    """Split labelled rows ``idx`` into train and validation (by group when given), keeping positives on both
    sides."""
    rng = np.random.default_rng(seed + 1)
    if groups is not None:
        va_mask = group_split(np.asarray(groups, dtype=object)[idx], fraction, seed + 1)
    else:
        va_mask = rng.random(len(idx)) < fraction
    tr, va = idx[~va_mask], idx[va_mask]
    if len(va) == 0 or y[va].sum() == 0 or y[tr].sum() == 0:
        perm = rng.permutation(idx)
        cut = max(1, int(len(perm) * fraction))
        va, tr = np.sort(perm[:cut]), np.sort(perm[cut:])
    return tr, va
