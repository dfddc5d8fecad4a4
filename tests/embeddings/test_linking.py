"""All-pairs duplicate-face links against a brute-force pair scan."""

from __future__ import annotations

import numpy as np
import pytest

from embeddings.index import INDEX_TYPES, FaceIndex
from embeddings.linking import link_all_pairs


def gallery(n: int = 3000, dups: int = 150, dim: int = 48, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Random faces plus repeat captures of some of them (three captures for a few)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, dim)).astype(np.float32)
    src = rng.choice(n - dups, size=dups, replace=False)
    x[n - dups :] = x[src] + 0.35 * rng.standard_normal((dups, dim))
    x[n - dups : n - dups + 10] = x[src[:10]] + 0.35 * rng.standard_normal((10, dim))
    return [f"app-{i:05d}" for i in range(n)], x


def brute_pairs(ids: list[str], x: np.ndarray, threshold: float) -> set[tuple[str, str]]:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = xn @ xn.T
    i, j = np.nonzero(np.triu(sims >= threshold, k=1))
    return {(min(ids[a], ids[b]), max(ids[a], ids[b])) for a, b in zip(i, j, strict=True)}


@pytest.mark.parametrize("kind", INDEX_TYPES)
def test_links_match_brute_force(kind: str):
    ids, x = gallery()
    index = FaceIndex.build(ids, x, index_type=kind)
    pairs = link_all_pairs(index, threshold=0.7, k=10, batch_size=500, nprobe=64, progress=False)
    want = brute_pairs(ids, x, 0.7)
    assert len(want) >= 150
    got = set(zip(pairs.a, pairs.b, strict=True))
    assert got == want
    assert (pairs.a < pairs.b).all()
    assert pairs.similarity.is_monotonic_decreasing and (pairs.similarity >= 0.7).all()
    assert not pairs.duplicated(["a", "b"]).any()


def test_k_caps_links_per_face():
    rng = np.random.default_rng(1)
    base = rng.standard_normal(16)
    x = base + 0.05 * rng.standard_normal((30, 16))  # one face captured 30 times
    index = FaceIndex.build([f"a{i}" for i in range(30)], x)
    pairs = link_all_pairs(index, threshold=0.5, k=3, progress=False)
    # each face contributes at most k pairs (O(n·k) memory), and every capture stays linked
    assert len(pairs) <= 30 * 3 < 30 * 29 // 2
    assert set(pairs.a) | set(pairs.b) == {f"a{i}" for i in range(30)}


def test_empty_and_bad_k():
    index = FaceIndex(8)
    assert len(link_all_pairs(index, 0.5, progress=False)) == 0
    with pytest.raises(ValueError, match="k must be positive"):
        link_all_pairs(index, 0.5, k=0, progress=False)
