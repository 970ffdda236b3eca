"""Judges: pure functions that turn measured numbers into a verdict for one measurement.

Every judge returns a `Judgement`. A judge never reports Successful without evidence: a missing
value, NaN or too few samples gives Inconclusive with `no_data=True`, and the outcome policy
(core/analysis_policy.py) then applies the metric's `onNoData`. Which judges a metric's criteria
call, on which fetched data, is decided in core/metric_judging.py.

Judges:
- `judge_bound`: the value against a fixed [min, max].
- `judge_ratio`: canary / stable against a bound on the ratio.
- `judge_mann_whitney`: Kayenta-style comparison of canary and stable samples (Mann-Whitney U,
  Hodges-Lehmann shift and its confidence interval; decision rule as in Kayenta's
  MannWhitneyClassifier).
- `judge_drift`: PSI or Jensen-Shannon distance between prediction distributions.

scipy is imported where it is used (Mann-Whitney, Hodges-Lehmann, Jensen-Shannon), not here: it
is most of the operator's resident memory at start, and most installations never call those.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from modelrollout.api import DriftMethod, JudgeDirection, Verdict

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    value: float | None
    bound: str
    message: str
    # True when the verdict is Inconclusive because data was missing or too scarce.
    no_data: bool = False


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def bound_text(minimum: float | None, maximum: float | None) -> str:
    """A short human form of a bound: '<= 0.01', '>= 5', '[1, 2]', or 'none'."""
    if minimum is not None and maximum is not None:
        return f"[{_fmt(minimum)}, {_fmt(maximum)}]"
    if maximum is not None:
        return f"<= {_fmt(maximum)}"
    if minimum is not None:
        return f">= {_fmt(minimum)}"
    return "none"


def no_data(bound: str, why: str) -> Judgement:
    return Judgement(Verdict.INCONCLUSIVE, None, bound, why, no_data=True)


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def judge_bound(value: float | None, minimum: float | None, maximum: float | None) -> Judgement:
    """Fixed bound: Failed when value < minimum or value > maximum."""
    bound = bound_text(minimum, maximum)
    if value is None or math.isnan(value):
        return no_data(bound, "no data")
    if minimum is not None and value < minimum:
        return Judgement(Verdict.FAILED, value, bound, f"{_fmt(value)} < min {_fmt(minimum)}")
    if maximum is not None and value > maximum:
        return Judgement(Verdict.FAILED, value, bound, f"{_fmt(value)} > max {_fmt(maximum)}")
    return Judgement(Verdict.SUCCESSFUL, value, bound, f"{_fmt(value)} within {bound}")


def ratio(canary: float, stable: float) -> float:
    """canary / stable; two zeros are equal (1.0), anything over a zero stable is infinite."""
    if stable == 0:
        return 1.0 if canary == 0 else math.copysign(math.inf, canary)
    return canary / stable


def judge_ratio(
    canary: float | None,
    stable: float | None,
    min_ratio: float | None,
    max_ratio: float | None,
) -> Judgement:
    """Relative to stable: the bound applies to canary / stable (value reported is the ratio)."""
    bound = "canary/stable " + bound_text(min_ratio, max_ratio)
    if _missing(canary) or _missing(stable):
        side = "canary" if _missing(canary) else "stable"
        return no_data(bound, f"no data for {side}")
    assert canary is not None and stable is not None
    r = ratio(canary, stable)
    detail = f"canary {_fmt(canary)} / stable {_fmt(stable)} = {_fmt(r)}"
    if min_ratio is not None and r < min_ratio:
        return Judgement(Verdict.FAILED, r, bound, f"{detail} < {_fmt(min_ratio)}")
    if max_ratio is not None and r > max_ratio:
        return Judgement(Verdict.FAILED, r, bound, f"{detail} > {_fmt(max_ratio)}")
    return Judgement(Verdict.SUCCESSFUL, r, bound, detail)


@dataclass(frozen=True)
class ShiftEstimate:
    """Hodges-Lehmann shift of canary over stable with its confidence interval."""

    shift: float
    lower: float
    upper: float
    p_value: float
    effect_size: float


def _clean(samples: Iterable[float]) -> np.ndarray:
    a = np.asarray(list(samples), dtype=float)
    return np.asarray(a[~np.isnan(a)], dtype=float)


def remove_outliers(samples: np.ndarray, k: float = 3.0) -> np.ndarray:
    """Keep samples inside [min(P1, Q1 - k·IQR), max(P99, Q3 + k·IQR)] (Kayenta's rule)."""
    if samples.size == 0:
        return samples
    p1, q1, q3, p99 = np.percentile(samples, [1, 25, 75, 99])
    iqr = q3 - q1
    lo = min(p1, q1 - k * iqr)
    hi = max(p99, q3 + k * iqr)
    return np.asarray(samples[(samples >= lo) & (samples <= hi)], dtype=float)


def hodges_lehmann(x: np.ndarray, y: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """Shift estimate (median of all x_i - y_j) and its distribution-free confidence interval.

    The interval takes order statistics of the pairwise differences at ranks given by the normal
    approximation of the rank-sum statistic, with the variance corrected for ties.
    """
    n, m = x.size, y.size
    diffs = np.sort(np.subtract.outer(x, y).ravel())
    shift = float(np.median(diffs))
    pooled = np.concatenate([x, y])
    _, tie_counts = np.unique(pooled, return_counts=True)
    total = n + m
    tie_term = float(np.sum(tie_counts**3 - tie_counts)) / (total * (total - 1)) if total > 1 else 0
    sigma = math.sqrt(n * m / 12.0 * ((total + 1) - tie_term))
    from scipy import stats  # on first use: see the module's docstring

    z = float(stats.norm.ppf(0.5 + confidence / 2.0))
    # 0-based index of the lower order statistic; the upper one mirrors it.
    k = max(0, math.floor(n * m / 2.0 - z * sigma))
    k = min(k, diffs.size - 1)
    return shift, float(diffs[k]), float(diffs[diffs.size - 1 - k])


def estimate_shift(
    canary: Sequence[float], stable: Sequence[float], confidence: float = 0.98
) -> ShiftEstimate:
    x, y = _clean(canary), _clean(stable)
    shift, lower, upper = hodges_lehmann(x, y, confidence)
    from scipy import stats  # on first use: see the module's docstring

    p_value = float(stats.mannwhitneyu(x, y, alternative="two-sided").pvalue)
    mx, my = float(np.mean(x)), float(np.mean(y))
    return ShiftEstimate(shift, lower, upper, p_value, ratio(mx, my))


def judge_mann_whitney(
    canary: Sequence[float],
    stable: Sequence[float],
    *,
    direction: JudgeDirection = JudgeDirection.INCREASE,
    confidence: float = 0.98,
    allowed_increase: float = 1.0,
    allowed_decrease: float = 1.0,
    min_samples: int = 10,
    outliers: bool = False,
) -> Judgement:
    """Kayenta's rule: tolerance b = 0.25·|Δ̂|, effect = mean(canary) / mean(stable).

    Failed (high) when increases are checked, L > b and effect >= allowed_increase;
    Failed (low) when decreases are checked, U < -b and effect <= allowed_decrease.
    The value reported is the Hodges-Lehmann shift Δ̂.
    """
    bound = f"{direction.value} effect {_fmt(allowed_increase)}/{_fmt(allowed_decrease)}"
    x, y = _clean(canary), _clean(stable)
    if outliers:
        x, y = remove_outliers(x), remove_outliers(y)
    if x.size < min_samples or y.size < min_samples:
        return no_data(
            bound, f"too few samples: canary {x.size}, stable {y.size} (min {min_samples})"
        )
    est = estimate_shift(x.tolist(), y.tolist(), confidence)
    tolerance = 0.25 * abs(est.shift)
    detail = (
        f"shift {_fmt(est.shift)} CI{round(confidence * 100)} "
        f"[{_fmt(est.lower)}, {_fmt(est.upper)}], effect {_fmt(est.effect_size)}, "
        f"p={_fmt(est.p_value)}"
    )
    checks_high = direction in (JudgeDirection.INCREASE, JudgeDirection.EITHER)
    checks_low = direction in (JudgeDirection.DECREASE, JudgeDirection.EITHER)
    if checks_high and est.lower > tolerance and est.effect_size >= allowed_increase:
        return Judgement(Verdict.FAILED, est.shift, bound, f"canary higher: {detail}")
    if checks_low and est.upper < -tolerance and est.effect_size <= allowed_decrease:
        return Judgement(Verdict.FAILED, est.shift, bound, f"canary lower: {detail}")
    return Judgement(Verdict.SUCCESSFUL, est.shift, bound, detail)


def bins_from_cumulative(buckets: Mapping[float, float]) -> dict[float, float]:
    """Per-bin counts from a Prometheus histogram's cumulative `le` buckets.

    Counter resets inside the window can make a difference negative; it is clamped to 0.
    """
    out: dict[float, float] = {}
    previous = 0.0
    for le in sorted(buckets):
        cumulative = buckets[le]
        out[le] = max(0.0, cumulative - previous)
        previous = max(previous, cumulative)
    return out


def align(canary: Mapping[K, float], stable: Mapping[K, float]) -> tuple[list[float], list[float]]:
    """Counts over the union of bins/classes of both sides (missing ones are 0).

    The order of bins does not change PSI or Jensen-Shannon; sorting only makes it stable.
    """
    keys = sorted(set(canary) | set(stable), key=repr)
    return [float(canary.get(k, 0.0)) for k in keys], [float(stable.get(k, 0.0)) for k in keys]


def proportions(counts: Sequence[float], pseudo_count: float) -> np.ndarray:
    """Additive smoothing: (c + a) / (N + a·k), so an empty bin never gives ln(0)."""
    c = np.clip(np.asarray(counts, dtype=float), 0.0, None)
    smoothed = c + pseudo_count
    return np.asarray(smoothed / smoothed.sum())


def psi(canary: Sequence[float], stable: Sequence[float], pseudo_count: float = 0.5) -> float:
    """Population stability index Σ (p - q) · ln(p / q) over smoothed proportions."""
    p, q = proportions(canary, pseudo_count), proportions(stable, pseudo_count)
    return float(np.sum((p - q) * np.log(p / q)))


def jensen_shannon(
    canary: Sequence[float], stable: Sequence[float], pseudo_count: float = 0.5
) -> float:
    """Jensen-Shannon distance in base 2 (0 = same distribution, 1 = disjoint)."""
    from scipy.spatial import distance  # on first use: see the module's docstring

    p, q = proportions(canary, pseudo_count), proportions(stable, pseudo_count)
    return float(distance.jensenshannon(p, q, base=2))


def judge_drift(
    canary: Mapping[K, float],
    stable: Mapping[K, float],
    maximum: float,
    *,
    method: DriftMethod = DriftMethod.PSI,
    min_samples: int = 50,
    pseudo_count: float = 0.5,
) -> Judgement:
    """Drift between prediction distributions given as counts per class or per bucket."""
    bound = f"{method.value} {bound_text(None, maximum)}"
    p, q = align(canary, stable)
    n_canary, n_stable = sum(p), sum(q)
    if n_canary < min_samples or n_stable < min_samples:
        return no_data(
            bound,
            f"too few predictions: canary {n_canary:.0f}, stable {n_stable:.0f} "
            f"(min {min_samples})",
        )
    if method is DriftMethod.PSI:
        value = psi(p, q, pseudo_count)
    else:
        value = jensen_shannon(p, q, pseudo_count)
    detail = f"{method.value} {_fmt(value)} over {len(p)} bins"
    if value > maximum:
        return Judgement(Verdict.FAILED, value, bound, f"{detail} > max {_fmt(maximum)}")
    return Judgement(Verdict.SUCCESSFUL, value, bound, detail)
