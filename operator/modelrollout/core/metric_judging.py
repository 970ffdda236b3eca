"""Judging one metric of one measurement (pure): fetched raw data -> an api MetricResult.

A metric provider (analysis/provider.py) only fetches; every decision is taken here. The runner
(analysis/runner.py) asks `next_fetch` what to fetch, has the provider fetch it, and repeats until
nothing more is needed; `judge_metric` then chooses the judges (core/judges.py) and builds the
result. Asking one fetch at a time keeps the order of decisions in this module:
- a comparison with the stable when there is none (the post-promotion window) is decided before
  any fetch of a built-in, and is no data, never success;
- a built-in whose revisions had fewer than `minSamples` requests in the window is no data, and
  the metric's own query is not sent;
- a custom query is fetched for the canary first: an unreachable source or a broken template is
  an Error even when there is no stable to compare with.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from modelrollout.api import (
    SAMPLES_OF,
    BuiltinMetric,
    DriftMethod,
    MetricResult,
    MetricSpec,
    Verdict,
)
from modelrollout.core.judges import (
    Judgement,
    bins_from_cumulative,
    bound_text,
    judge_bound,
    judge_drift,
    judge_mann_whitney,
    judge_ratio,
    no_data,
)

MAX_MESSAGE = 1024
MAX_BOUND = 256
DEFAULT_DRIFT_MAX = 0.25  # PSI rule of thumb: above 0.25 is a major shift

NO_STABLE = "no stable revision to compare with"
NO_STABLE_PREDICTIONS = "no stable revision to compare predictions with"


class Role(StrEnum):
    """Which revision of the rollout a piece of data belongs to."""

    CANARY = "canary"
    STABLE = "stable"


class DataKind(StrEnum):
    """The kinds of raw data a provider fetches."""

    # Requests in the window (spec.analysis.minSamples); labelled predictions for the feedback
    # built-ins (accuracy, meanAbsoluteError).
    REQUEST_COUNTS = "requestCounts"
    VALUES = "values"  # the metric's value (criteria min/max, compareToStable)
    SAMPLES = "samples"  # the metric's series over the window (judge: Mann-Whitney)
    PREDICTIONS = "predictions"  # prediction counts per class or bucket (predictionDrift)
    FEATURE_BINS = "featureBins"  # live inputs and the reference, per profile bin (inputDrift)


@dataclass(frozen=True)
class Fetch:
    """One thing to fetch for a metric: a kind of data for some revisions."""

    kind: DataKind
    roles: tuple[Role, ...]


@dataclass(frozen=True)
class PredictionCounts:
    """Predictions of one revision in the window: per class, or per cumulative `le` bucket."""

    classes: Mapping[str, float] = field(default_factory=dict)
    buckets: Mapping[float, float] = field(default_factory=dict)


@dataclass(frozen=True)
class FeatureBins:
    """One revision's live inputs in the window and its reference profile, per feature and bin
    (the prediction is the feature PREDICTION_FEATURE)."""

    live: Mapping[str, Mapping[int, float]] = field(default_factory=dict)
    reference: Mapping[str, Mapping[int, float]] = field(default_factory=dict)


PREDICTION_FEATURE = "__prediction__"
NO_PROFILE = "no reference profile: give the model server one (--profile-uri)"


@dataclass(frozen=True)
class MetricData:
    """The raw data fetched so far for one metric, by kind and revision.

    A value may be None or NaN (the source had no number for that revision): judges treat both
    as no data. `empty` is set when the source answered with no data at all (its message).
    """

    request_counts: Mapping[Role, float] = field(default_factory=dict)
    values: Mapping[Role, float | None] = field(default_factory=dict)
    samples: Mapping[Role, Sequence[float]] = field(default_factory=dict)
    predictions: Mapping[Role, PredictionCounts] = field(default_factory=dict)
    feature_bins: Mapping[Role, FeatureBins] = field(default_factory=dict)
    empty: str | None = None

    def _of(self, kind: DataKind) -> Mapping[Role, object]:
        return {
            DataKind.REQUEST_COUNTS: self.request_counts,
            DataKind.VALUES: self.values,
            DataKind.SAMPLES: self.samples,
            DataKind.PREDICTIONS: self.predictions,
            DataKind.FEATURE_BINS: self.feature_bins,
        }[kind]

    def has(self, fetch: Fetch) -> bool:
        held = self._of(fetch.kind)
        return all(role in held for role in fetch.roles)

    def merged(self, other: MetricData) -> MetricData:
        """This data with `other`'s added (other wins where both hold a revision's data)."""
        return MetricData(
            request_counts={**self.request_counts, **other.request_counts},
            values={**self.values, **other.values},
            samples={**self.samples, **other.samples},
            predictions={**self.predictions, **other.predictions},
            feature_bins={**self.feature_bins, **other.feature_bins},
            empty=other.empty if other.empty is not None else self.empty,
        )


def compares_with_stable(metric: MetricSpec) -> bool:
    """True when a criterion of the metric needs the stable's data."""
    return metric.compare_to_stable is not None or metric.judge is not None


