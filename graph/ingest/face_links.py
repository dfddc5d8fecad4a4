"""SAME_FACE pairs for a bulk ingest: every pair above the threshold, exactly, whatever the index type.

Only pairs at or above the SAME_FACE threshold become links, so instead of a top-k search of each new face,
FAISS's fp32 range search lists the pairs above ``threshold - MARGIN`` over the stored vectors (read with
``FaceIndex.iter_vectors``, so an approximate index cannot lose pairs), each is re-scored in float32, and
the per-face cap of ``k`` links is applied to those scores. The batch searched against itself is symmetric,
so only its upper triangle of tiles is computed.

A bfloat16 product (torch) to find candidates, re-checked in fp32, was tried and dropped: on the 2-core
development machine its GEMM ran at about the rate of FAISS's fp32 one, and the 100k ingest was no faster.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import faiss
import numpy as np
import pandas as pd

from embeddings.pairs import face_pairs_frame

# candidates this far below the threshold are re-scored too, so rounding in the product cannot lose a pair
MARGIN = 0.001
# queries x gallery rows per product (a 256 MiB fp32 block of similarities at most)
QUERY_TILE = 4096
GALLERY_TILE = 16_384


def _candidates(q: np.ndarray, g: np.ndarray, low: float, upper_only: bool) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the similarities > ``low``; with ``upper_only`` only col > row (a block vs itself).

    One fp32 BLAS product per call, without the top-k heaps of a k-NN search."""
    block = faiss.IndexFlatIP(g.shape[1])
    block.add(np.ascontiguousarray(g, dtype=np.float32))
    lims, _, cols = block.range_search(np.ascontiguousarray(q, dtype=np.float32), low)
    rows = np.repeat(np.arange(len(q), dtype=np.int64), np.diff(lims).astype(np.int64))
    cols = cols.astype(np.int64)
    if upper_only:
        keep = cols > rows
        rows, cols = rows[keep], cols[keep]
    return rows, cols


def _exact(x: np.ndarray, rows: np.ndarray, y: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """float32 dot products of the given row pairs."""
    if not len(rows):
        return np.zeros(0, np.float32)
    return np.einsum("ij,ij->i", x[rows], y[cols]).astype(np.float32)


def new_face_pairs(
    ids: list[str],
    vectors: np.ndarray,
    gallery: Iterable[tuple[np.ndarray, np.ndarray]],
    threshold: float,
    k: int,
    resolve: Callable[[np.ndarray], np.ndarray] | None = None,
) -> pd.DataFrame:
    """SAME_FACE pairs (``embeddings.pairs``) of the new faces with each other and with the gallery.

    ``vectors`` are the new faces (unit rows, float32). ``gallery`` yields ``(keys, unit vectors)`` blocks
    of the faces already indexed; ``resolve`` maps the keys of the matches to ids once the gallery is
    exhausted (so an index's read lock can be held while iterating and released before the lookup), and
    matches that resolve to a new id (a stale copy of it) or to nothing are dropped. Each new face keeps its ``k`` most similar
    matches at or above ``threshold`` (the cap a top-``k`` search applies); a pair is kept when either of
    its faces keeps it.
    """
    empty = face_pairs_frame((), (), ())
    n = len(ids)
    if not n:
        return empty
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    low = threshold - MARGIN
    src: list[np.ndarray] = []  # new-face row
    dst: list[np.ndarray] = []  # matched id
    sim: list[np.ndarray] = []
    new_ids = np.asarray(ids, dtype=object)

    def keep(q_rows: np.ndarray, other_ids: np.ndarray, s: np.ndarray) -> None:
        ok = s >= threshold
        src.append(q_rows[ok])
        dst.append(other_ids[ok])
        sim.append(s[ok])

    g_rows: list[np.ndarray] = []
    g_keys: list[np.ndarray] = []
    g_sims: list[np.ndarray] = []
    for keys, g_vecs in gallery:
        g = np.ascontiguousarray(g_vecs, dtype=np.float32)
        for glo in range(0, len(g), GALLERY_TILE):
            gt = g[glo : glo + GALLERY_TILE]
            for qlo in range(0, n, QUERY_TILE):
                r, c = _candidates(x[qlo : qlo + QUERY_TILE], gt, low, upper_only=False)
                s = _exact(x, r + qlo, gt, c)
                ok = s >= threshold
                g_rows.append(r[ok] + qlo)
                g_keys.append(np.asarray(keys)[glo + c[ok]])
                g_sims.append(s[ok])
    if g_rows and sum(len(r) for r in g_rows):
        found = np.concatenate(g_keys)
        found = resolve(found) if resolve is not None else found.astype(object)
        ok = (
            np.array([f is not None for f in found], dtype=bool) & ~pd.Series(found).isin(set(ids)).to_numpy()
        )
        keep(np.concatenate(g_rows)[ok], np.asarray(found, dtype=object)[ok], np.concatenate(g_sims)[ok])
    # the new faces against each other: upper triangle of tiles, each found pair counted for both faces
    for ilo in range(0, n, QUERY_TILE):
        for jlo in range(ilo, n, QUERY_TILE):
            r, c = _candidates(
                x[ilo : ilo + QUERY_TILE], x[jlo : jlo + QUERY_TILE], low, upper_only=ilo == jlo
            )
            r, c = r + ilo, c + jlo
            s = _exact(x, r, x, c)
            keep(r, new_ids[c], s)
            keep(c, new_ids[r], s)
    if not src:
        return empty
    q = np.concatenate(src)
    other = np.concatenate(dst)
    s = np.concatenate(sim).astype(np.float32)
    if not len(q):
        return empty
    # the per-face cap: each new face keeps its k best matches
    order = np.lexsort((-s, q))
    q, other, s = q[order], other[order], s[order]
    start = np.r_[0, np.flatnonzero(np.diff(q)) + 1]
    rank = np.arange(len(q)) - np.repeat(start, np.diff(np.r_[start, len(q)]))
    ok = rank < k
    return face_pairs_frame(new_ids[q[ok]], other[ok], s[ok])
