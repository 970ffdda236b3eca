"""Judges: exact expectations computed by hand."""

from __future__ import annotations

import math

import pytest

from modelrollout.api import DriftMethod, JudgeDirection, Verdict
from modelrollout.core.judges import (
    bins_from_cumulative,
    estimate_shift,
    jensen_shannon,
    judge_bound,
    judge_drift,
    judge_mann_whitney,
    judge_ratio,
    psi,
)


def test_bound_within_and_outside() -> None:
    assert judge_bound(0.005, None, 0.01).verdict is Verdict.SUCCESSFUL
    over = judge_bound(0.05, None, 0.01)
    assert over.verdict is Verdict.FAILED
    assert over.value == 0.05
    assert over.message == "0.05 > max 0.01"
    assert over.bound == "<= 0.01"
    under = judge_bound(3.0, 5.0, None)
    assert under.verdict is Verdict.FAILED
    assert under.message == "3 < min 5"
    assert judge_bound(5.0, 5.0, 5.0).verdict is Verdict.SUCCESSFUL


@pytest.mark.parametrize("value", [None, math.nan])
def test_bound_without_data_is_inconclusive_never_success(value: float | None) -> None:
    j = judge_bound(value, None, 0.01)
    assert j.verdict is Verdict.INCONCLUSIVE
    assert j.no_data


def test_ratio_to_stable() -> None:
    j = judge_ratio(0.3, 0.1, None, 2.0)
    assert j.verdict is Verdict.FAILED
    assert j.value == pytest.approx(3.0)
    assert judge_ratio(0.15, 0.1, None, 2.0).verdict is Verdict.SUCCESSFUL
    # Two zeros are equal; anything over a zero stable is infinitely worse.
    assert judge_ratio(0.0, 0.0, None, 1.5).value == 1.0
    assert judge_ratio(0.01, 0.0, None, 1.5).verdict is Verdict.FAILED
    missing = judge_ratio(0.1, None, None, 2.0)
    assert missing.no_data and missing.message == "no data for stable"


def test_mann_whitney_known_case() -> None:
    canary = [1.0, 2.0, 3.0, 4.0, 5.0]
    stable = [6.0, 7.0, 8.0, 9.0, 10.0]
    est = estimate_shift(canary, stable, confidence=0.98)
    # U = 0: exact two-sided p = 2 / C(10, 5) = 2 / 252.
    assert est.p_value == pytest.approx(2 / 252)
    # Median of the 25 differences i - j (values -9..-1, mode -5).
    assert est.shift == -5.0
    # sigma = sqrt(25/12 * 11) = 4.787, z(0.99) = 2.326, k = floor(12.5 - 11.14) = 1:
    # the 2nd smallest and 2nd largest differences.
    assert (est.lower, est.upper) == (-8.0, -2.0)
    assert est.effect_size == pytest.approx(3.0 / 8.0)

    low = judge_mann_whitney(canary, stable, direction=JudgeDirection.DECREASE, min_samples=5)
    assert low.verdict is Verdict.FAILED
    assert low.value == -5.0
    assert low.message.startswith("canary lower")
    # Checking only increases, a lower canary passes.
    up = judge_mann_whitney(canary, stable, direction=JudgeDirection.INCREASE, min_samples=5)
    assert up.verdict is Verdict.SUCCESSFUL
    either = judge_mann_whitney(stable, canary, direction=JudgeDirection.EITHER, min_samples=5)
    assert either.verdict is Verdict.FAILED and either.value == 5.0