def _traffic_gated(metric: MetricSpec) -> bool:
    # requestRate is the traffic itself; the drifts have their own minimum of predictions.
    return metric.builtin is not None and metric.builtin not in (
        BuiltinMetric.REQUEST_RATE,
        BuiltinMetric.PREDICTION_DRIFT,
        BuiltinMetric.INPUT_DRIFT,
    )


def _fetches(metric: MetricSpec, has_stable: bool) -> list[Fetch]:
    """Everything judging the metric needs, in the order it is fetched."""
    canary, both = (Role.CANARY,), (Role.CANARY, Role.STABLE)
    compares = compares_with_stable(metric)
    if metric.builtin is BuiltinMetric.PREDICTION_DRIFT:
        return [Fetch(DataKind.PREDICTIONS, both)] if has_stable else []
    if metric.builtin is BuiltinMetric.INPUT_DRIFT:
        return [Fetch(DataKind.FEATURE_BINS, canary)]  # against the reference, not the stable
    if metric.builtin is not None:
        if compares and not has_stable:
            return []
        fetches: list[Fetch] = []
        if _traffic_gated(metric):
            fetches.append(Fetch(DataKind.REQUEST_COUNTS, both if compares else canary))
        # One query answers for every revision: the stable's value is reported when it exists.
        fetches.append(Fetch(DataKind.VALUES, both if has_stable else canary))
    else:
        # Custom queries are sent per revision; the canary's first, whatever the criteria.
        fetches = [Fetch(DataKind.VALUES, canary)]
        if compares and not has_stable:
            return fetches
        if metric.compare_to_stable is not None:
            fetches.append(Fetch(DataKind.VALUES, (Role.STABLE,)))
    if metric.judge is not None:
        fetches.append(Fetch(DataKind.SAMPLES, both))
    return fetches


def next_fetch(
    metric: MetricSpec, data: MetricData, *, has_stable: bool, min_samples: int
) -> Fetch | None:
    """What to fetch next for the metric, or None when `judge_metric` can decide."""
    if data.empty is not None:
        return None
    for fetch in _fetches(metric, has_stable):
        if not data.has(fetch):
            return fetch
        if fetch.kind is DataKind.REQUEST_COUNTS and _traffic_gate(metric, data, min_samples):
            return None  # too little traffic: the metric's own data would not change that
    return None


def _traffic_gate(metric: MetricSpec, data: MetricData, min_samples: int) -> Judgement | None:
    """No data when a revision had fewer requests than minSamples in the window."""
    if not _traffic_gated(metric):
        return None
    roles = (Role.CANARY, Role.STABLE) if compares_with_stable(metric) else (Role.CANARY,)
    for role in roles:
        # A count that was never fetched is no evidence of traffic.
        n = data.request_counts.get(role, 0.0)
        if n < min_samples:
            samples = SAMPLES_OF.get(metric.builtin) if metric.builtin else None
            if samples is not None:
                why = f"too few {samples}: {role} {n:.0f} (min {min_samples})"
            else:
                why = f"too little traffic: {role} {n:.0f} requests (min {min_samples})"
            return no_data("", why)
    return None


def combine(judgements: Sequence[Judgement]) -> Judgement:
    """Several criteria on one metric: any failure fails; else missing data; else success."""
    for verdict in (Verdict.FAILED, Verdict.INCONCLUSIVE):
        hit = [j for j in judgements if j.verdict is verdict]
        if hit:
            return Judgement(
                verdict,
                judgements[0].value,
                "; ".join(j.bound for j in judgements),
                "; ".join(j.message for j in hit),
                no_data=any(j.no_data for j in hit),
            )
    return Judgement(
        Verdict.SUCCESSFUL,
        judgements[0].value,
        "; ".join(j.bound for j in judgements),
        "; ".join(j.message for j in judgements),
    )


def _mann_whitney(metric: MetricSpec, data: MetricData) -> Judgement:
    assert metric.judge is not None
    j = metric.judge
    return judge_mann_whitney(
        data.samples.get(Role.CANARY, []),
        data.samples.get(Role.STABLE, []),
        direction=j.direction,
        confidence=j.confidence,
        allowed_increase=j.allowed_increase,
        allowed_decrease=j.allowed_decrease,
        min_samples=j.min_samples,
    )


