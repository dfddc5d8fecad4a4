"""Splits that keep whole rings on one side, so no metric is measured on a ring the model has seen."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

SPLITS = ("time", "random")


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


def time_split(
    created_at: np.ndarray, groups: np.ndarray, labels: np.ndarray, fraction: float
) -> tuple[np.ndarray, int]:
    """Boolean mask of the held-out side and the cut (epoch ms): the latest ``fraction`` of the labelled
    accounts by ``created_at``, and every labelled account of a group with a positive (a ring) that has a
    labelled member at or after the cut.

    A model is fitted on the past and judged on what came after, as it will be used. A ring whose members
    straddle the cut goes wholly to the held-out side rather than being cut in two or having its early
    members dropped: the fitted side then holds only accounts from before the cut and shares no ring with
    the held-out side, and no label is lost; the held-out side grows by the early members of such rings (the
    artifact counts them). A group without a positive (a household, a re-applicant: linked honest people) is
    split by time like any account, as in use, where the earlier applicant is history when the later one
    arrives; kept whole, the households spread over the period doubled the held-out side. Only labelled
    accounts take part: an unlabelled member is neither fitted nor measured."""
    t = np.asarray(created_at, dtype=np.int64)
    y = np.asarray(labels, dtype=np.float64)
    known = ~np.isnan(y)
    times = np.sort(t[known])
    if not len(times):
        raise ValueError("no labelled account to split")
    k = min(len(times), max(1, int(round(fraction * len(times)))))
    cut = int(times[len(times) - k])
    late = known & (t >= cut)
    codes, uniq = pd.factorize(pd.Series(groups, dtype=object))
    codes = np.where(codes >= 0, codes, len(uniq))  # accounts without a group: one slot, never marked
    ring = np.zeros(len(uniq) + 1, dtype=bool)
    ring[codes[known & (y == 1)]] = True
    reach = np.zeros(len(uniq) + 1, dtype=bool)
    reach[codes[late]] = True
    whole = ring & reach
    whole[len(uniq)] = False
    return late | (known & whole[codes]), cut


def holdout_split(
    kind: str,
    created_at: np.ndarray,
    groups: np.ndarray,
    labels: np.ndarray,
    fraction: float,
    seed: int,
) -> tuple[np.ndarray, dict]:
    """The held-out side of the labelled accounts (``labels`` NaN when unknown) for ``kind`` (``SPLITS``), with
    what the artifact records of it:
    ``time_split`` (the default: the latest period) or ``group_split`` (a random share of the groups)."""
    known = ~np.isnan(np.asarray(labels, dtype=np.float64))
    if kind == "time":
        hold, cut = time_split(created_at, groups, labels, fraction)
        t = np.asarray(created_at, dtype=np.int64)
        info = {
            "kind": "time",
            "cut": datetime.fromtimestamp(cut / 1000, UTC).isoformat().replace("+00:00", "Z"),
            "cut_ms": cut,
            "held_out_before_cut": int((hold & (t < cut)).sum()),
        }
    elif kind == "random":
        hold = group_split(groups, fraction, seed) & known
        info = {"kind": "random", "seed": seed}
    else:
        raise ValueError(f"unknown split {kind!r}; use one of {', '.join(SPLITS)}")
    return hold, info | {"holdout_fraction": fraction}


def describe_split(split: dict | None) -> str:
    """One line for reports: which accounts chose, calibrated and set the thresholds of the shipped model."""
    if not split:
        return "internal holdout: not recorded (a model saved before the split was recorded: random by ring)"
    share = f"{split['holdout_fraction']:.0%}"
    if split["kind"] == "time":
        early = split["held_out_before_cut"]
        return (
            f"internal holdout: time split at {split['cut']}: models fitted on labelled accounts before it, the "
            f"latest {share} held out"
            + (f", with the {early} earlier members of the rings that reach the cut" if early else "")
        )
    return f"internal holdout: random {share} of rings and linked groups (seed {split['seed']})"


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
