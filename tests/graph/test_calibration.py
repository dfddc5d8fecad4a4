import numpy as np
import pytest

from graph.calibration import Calibrator, threshold_for_fpr


def test_threshold_keeps_fpr_at_or_below_target():
    rng = np.random.default_rng(0)
    neg = rng.random(10_000)
    for fpr in (0.001, 0.005, 0.02):
        t = threshold_for_fpr(neg, fpr)
        assert (neg >= t).mean() <= fpr
        assert (neg >= t).mean() > fpr - 0.001


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibrated_scores_are_monotone_and_decisions_follow_thresholds(method):
    rng = np.random.default_rng(1)
    y = (rng.random(5000) < 0.1).astype(float)
    s = np.clip(0.3 * y + rng.normal(0.3, 0.15, 5000), 0, 1)
    cal = Calibrator.fit(s, y, target_fpr=0.005, review_fpr=0.05, method=method)
    p = cal.transform(np.sort(s))
    assert np.all(np.diff(p) >= 0)
    assert cal.review_at <= cal.decline_at
    d = cal.decide(cal.transform(s))
    assert set(d) <= {"approve", "review", "decline"}
    assert (d[y == 0] == "decline").mean() <= 0.005 + 1e-9
    assert (d[y == 0] != "approve").mean() <= 0.05 + 1e-9
    # well calibrated on its own data: predicted and observed rates agree
    assert abs(cal.transform(s).mean() - y.mean()) < 0.03
    back = Calibrator.from_dict(cal.to_dict())
    assert np.allclose(back.transform(s), cal.transform(s))


def test_unknown_method_is_a_clear_error():
    with pytest.raises(ValueError, match="isotonic or platt"):
        Calibrator.fit(np.array([0.1, 0.9]), np.array([0, 1]), 0.01, 0.05, method="magic")
