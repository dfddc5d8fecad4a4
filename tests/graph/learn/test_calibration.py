import numpy as np
import pytest

from graph.learn.calibration import Calibrator, threshold_for_fpr, worst_group_threshold


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


def test_decline_threshold_bounds_the_worst_benign_group():
    """An average rate can hide a look-alike group declined at several times the target; with groups the
    decline threshold keeps every group large enough to measure at or below the target."""
    rng = np.random.default_rng(2)
    neg = np.r_[rng.normal(0.2, 0.1, 20_000), rng.normal(0.45, 0.1, 1_000), rng.normal(0.9, 0.01, 50)]
    groups = np.array(["honest"] * 20_000 + ["nat"] * 1_000 + ["tiny"] * 50, dtype=object)
    pos = rng.normal(0.8, 0.1, 2_000)
    s = np.clip(np.r_[neg, pos], 0, 1)
    y = np.r_[np.zeros(len(neg)), np.ones(len(pos))]
    g = np.r_[groups, np.full(len(pos), None, dtype=object)]
    plain = Calibrator.fit(s, y, target_fpr=0.005, review_fpr=0.05)
    worst = Calibrator.fit(s, y, target_fpr=0.005, review_fpr=0.05, groups=g)
    p_plain, p_worst = plain.transform(s), worst.transform(s)
    nat = g == "nat"
    assert (p_plain[nat] >= plain.decline_at).mean() > 0.01  # the average hides the NAT group
    assert worst.decline_at > plain.decline_at
    for name in ("honest", "nat"):
        assert (p_worst[g == name] >= worst.decline_at).mean() <= 0.005
    # 50 negatives cannot measure a 0.5% rate: the tiny group does not drive the threshold
    assert (p_worst[g == "tiny"] >= worst.decline_at).mean() > 0.5
    assert worst.review_at <= worst.decline_at
    # unknown groups change nothing
    none = Calibrator.fit(s, y, 0.005, 0.05, groups=np.full(len(s), None, dtype=object))
    assert none.decline_at == plain.decline_at


def test_worst_group_threshold_without_large_groups_is_zero():
    assert worst_group_threshold(np.array([0.9, 0.1]), np.array(["a", "b"], dtype=object), 0.005) == 0.0


def test_groups_are_held_a_standard_error_below_the_target():
    """Bounded exactly at the target on held-out rows, a group is above it on about half of new data; the
    margin keeps each measured group one standard error of its own rate below it."""
    rng = np.random.default_rng(3)
    neg = rng.random(20_000)
    groups = np.array(["big"] * 16_000 + ["small"] * 4_000, dtype=object)
    fpr = 0.005
    exact = worst_group_threshold(neg, groups, fpr, margin_se=0.0)
    held = worst_group_threshold(neg, groups, fpr)
    assert held > exact
    small = groups == "small"
    assert (neg[small] >= exact).mean() > fpr - np.sqrt(fpr * (1 - fpr) / small.sum())
    assert (neg[small] >= held).mean() <= fpr - np.sqrt(fpr * (1 - fpr) / small.sum())
    assert (neg[~small] >= held).mean() <= fpr - np.sqrt(fpr * (1 - fpr) / (~small).sum())
