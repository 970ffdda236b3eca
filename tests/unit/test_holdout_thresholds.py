"""Threshold decisions (pure): absolute bounds and MLflow-style changes versus the stable model."""

from __future__ import annotations

import math

from modelrollout.holdout.thresholds import Threshold, judge


def test_absolute_bounds() -> None:
    t = Threshold("accuracy", greater_is_better=True, min=0.8, max=0.99)
    assert judge(t, 0.85, None).passed
    low = judge(t, 0.79, None)
    assert not low.passed
    assert low.reasons == ("accuracy 0.79 < min 0.8",)
    assert not judge(t, 0.995, None).passed


def test_min_absolute_change_greater_is_better() -> None:
    t = Threshold("f1", greater_is_better=True, min_absolute_change=0.01)
    assert judge(t, 0.82, 0.80).passed
    worse = judge(t, 0.805, 0.80)
    assert not worse.passed
    assert "must be higher by at least 0.01" in worse.reasons[0]


def test_lower_is_better_regression_metric() -> None:
    # mean_absolute_error: the candidate must be lower (better) than stable by 5%.
    t = Threshold("mean_absolute_error", greater_is_better=False, min_relative_change=0.05)
    assert judge(t, 0.90, 1.0).passed
    assert not judge(t, 0.97, 1.0).passed
    assert not judge(t, 1.2, 1.0).passed


def test_negative_change_is_a_tolerance() -> None:
    t = Threshold("roc_auc", greater_is_better=True, min_relative_change=-0.02)
    assert judge(t, 0.89, 0.90).passed  # 1.1% worse, 2% tolerated
    verdict = judge(t, 0.85, 0.90)
    assert not verdict.passed
    assert "may be at most 2% lower" in verdict.reasons[0]


def test_relative_change_with_negative_stable_value() -> None:
    # r2 can be negative; an improvement is still "higher".
    t = Threshold("r2", greater_is_better=True, min_relative_change=0.1)
    assert judge(t, -0.4, -0.5).passed
    assert not judge(t, -0.6, -0.5).passed


def test_without_stable_relative_thresholds_are_noted_not_applied() -> None:
    t = Threshold("accuracy", greater_is_better=True, min=0.5, min_absolute_change=0.1)
    verdict = judge(t, 0.9, None)
    assert verdict.passed
    assert verdict.notes == ("no stable model: relative thresholds not applied",)


def test_undefined_values_never_pass() -> None:
    t = Threshold("roc_auc", greater_is_better=True, max=1.0)
    assert not judge(t, math.nan, 0.9).passed
    rel = Threshold("roc_auc", greater_is_better=True, min_absolute_change=0.0)
    assert not judge(rel, 0.9, math.nan).passed
