"""Pure threshold decisions: absolute bounds and changes relative to the stable model.

Semantics follow MLflow's MetricThreshold: an absolute bound on the candidate's value, and a
minimum absolute / relative improvement over the baseline (here: the stable model), in the
direction given by greater_is_better. A negative change is a tolerance ("may be this much worse").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Threshold:
    metric: str
    greater_is_better: bool
    min: float | None = None
    max: float | None = None
    min_absolute_change: float | None = None
    min_relative_change: float | None = None

    @property
    def relative(self) -> bool:
        return self.min_absolute_change is not None or self.min_relative_change is not None


@dataclass(frozen=True)
class Verdict:
    metric: str
    candidate: float
    stable: float | None
    passed: bool
    reasons: tuple[str, ...]  # why it failed (empty when passed)
    notes: tuple[str, ...] = ()  # what was not applied, and why


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def judge(threshold: Threshold, candidate: float, stable: float | None) -> Verdict:
    """Decide one metric. A NaN candidate value never passes."""
    name = threshold.metric
    reasons: list[str] = []
    notes: list[str] = []
    if math.isnan(candidate):
        reasons.append(f"{name} of the candidate is undefined on the holdout rows")
        return Verdict(name, candidate, stable, False, tuple(reasons))
    if threshold.min is not None and candidate < threshold.min:
        reasons.append(f"{name} {_fmt(candidate)} < min {_fmt(threshold.min)}")
    if threshold.max is not None and candidate > threshold.max:
        reasons.append(f"{name} {_fmt(candidate)} > max {_fmt(threshold.max)}")
    if threshold.relative:
        if stable is None:
            notes.append("no stable model: relative thresholds not applied")
        elif math.isnan(stable):
            reasons.append(f"{name} of the stable model is undefined: cannot compare")
        else:
            reasons.extend(_relative_reasons(threshold, candidate, stable))
    return Verdict(name, candidate, stable, not reasons, tuple(reasons), tuple(notes))


def _relative_reasons(t: Threshold, candidate: float, stable: float) -> list[str]:
    # Improvement in the metric's good direction: positive means the candidate is better.
    improvement = candidate - stable if t.greater_is_better else stable - candidate
    better, worse = ("higher", "lower") if t.greater_is_better else ("lower", "higher")
    head = f"{t.metric}: candidate {_fmt(candidate)} vs stable {_fmt(stable)}"
    out: list[str] = []
    if t.min_absolute_change is not None and improvement < t.min_absolute_change:
        out.append(f"{head}, {_rule(t.min_absolute_change, _fmt, better, worse)}")
    if t.min_relative_change is not None:
        # |stable| keeps the direction right for metrics that can be negative (r2).
        required = abs(stable) * t.min_relative_change
        if improvement < required:
            out.append(f"{head}, {_rule(t.min_relative_change, _pct, better, worse)}")
    return out


def _pct(x: float) -> str:
    return f"{x * 100:.4g}%"


def _rule(amount: float, fmt: Callable[[float], str], better: str, worse: str) -> str:
    if amount >= 0:
        return f"must be {better} by at least {fmt(amount)}"
    return f"may be at most {fmt(-amount)} {worse}"
