"""The bulk SAME_FACE search (range-search candidates, exact re-score) finds what an exact top-k search finds."""

from __future__ import annotations

import numpy as np
import pandas as pd

from embeddings.index import FaceIndex
from graph.ingest.face_links import new_face_pairs
from graph.ingest.load import _gallery, face_pairs

DIM = 64


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def near(base: np.ndarray, sim: float, rng: np.random.Generator) -> np.ndarray:
    """A unit vector at cosine ``sim`` from the unit vector ``base``."""
    r = rng.standard_normal(base.shape[0]).astype(np.float64)
    r -= r.dot(base) * base
    r /= np.linalg.norm(r)
    return (sim * base + np.sqrt(1 - sim**2) * r).astype(np.float32)


def faces(n: int, rng: np.random.Generator, threshold: float) -> np.ndarray:
    """Random faces plus planted pairs just above and just below the threshold, and one face with many
    look-alikes (more than k), so both the margin and the per-face cap are exercised."""
    x = unit(rng.standard_normal((n, DIM)))
    for j in range(0, 60, 2):
        x[j + 1] = near(x[j].astype(np.float64), threshold + (0.0005 if j % 4 else -0.0005), rng)
    for j in range(100, 112):
        x[j] = near(x[99].astype(np.float64), threshold + 0.01 * (j - 99), rng)
    return unit(x)


def exact(ids: list[str], x: np.ndarray, gallery_ids: list[str], g: np.ndarray, threshold: float, k: int):
    """Brute force: each new face keeps its k best matches >= threshold among the gallery and the others."""
    all_ids = np.array(gallery_ids + ids, dtype=object)
    s = x @ np.concatenate([g, x]).T
    pairs = set()
    for q in range(len(ids)):
        s[q, len(gallery_ids) + q] = -np.inf
        order = np.argsort(-s[q], kind="stable")[:k]
        for j in order:
            if s[q, j] >= threshold:
                pairs.add(tuple(sorted((ids[q], all_ids[j]))))
    return pairs


def as_set(df: pd.DataFrame) -> set[tuple[str, str]]:
    return set(zip(df["a"], df["b"], strict=True))


def test_bulk_pairs_equal_the_exact_search_with_a_gallery_and_the_cap():
    rng = np.random.default_rng(3)
    threshold, k = 0.45, 5
    x = faces(400, rng, threshold)
    ids = [f"app-{i:04d}" for i in range(len(x))]
    gallery, new = slice(0, 150), slice(150, None)
    index = FaceIndex(DIM)
    index.add(ids[gallery], x[gallery])
    got = new_face_pairs(ids[new], x[new], _gallery(index), threshold, k, index.ids_of)
    want = exact(ids[new], x[new], ids[gallery], x[gallery], threshold, k)
    assert want  # the planted pairs are there
    assert as_set(got) == want
    assert (got["a"] < got["b"]).all()
    assert got["similarity"].min() >= threshold
    # and the same as the top-k search that ingest used before, on the same data
    index.add(ids[new], x[new])
    assert as_set(face_pairs(index, ids[new], x[new], threshold, k)) == want


def test_planted_pairs_just_above_the_threshold_are_found_and_just_below_are_not():
    rng = np.random.default_rng(4)
    threshold = 0.3008
    x = faces(200, rng, threshold)
    ids = [f"a{i:03d}" for i in range(len(x))]
    got = as_set(new_face_pairs(ids, x, iter(()), threshold, k=50))
    for j in range(0, 60, 2):
        assert ((ids[j], ids[j + 1]) in got) == bool(j % 4), j


def test_stale_copies_of_new_ids_in_the_gallery_are_ignored():
    rng = np.random.default_rng(5)
    x = unit(rng.standard_normal((10, DIM)))
    ids = [f"x{i}" for i in range(10)]
    index = FaceIndex(DIM)
    index.add(ids[:3], x[:3])  # the same ids, already indexed: no self-pairs may come back
    got = new_face_pairs(ids, x, _gallery(index), 0.3, 5, index.ids_of)
    assert not (got["a"] == got["b"]).any()
    assert len(new_face_pairs([], np.zeros((0, DIM), np.float32), iter(()), 0.3, 5)) == 0


def test_face_pair_list_matches_face_pairs() -> None:
    """The real-time list form holds the same pairs, best first, as the DataFrame form."""
    from embeddings.index import normalise
    from graph.ingest.load import face_pair_list

    rng = np.random.default_rng(3)
    base = rng.standard_normal((40, 16)).astype(np.float32)
    twins = base[:10] + 0.1 * rng.standard_normal((10, 16)).astype(np.float32)
    index = FaceIndex(16)
    ids = [f"old-{i}" for i in range(40)]
    index.add(ids, base)
    new_ids = [f"new-{i}" for i in range(10)]
    index.add(new_ids, twins)
    vectors = normalise(twins, 16)
    frame = face_pairs(index, new_ids, vectors, 0.5, 5)
    listed = face_pair_list(index, new_ids, vectors, 0.5, 5)
    assert len(listed) == len(frame) >= 10
    assert sorted((a, b) for a, b, _ in listed) == sorted(zip(frame["a"], frame["b"], strict=True))
    assert [s for *_, s in listed] == sorted((s for *_, s in listed), reverse=True)
    assert face_pair_list(index, [], None, 0.5, 5) == []
