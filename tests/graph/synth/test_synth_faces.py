"""The synthetic face model: shapes, determinism, calibration and non-isotropic geometry."""

from __future__ import annotations

import numpy as np
import pytest

from graph.synth.faces import (
    FaceModel,
    FaceParams,
    measure_similarities,
    repeat_identities,
    sample_embeddings,
)


def test_sample_embeddings_shapes_and_units():
    emb, ids = sample_embeddings(3000, dim=512, seed=3, dup_rate=0.05)
    assert emb.shape == (3000, 512) and emb.dtype == np.float32
    assert ids.shape == (3000,) and ids.dtype == np.int64
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    repeats = 3000 - len(np.unique(ids))
    assert 0.03 * 3000 < repeats < 0.07 * 3000


def test_repeats_point_back_to_earlier_identities():
    ids = repeat_identities(5000, 0.1, np.random.default_rng(1))
    assert ids[0] == 0
    seen_max = np.maximum.accumulate(ids)
    # a new identity is always the next unused id; a repeat is one already seen
    assert np.all(ids <= np.r_[0, seen_max[:-1] + 1])


def test_sample_embeddings_is_deterministic_per_seed():
    a, ia = sample_embeddings(500, dim=64, seed=11)
    b, ib = sample_embeddings(500, dim=64, seed=11)
    c, _ = sample_embeddings(500, dim=64, seed=12)
    assert np.array_equal(a, b) and np.array_equal(ia, ib)
    assert not np.array_equal(a, c)


def test_repeat_captures_match_and_strangers_do_not():
    emb, ids = sample_embeddings(4000, dim=512, seed=5, dup_rate=0.05)
    first = {}
    genuine = []
    for i, k in enumerate(ids):
        if k in first:
            genuine.append(float(emb[i] @ emb[first[k]]))
        else:
            first[k] = i
    impostor = np.sum(emb[:1000] * emb[1000:2000], axis=1)[ids[:1000] != ids[1000:2000]]
    assert 0.6 < np.mean(genuine) < 0.8
    assert abs(impostor.mean()) < 0.05
    assert np.mean(genuine) - 3 * np.std(genuine) > impostor.mean()


def test_calibration_matches_published_arcface_figures():
    s = measure_similarities(pairs=5000, seed=2)
    g, i, t = s["genuine"], s["impostor"], s["twin"]
    assert 0.65 <= g.mean <= 0.75 and 0.07 <= g.sd <= 0.13
    assert 0.0 <= i.mean <= 0.05 and 0.045 <= i.sd <= 0.075
    assert i.mean + 5 * i.sd < t.mean < g.mean


def test_identities_are_not_isotropic():
    model = FaceModel.create(FaceParams(dim=256), np.random.default_rng(0))
    x = model.identities(np.random.default_rng(1), 4000)
    eig = np.linalg.eigvalsh(np.cov(x.T))[::-1]
    # isotropic unit vectors would put 16/256 = 6% of the variance in the top 16 directions
    assert eig[:16].sum() / eig.sum() > 0.15


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError):
        sample_embeddings(10, dim=1)
    with pytest.raises(ValueError):
        sample_embeddings(10, dim=128, params=FaceParams(dim=512))