def _drift(metric: MetricSpec, data: MetricData, has_stable: bool, min_samples: int) -> Judgement:
    if not has_stable:
        return no_data("", NO_STABLE_PREDICTIONS)
    canary = data.predictions.get(Role.CANARY, PredictionCounts())
    stable = data.predictions.get(Role.STABLE, PredictionCounts())
    method = metric.drift.method if metric.drift else DriftMethod.PSI
    maximum = metric.max if metric.max is not None else DEFAULT_DRIFT_MAX
    # Drift of zero predictions means nothing: at least one, whatever minSamples says.
    least = max(1, min_samples)
    if canary.classes or stable.classes:
        return judge_drift(
            canary.classes, stable.classes, maximum, method=method, min_samples=least
        )
    return judge_drift(
        bins_from_cumulative(canary.buckets),
        bins_from_cumulative(stable.buckets),
        maximum,
        method=method,
        min_samples=least,
    )


def _input_drift(metric: MetricSpec, data: MetricData, min_samples: int) -> Judgement:
    """The feature whose live inputs moved most from the reference profile sets the value."""
    bins = data.feature_bins.get(Role.CANARY, FeatureBins())
    method = metric.drift.method if metric.drift else DriftMethod.PSI
    maximum = metric.max if metric.max is not None else DEFAULT_DRIFT_MAX
    bound = f"{method.value} {bound_text(None, maximum)}"
    if not bins.reference:
        return no_data(bound, NO_PROFILE)
    least = max(1, min_samples)
    scores: list[tuple[float, str]] = []
    for feature, reference in bins.reference.items():
        live = bins.live.get(feature, {})
        n = sum(live.get(b, 0.0) for b in reference)
        if n < least:
            continue
        judged = judge_drift(
            {b: live.get(b, 0.0) for b in reference},
            {b: share * n for b, share in reference.items()},
            maximum,
            method=method,
            min_samples=least,
        )
        if judged.value is not None:
            scores.append((judged.value, feature))
    if not scores:
        return no_data(bound, f"too few inputs in the window for any feature (min {least})")
    scores.sort(reverse=True)
    value = scores[0][0]
    named = ", ".join(f"{_feature_name(f)} {v:.3g}" for v, f in scores[:3])
    detail = f"{method.value} by feature: {named}"
    if value > maximum:
        return Judgement(Verdict.FAILED, value, bound, f"{detail} > max {maximum:g}")
    return Judgement(Verdict.SUCCESSFUL, value, bound, detail)


def _feature_name(feature: str) -> str:
    return "prediction" if feature == PREDICTION_FEATURE else feature


def _judge(
    metric: MetricSpec, data: MetricData, has_stable: bool, min_samples: int
) -> tuple[Judgement, float | None]:
    """The metric's judgement and the stable's value to report with it."""
    if data.empty is not None:
        return no_data("", f"no data: {data.empty}"), None
    if metric.builtin is BuiltinMetric.PREDICTION_DRIFT:
        return _drift(metric, data, has_stable, min_samples), None
    if metric.builtin is BuiltinMetric.INPUT_DRIFT:
        return _input_drift(metric, data, min_samples), None
    if compares_with_stable(metric) and not has_stable:
        return no_data("", NO_STABLE), None
    gate = _traffic_gate(metric, data, min_samples)
    if gate is not None:
        return gate, None
    canary = data.values.get(Role.CANARY)
    stable = data.values.get(Role.STABLE)
    judgements: list[Judgement] = []
    if metric.min is not None or metric.max is not None:
        judgements.append(judge_bound(canary, metric.min, metric.max))
    if metric.compare_to_stable is not None:
        c = metric.compare_to_stable
        judgements.append(judge_ratio(canary, stable, c.min_ratio, c.max_ratio))
    if metric.judge is not None:
        judgements.append(_mann_whitney(metric, data))
    judged = combine(judgements)
    if judged.value is None and canary is not None and not math.isnan(canary):
        # A failed comparison has no value of its own: report the canary's.
        judged = replace(judged, value=canary)
    return judged, stable


def _trim(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def judge_metric(
    metric: MetricSpec,
    data: MetricData,
    *,
    has_stable: bool,
    min_samples: int,
    measured_at: datetime,
) -> MetricResult:
    """The metric's result from the data fetched for it (as far as `next_fetch` asked).

    `min_samples` is spec.analysis.minSamples: the requests each revision needs in the window.
    """
    judgement, stable = _judge(metric, data, has_stable, min_samples)
    if stable is not None and math.isnan(stable):
        stable = None
    return MetricResult(
        metric=metric.name,
        value=judgement.value,
        stable_value=stable,
        bound=judgement.bound[:MAX_BOUND] or None,
        verdict=judgement.verdict,
        measured_at=measured_at,
        message=_trim(judgement.message),
    )


def error_result(metric: str, message: str, measured_at: datetime) -> MetricResult:
    """The metric could not be measured (source unreachable, bad query...): Error."""
    return MetricResult(
        metric=metric, verdict=Verdict.ERROR, measured_at=measured_at, message=_trim(message)
    )
