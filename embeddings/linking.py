"""Duplicate-face links: every gallery face against every other, without an n×n matrix.

Each batch of gallery vectors is searched against the index as queries: the HNSW graph (``ef_search``)
or the IVF cells (``nprobe``). A pair is found when either face finds the other, so the pass recalls more
pairs than one search does. Only pairs above the threshold survive, at most ``k`` per face, so memory is
O(n·k) however large the gallery grows.

Exact all-pairs is out of reach at 1M on two cores: 5·10^11 dot products of 512-d vectors is about
5·10^14 flops, hours of matrix products on two cores even in bf16.
Joining IVF cells with their nearest cells by matrix products was tried twice: on near-isotropic embeddings
a face's second-best cell is rarely next to its first, so at 100k it found 64% of the pairs above 0.30
while joining 12% of the cells (a query's own probes find 94% at 12%).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from tqdm import tqdm

from embeddings.index import FaceIndex
from embeddings.pairs import face_pairs_frame


def link_all_pairs(
    index: FaceIndex,
    threshold: float,
    k: int = 20,
    batch_size: int = 4096,
    nprobe: int | None = None,
    progress: bool = True,
    ef_search: int | None = None,
) -> pd.DataFrame:
    """Candidate SAME_FACE pairs (``embeddings.pairs``) with cosine ``similarity >= threshold``.

    ``nprobe`` (IVF) and ``ef_search`` (HNSW; defaults the index's) trade recall of pairs for time.
    ``k`` caps the links per face (a face seen 50 times links to its ``k`` closest captures, which is
    enough to connect them all in the graph). Writers wait while the pass runs.
    """
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    found_s: list[np.ndarray] = []
    with index.reading():
        bar = tqdm(total=len(index), desc="face links", unit="face", disable=not progress)
        for keys, sims, nbrs in _search_blocks(index, batch_size, k, nprobe, ef_search):
            sims, nbrs = _top_k_above(sims, nbrs, keys, threshold, k)
            rows, cols = np.nonzero(nbrs >= 0)
            found_a.append(keys[rows])
            found_b.append(nbrs[rows, cols])
            found_s.append(sims[rows, cols])
            bar.update(len(keys))
        bar.close()
        if not found_a:
            return face_pairs_frame((), (), ())
        # a pair found from both ends is one pair: face_pairs_frame keeps its higher similarity
        id_a = index._lookup(np.concatenate(found_a))
        id_b = index._lookup(np.concatenate(found_b))
    return face_pairs_frame(id_a, id_b, np.concatenate(found_s))


def _search_blocks(
    index: FaceIndex, batch_size: int, k: int, nprobe: int | None, ef_search: int | None
) -> Iterator[tuple[np.ndarray, ...]]:
    """Each batch of gallery vectors searched as queries (its own vector comes back too, hence k + 1)."""
    for keys, x in index.iter_vectors(batch_size):
        sims, nbrs = index._search_locked(x, k + 1, nprobe, ef_search=ef_search)
        yield keys, sims, nbrs


def _top_k_above(
    sims: np.ndarray, nbrs: np.ndarray, keys: np.ndarray, threshold: float, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """Per row, the ``k`` most similar neighbours at or above the threshold (others marked -1)."""
    sims = np.where((sims >= threshold) & (nbrs >= 0) & (nbrs != keys[:, None]), sims, -np.inf)
    if sims.shape[1] > k:
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        sims, nbrs = np.take_along_axis(sims, top, 1), np.take_along_axis(nbrs, top, 1)
    return sims, np.where(np.isfinite(sims), nbrs, -1)
