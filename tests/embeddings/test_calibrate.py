"""Threshold calibration: FMR/FNMR, the gallery-size correction, files written, and LFW figures."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from embeddings.calibrate import (
    calibrate,
    calibrate_identities,
    fmr_for_fpir,
    fpir_from_fmr,
    identification,
    load_threshold,
    pair_scores,
    save_calibration,
)

SHARED = Path(
    os.environ.get("RINGWATCH_SHARED_DATA", Path(__file__).resolve().parents[2] / ".." / "shared" / "data")
)
LFW = SHARED / "lfw_dlib128" / "embeddings.npz"


def labelled(n_ids: int = 200, per_id: int = 4, dim: int = 64, noise: float = 0.5, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_ids, dim))
    labels = np.repeat(np.arange(n_ids), per_id)
    x = centres[labels] + noise * rng.standard_normal((len(labels), dim))
    return x.astype(np.float32), labels


def test_fpir_grows_with_gallery_and_inverts():
    assert fpir_from_fmr(1e-4, 1) == pytest.approx(1e-4)
    assert fpir_from_fmr(1e-4, 10_000) == pytest.approx(1 - (1 - 1e-4) ** 10_000)
    assert fpir_from_fmr(1e-4, 1_000_000) > 0.99
    for n in (1, 1000, 10**6):
        assert fpir_from_fmr(fmr_for_fpir(0.01, n), n) == pytest.approx(0.01, rel=1e-6)


def test_threshold_meets_target_fmr_and_rises_with_gallery():
    rng = np.random.default_rng(0)
    impostor = rng.normal(0.0, 0.1, 400_000)
    genuine = rng.normal(0.7, 0.1, 5_000)
    cal = calibrate(genuine, impostor, target_fmr=1e-3, target_fpir=0.01, gallery_size=10_000)
    # 400 impostors lie above the pairwise threshold, so it is measured, not modelled
    assert np.mean(impostor >= cal.threshold_at_fmr) == pytest.approx(1e-3, rel=0.05)
    assert np.mean(genuine < cal.threshold_at_fmr) == pytest.approx(cal.fnmr_at_threshold)
    # the tail model is close to the true normal tail where it extrapolates
    from scipy import stats

    true_t = stats.norm.isf(fmr_for_fpir(0.01, 10_000), 0, 0.1)
    assert cal.same_face_threshold == pytest.approx(true_t, abs=0.03)
    assert cal.extrapolated
    thresholds = [r["threshold"] for r in cal.by_gallery_size]
    assert thresholds == sorted(thresholds) and thresholds[0] < thresholds[-1]
    assert cal.same_face_threshold > cal.threshold_at_fmr
    assert cal.fpir_at_threshold_at_fmr > 0.5  # the pairwise threshold is far too loose at N=10k


def test_pair_scores_exact_and_sampled_agree():
    x, labels = labelled(n_ids=300, per_id=3)
    g_exact, i_exact = pair_scores(x, labels)
    assert len(g_exact) == 300 * 3 and len(i_exact) == 900 * 899 // 2 - 900
    big_x, big_labels = labelled(n_ids=2100, per_id=3, seed=1)  # 6300 rows: sampled impostors
    g, i = pair_scores(big_x, big_labels, max_impostor=200_000)
    assert len(g) == 2100 * 3 and 190_000 < len(i) <= 200_000
    assert abs(np.mean(i) - np.mean(i_exact)) < 0.02 and abs(np.mean(g) - np.mean(g_exact)) < 0.02


def test_identification_on_separable_and_noisy_data():
    x, labels = labelled(n_ids=100, per_id=5, noise=0.3)
    easy = identification(x, labels)
    assert easy.gallery_size == 100 and easy.mated_searches == 400
    assert easy.rank1 == 1.0
    assert easy.fnir_at_fpir["0.01"]["fpir"] <= 0.01
    hard = identification(*labelled(n_ids=100, per_id=5, noise=2.0))
    assert hard.rank1 < 0.9 and hard.fnir_at_fpir["0.01"]["fnir"] > easy.fnir_at_fpir["0.01"]["fnir"]


def test_save_and_load(tmp_path: Path):
    x, labels = labelled()
    cal = calibrate_identities(x, labels, gallery_size=1000)
    json_path, png = save_calibration(cal, tmp_path / "cal" / "face_calibration.json")
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"
    data = json.loads(json_path.read_text())
    assert data["gallery_size"] == 1000 and data["measured_1n"]["gallery_size"] == 200
    assert load_threshold(json_path) == pytest.approx(cal.same_face_threshold)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a ringwatch face calibration"):
        load_threshold(tmp_path / "bad.json")


def test_too_few_scores_is_a_clear_error():
    with pytest.raises(ValueError, match="impostor"):
        calibrate(np.ones(100), np.zeros(10))


@pytest.mark.skipif(not LFW.exists(), reason=f"LFW embeddings not found at {LFW}")
def test_lfw_calibration_matches_the_published_figures():
    data = np.load(LFW)
    cal = calibrate_identities(data["embeddings"], data["identity"], target_fmr=1e-3, gallery_size=1000)
    # ../shared/data/README.md: FMR 1e-3 on normalised cosine is at about 0.927
    assert cal.threshold_at_fmr == pytest.approx(0.927, abs=0.005)
    assert not cal.by_gallery_size[0]["extrapolated"] or cal.by_gallery_size[0]["gallery_size"] > 100
    m = cal.measured_1n
    assert m["gallery_size"] == 423 and 0.9 < m["rank1"] < 0.98
    assert m["fnir_at_fpir"]["0.01"]["fpir"] <= 0.01