def test_mann_whitney_effect_size_allowance() -> None:
    canary = [11.0, 12.0, 13.0, 14.0, 15.0]
    stable = [10.0, 11.0, 12.0, 13.0, 14.0]
    # Same shape, shifted by 1: the CI [L, U] contains 0, so L > b fails -> passes.
    assert judge_mann_whitney(canary, stable, min_samples=5).verdict is Verdict.SUCCESSFUL
    slow = [20.0, 21.0, 22.0, 23.0, 24.0]
    assert judge_mann_whitney(slow, stable, min_samples=5).verdict is Verdict.FAILED
    # effect = 22 / 12 = 1.83 < allowed 2.0: a real increase, but allowed.
    allowed = judge_mann_whitney(slow, stable, min_samples=5, allowed_increase=2.0)
    assert allowed.verdict is Verdict.SUCCESSFUL


def test_mann_whitney_too_few_samples_is_no_data() -> None:
    j = judge_mann_whitney([1.0, 2.0, math.nan], [1.0, 2.0, 3.0], min_samples=3)
    assert j.verdict is Verdict.INCONCLUSIVE and j.no_data
    assert "canary 2, stable 3" in j.message


def test_psi_hand_computed() -> None:
    # p = (.3, .7), q = (.5, .5): (-.2)·ln(.6) + (.2)·ln(1.4)
    expected = -0.2 * math.log(0.6) + 0.2 * math.log(1.4)
    assert psi([30, 70], [50, 50], pseudo_count=0.0) == pytest.approx(expected)
    assert expected == pytest.approx(0.1694596, abs=1e-7)
    assert psi([5, 5], [50, 50]) == pytest.approx(0.0)


def test_psi_smooths_empty_bins() -> None:
    # With a = 0.5: p = (0.5/11, 10.5/11), q mirrored -> 2 · (10/11) · ln(21)
    assert psi([0, 10], [10, 0]) == pytest.approx(2 * (10 / 11) * math.log(21))


def test_jensen_shannon_bounds() -> None:
    assert jensen_shannon([1, 0], [0, 1], pseudo_count=0.0) == pytest.approx(1.0)
    assert jensen_shannon([3, 7], [30, 70], pseudo_count=0.0) == pytest.approx(0.0)
    # p = (.5, .5), q = (1, 0), m = (.75, .25), base 2:
    # JSD = ½[.5 log2(.5/.75) + .5 log2(.5/.25)] + ½[1 · log2(1/.75)]
    jsd = 0.5 * (0.5 * math.log2(0.5 / 0.75) + 0.5 * math.log2(2.0)) + 0.5 * math.log2(1 / 0.75)
    assert jensen_shannon([5, 5], [10, 0], pseudo_count=0.0) == pytest.approx(math.sqrt(jsd))


def test_bins_from_cumulative_buckets() -> None:
    cumulative = {0.5: 10.0, 0.1: 4.0, math.inf: 12.0, 1.0: 9.0}
    # 1.0 < 0.5 cumulative (a reset inside the window) is clamped to 0.
    assert bins_from_cumulative(cumulative) == {0.1: 4.0, 0.5: 6.0, 1.0: 0.0, math.inf: 2.0}


def test_drift_judge_classes() -> None:
    stable = {"0": 500.0, "1": 500.0}
    same = judge_drift({"0": 52.0, "1": 48.0}, stable, 0.1)
    assert same.verdict is Verdict.SUCCESSFUL
    shifted = judge_drift({"0": 20.0, "1": 80.0}, stable, 0.1)
    assert shifted.verdict is Verdict.FAILED
    assert shifted.value is not None and shifted.value > 0.1
    js = judge_drift({"0": 20.0, "1": 80.0}, stable, 0.5, method=DriftMethod.JENSEN_SHANNON)
    assert js.verdict is Verdict.SUCCESSFUL
    # A class only the canary predicts still counts (aligned over the union).
    new_class = judge_drift({"0": 50.0, "1": 0.0, "2": 50.0}, stable, 0.25)
    assert new_class.verdict is Verdict.FAILED


def test_drift_too_few_predictions_is_no_data() -> None:
    j = judge_drift({"0": 3.0}, {"0": 500.0}, 0.1, min_samples=50)
    assert j.verdict is Verdict.INCONCLUSIVE and j.no_data
