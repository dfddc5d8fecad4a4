"""SAME_FACE pairs of application ids: one shape for every producer and consumer.

A pair of faces is unordered, so it is kept once, as ``a < b`` (string order of the ids), with the cosine
``similarity`` of the two faces. A face never pairs with itself, and a pair found more than once (from
both ends, or by two searches) keeps its best similarity. Pairs come best first, ties in ``a``, ``b`` order.

The all-pairs pass (``embeddings.linking``), the bulk and incremental ingest searches
(``graph.ingest.face_links``, ``graph.ingest.load``) and the in-memory road (``graph.ingest.pipeline``) all
build their pairs here; ``graph.tables`` turns them into account positions.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PAIR_COLUMNS = ("a", "b", "similarity")


def _ordered(a, b, similarity) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(a, b, similarity)`` with each pair as ``a < b``, self-pairs dropped."""
    a, b = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    s = np.asarray(similarity, dtype=np.float32)
    if not len(a):
        return a, b, s
    swap = b < a
    lo, hi = np.where(swap, b, a), np.where(swap, a, b)
    keep = lo != hi
    return lo[keep], hi[keep], s[keep]


def face_pairs_frame(a, b, similarity) -> pd.DataFrame:
    """The pairs as a frame of ``PAIR_COLUMNS``: ``a < b``, no self-pairs, one row per pair, best first."""
    lo, hi, s = _ordered(a, b, similarity)
    df = pd.DataFrame({"a": lo, "b": hi, "similarity": s}, index=pd.RangeIndex(len(s)))
    if len(df) < 2:  # most real-time searches: nothing to sort or deduplicate (pandas' sort is a fixed cost)
        return df
    df = df.sort_values(["similarity", "a", "b"], ascending=[False, True, True], ignore_index=True)
    return df.drop_duplicates(["a", "b"], ignore_index=True)


def face_pairs_list(a, b, similarity) -> list[tuple[str, str, float]]:
    """The same pairs as ``face_pairs_frame``, in the same order, as ``(a, b, similarity)`` tuples: for the
    handful of faces of a real-time decision, building a DataFrame costs more than the search."""
    lo, hi, s = _ordered(a, b, similarity)
    best = sorted(zip(lo.tolist(), hi.tolist(), s.tolist(), strict=True), key=lambda p: (-p[2], p[0], p[1]))
    out: list[tuple[str, str, float]] = []
    seen: set[tuple[str, str]] = set()
    for p in best:
        if p[:2] not in seen:
            seen.add(p[:2])
            out.append(p)
    return out
