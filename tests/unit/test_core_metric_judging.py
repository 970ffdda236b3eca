"""Judging one metric from fetched raw data (core/metric_judging.py): which judges, in which
order the data is asked for, no stable, too little traffic or too few samples."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from modelrollout.api import MetricResult, MetricSpec, Verdict
from modelrollout.core.judges import Judgement, no_data
from modelrollout.core.metric_judging import (
    DEFAULT_DRIFT_MAX,
    MAX_MESSAGE,
    DataKind,
    FeatureBins,
    Fetch,
    MetricData,
    PredictionCounts,
    Role,
    combine,
    error_result,
    judge_metric,
    next_fetch,
)

AT = datetime(2026, 1, 1, tzinfo=UTC)
C, S = Role.CANARY, Role.STABLE
T = TypeVar("T")
PLENTY = {C: 1000.0, S: 1000.0}  # requests in the window: well above minSamples


def metric(**fields: Any) -> MetricSpec:
    return MetricSpec.model_validate({"name": "m", **fields})


def judged(
    m: MetricSpec, data: MetricData, *, stable: bool = True, least: int = 10
) -> MetricResult:
    return judge_metric(m, data, has_stable=stable, min_samples=least, measured_at=AT)


def answer(fetch: Fetch, source: MetricData) -> MetricData:
    """What a provider holding `source` answers to `fetch`."""

    def of(held: Mapping[Role, T]) -> dict[Role, T]:
        return {r: held[r] for r in fetch.roles if r in held}

    if fetch.kind is DataKind.REQUEST_COUNTS:
        return MetricData(request_counts=of(source.request_counts))
    if fetch.kind is DataKind.VALUES:
        return MetricData(values=of(source.values))
    if fetch.kind is DataKind.SAMPLES:
        return MetricData(samples=of(source.samples))
    if fetch.kind is DataKind.FEATURE_BINS:
        return MetricData(feature_bins=of(source.feature_bins))
    return MetricData(predictions=of(source.predictions))


def asked(
    m: MetricSpec, source: MetricData, *, stable: bool = True, least: int = 10
) -> tuple[list[Fetch], MetricData]:
    """Play the runner's loop against a source holding `source`: the fetches, in order."""
    fetches: list[Fetch] = []
    data = MetricData()
    while (f := next_fetch(m, data, has_stable=stable, min_samples=least)) is not None:
        assert f not in fetches, "asked twice for the same data"
        fetches.append(f)
        data = data.merged(answer(f, source))
    return fetches, data


# -- which judge for which criterion -----------------------------------------------------------


def test_bound_judges_the_canary_value_and_reports_the_stable() -> None:
    m = metric(builtin="errorRate", max=0.05)
    source = MetricData(request_counts=PLENTY, values={C: 0.1, S: 0.01})
    fetches, data = asked(m, source)
    assert fetches == [
        Fetch(DataKind.REQUEST_COUNTS, (C,)),
        Fetch(DataKind.VALUES, (C, S)),
    ]
    r = judged(m, data)
    assert r == MetricResult(
        metric="m",
        value=0.1,
        stable_value=0.01,
        bound="<= 0.05",
        verdict=Verdict.FAILED,
        measured_at=AT,
        message="0.1 > max 0.05",
    )
    ok = judged(m, MetricData(request_counts=PLENTY, values={C: 0.01}), stable=False)
    assert (ok.verdict, ok.value, ok.stable_value) == (Verdict.SUCCESSFUL, 0.01, None)
    assert ok.message == "0.01 within <= 0.05"


def test_compare_to_stable_judges_the_ratio() -> None:
    m = metric(builtin="latencyP99", compareToStable={"maxRatio": 1.5})
    source = MetricData(request_counts=PLENTY, values={C: 0.3, S: 0.1})
    fetches, data = asked(m, source)
    assert fetches == [
        Fetch(DataKind.REQUEST_COUNTS, (C, S)),
        Fetch(DataKind.VALUES, (C, S)),
    ]
    r = judged(m, data)
    assert r.verdict is Verdict.FAILED
    assert r.value == pytest.approx(3.0)
    assert r.stable_value == 0.1
    assert r.bound == "canary/stable <= 1.5"
    assert r.message == "canary 0.3 / stable 0.1 = 3 > 1.5"


def test_missing_stable_value_is_no_data_and_reports_the_canary() -> None:
    m = metric(builtin="latencyP99", compareToStable={"maxRatio": 1.5})
    r = judged(m, MetricData(request_counts=PLENTY, values={C: 0.3, S: math.nan}))
    assert (r.verdict, r.message) == (Verdict.INCONCLUSIVE, "no data for stable")
    assert r.value == 0.3  # the ratio has no value: the canary's is shown
    assert r.stable_value is None  # NaN is not a value


def test_judge_runs_mann_whitney_on_the_samples() -> None:
    m = metric(builtin="latencyP99", judge={"minSamples": 10})
    stable_samples = [0.10 + 0.001 * i for i in range(30)]
    higher = [x + 0.05 for x in stable_samples]
    source = MetricData(
        request_counts=PLENTY,
        values={C: 0.2, S: 0.1},
        samples={C: higher, S: stable_samples},
    )
    fetches, data = asked(m, source)
    assert fetches == [
        Fetch(DataKind.REQUEST_COUNTS, (C, S)),
        Fetch(DataKind.VALUES, (C, S)),
        Fetch(DataKind.SAMPLES, (C, S)),
    ]
    r = judged(m, data)
    assert r.verdict is Verdict.FAILED
    assert r.message.startswith("canary higher: shift 0.05 CI98")
    assert r.value == pytest.approx(0.05)  # the Hodges-Lehmann shift, not the canary's value
    assert r.bound == "increase effect 1/1"
    same = judged(
        m, MetricData(request_counts=PLENTY, samples={C: stable_samples, S: stable_samples})
    )
    assert same.verdict is Verdict.SUCCESSFUL


def test_drift_judges_prediction_classes_and_buckets() -> None:
    m = metric(builtin="predictionDrift", max=0.2)
    counts = MetricData(
        predictions={
            C: PredictionCounts(classes={"0": 100.0, "1": 900.0}),
            S: PredictionCounts(classes={"0": 500.0, "1": 500.0}),
        }
    )
    fetches, data = asked(m, counts)
    assert fetches == [Fetch(DataKind.PREDICTIONS, (C, S))]  # no traffic gate for drift
    r = judged(m, data)
    # Classes 10/90 against 50/50: PSI = (.1-.5)ln(.2) + (.9-.5)ln(1.8) = 0.879
    assert r.verdict is Verdict.FAILED
    assert r.value == pytest.approx(0.879, abs=0.01)
    assert (r.bound, r.stable_value) == ("psi <= 0.2", None)
    buckets = MetricData(
        predictions={
            C: PredictionCounts(buckets={0.5: 500.0, math.inf: 1000.0}),
            S: PredictionCounts(buckets={0.5: 500.0, math.inf: 1000.0}),
        }
    )
    same = judged(m, buckets)
    assert same.verdict is Verdict.SUCCESSFUL
    assert same.value == pytest.approx(0.0)
    assert same.message == "psi 0 over 2 bins"


def test_drift_without_a_max_uses_the_psi_rule_of_thumb() -> None:
    m = metric(builtin="predictionDrift", min=0, drift={"method": "jensenShannon"})
    r = judged(m, MetricData(predictions={C: PredictionCounts({"a": 60.0})}))
    assert r.bound == f"jensenShannon <= {DEFAULT_DRIFT_MAX}"


def test_several_criteria_any_failure_fails() -> None:
    m = metric(builtin="errorRate", max=0.05, compareToStable={"maxRatio": 10})
    r = judged(m, MetricData(request_counts=PLENTY, values={C: 0.1, S: 0.05}))
    assert r.verdict is Verdict.FAILED
    assert r.bound == "<= 0.05; canary/stable <= 10"
    assert r.message == "0.1 > max 0.05"  # only the failing criterion speaks
    assert r.value == 0.1


def test_combine_prefers_failure_then_no_data() -> None:
    ok = Judgement(Verdict.SUCCESSFUL, 1.0, ">= 0", "fine")
    missing = no_data("ratio", "no data for stable")
    bad = Judgement(Verdict.FAILED, 9.0, "<= 5", "9 > max 5")
    assert combine([ok, missing, bad]) == Judgement(
        Verdict.FAILED, 1.0, ">= 0; ratio; <= 5", "9 > max 5", no_data=False
    )
    assert combine([ok, missing]) == Judgement(
        Verdict.INCONCLUSIVE, 1.0, ">= 0; ratio", "no data for stable", no_data=True
    )
    assert combine([ok, ok]) == Judgement(Verdict.SUCCESSFUL, 1.0, ">= 0; >= 0", "fine; fine")
    m = metric(query="q", min=1, compareToStable={"minRatio": 0.5})
    no_stable = judged(m, MetricData(values={C: 2.0, S: None}))
    assert (no_stable.verdict, no_stable.message) == (Verdict.INCONCLUSIVE, "no data for stable")
    assert no_stable.bound == ">= 1; canary/stable >= 0.5"


def test_request_rate_is_not_gated_by_its_own_traffic() -> None:
    m = metric(builtin="requestRate", min=30)
    fetches, data = asked(m, MetricData(values={C: 40.0}), stable=False)
    assert fetches == [Fetch(DataKind.VALUES, (C,))]
    assert judged(m, data, stable=False).verdict is Verdict.SUCCESSFUL


def test_custom_query_asks_per_revision_canary_first() -> None:
    m = metric(query="q", compareToStable={"maxRatio": 2}, judge={"minSamples": 3})
    source = MetricData(values={C: 1.0, S: 1.0}, samples={C: [1.0] * 5, S: [1.0] * 5})
    fetches, data = asked(m, source)
    assert fetches == [
        Fetch(DataKind.VALUES, (C,)),
        Fetch(DataKind.VALUES, (S,)),
        Fetch(DataKind.SAMPLES, (C, S)),
    ]
    assert judged(m, data).verdict is Verdict.SUCCESSFUL
    judge_only = metric(query="q", judge={"minSamples": 3})
    fetches, _ = asked(judge_only, source)
    assert fetches == [Fetch(DataKind.VALUES, (C,)), Fetch(DataKind.SAMPLES, (C, S))]


# -- no stable (the post-promotion window): no data, never success -----------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"builtin": "errorRate", "compareToStable": {"maxRatio": 1.5}}, "to compare with"),
        ({"builtin": "errorRate", "max": 1, "judge": {}}, "to compare with"),
        ({"builtin": "predictionDrift", "max": 0.2}, "to compare predictions with"),
    ],
)
def test_builtin_comparisons_without_a_stable_are_decided_before_any_fetch(
    fields: dict[str, Any], message: str
) -> None:
    m = metric(**fields)
    assert next_fetch(m, MetricData(), has_stable=False, min_samples=10) is None
    r = judged(m, MetricData(), stable=False)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.message == f"no stable revision {message}"
    assert (r.value, r.stable_value, r.bound) == (None, None, None)


def test_custom_comparison_without_a_stable_fetches_the_canary_only() -> None:
    m = metric(query="q", max=5, compareToStable={"maxRatio": 1.5})
    fetches, data = asked(m, MetricData(values={C: 1.0}), stable=False)
    # The canary's query is sent (an unreachable source is an Error, not no data) ...
    assert fetches == [Fetch(DataKind.VALUES, (C,))]
    r = judged(m, data, stable=False)
    # ... but a bound that holds does not make the comparison pass.
    assert (r.verdict, r.message) == (Verdict.INCONCLUSIVE, "no stable revision to compare with")


def test_absolute_bounds_are_judged_without_a_stable() -> None:
    m = metric(builtin="latencyP99", max=0.5)
    fetches, data = asked(m, MetricData(request_counts={C: 100.0}, values={C: 0.2}), stable=False)
    assert fetches == [Fetch(DataKind.REQUEST_COUNTS, (C,)), Fetch(DataKind.VALUES, (C,))]
    r = judged(m, data, stable=False)
    assert (r.verdict, r.value, r.stable_value) == (Verdict.SUCCESSFUL, 0.2, None)


# -- too little traffic, too few samples -------------------------------------------------------


def test_too_little_canary_traffic_stops_before_the_metric_query() -> None:
    m = metric(builtin="errorRate", max=0.05)
    fetches, data = asked(m, MetricData(request_counts={C: 3.0}, values={C: 0.0}), least=20)
    assert fetches == [Fetch(DataKind.REQUEST_COUNTS, (C,))]
    r = judged(m, data, least=20)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.message == "too little traffic: canary 3 requests (min 20)"
    assert (r.value, r.bound) == (None, None)


def test_too_little_stable_traffic_when_comparing() -> None:
    m = metric(builtin="errorRate", compareToStable={"maxRatio": 2})
    source = MetricData(request_counts={C: 50.0, S: 2.0}, values={C: 0.0, S: 0.0})
    fetches, data = asked(m, source)
    assert fetches == [Fetch(DataKind.REQUEST_COUNTS, (C, S))]
    assert judged(m, data).message == "too little traffic: stable 2 requests (min 10)"


def test_live_accuracy_is_gated_on_labelled_predictions_and_compared_with_the_stable() -> None:
    m = metric(builtin="accuracy", compareToStable={"minRatio": 0.95})
    few = MetricData(request_counts={C: 4.0, S: 900.0}, values={C: 0.5, S: 0.9})
    fetches, data = asked(m, few)
    assert fetches == [Fetch(DataKind.REQUEST_COUNTS, (C, S))]
    r = judged(m, data)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.message == "too few labelled predictions: canary 4 (min 10)"
    worse = MetricData(request_counts=PLENTY, values={C: 0.80, S: 0.90})
    r = judged(m, asked(m, worse)[1])
    assert r.verdict is Verdict.FAILED and r.stable_value == 0.90
    assert r.message == "canary 0.8 / stable 0.9 = 0.8889 < 0.95"
    assert (
        judged(m, asked(m, MetricData(request_counts=PLENTY, values={C: 0.89, S: 0.90}))[1]).verdict
        is Verdict.SUCCESSFUL
    )


def test_shadow_agreement_is_gated_on_compared_rows() -> None:
    m = metric(builtin="shadowAgreement", min=0.95)
    few = MetricData(request_counts={C: 3.0}, values={C: 1.0})
    r = judged(m, asked(m, few, stable=False)[1], stable=False)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.message == "too few compared rows: canary 3 (min 10)"
    disagrees = MetricData(request_counts={C: 500.0}, values={C: 0.8})
    assert judged(m, asked(m, disagrees, stable=False)[1], stable=False).verdict is Verdict.FAILED


def test_mean_absolute_error_has_an_absolute_bound() -> None:
    m = metric(builtin="meanAbsoluteError", max=2.0)
    source = MetricData(request_counts={C: 50.0}, values={C: 5.1})
    r = judged(m, asked(m, source, stable=False)[1], stable=False)
    assert r.verdict is Verdict.FAILED and r.value == 5.1
    unlabelled = MetricData(request_counts={C: 0.0}, values={})
    none = judged(m, asked(m, unlabelled, stable=False)[1], stable=False)
    assert none.verdict is Verdict.INCONCLUSIVE  # no labels yet: never a pass


def test_input_drift_names_the_features_that_moved_most_from_the_reference() -> None:
    m = metric(builtin="inputDrift", max=0.2)
    reference = {"amount": {0: 0.5, 1: 0.5}, "country": {0: 0.9, 1: 0.1}}
    moved = FeatureBins({"amount": {0: 10.0, 1: 90.0}, "country": {0: 88.0, 1: 12.0}}, reference)
    fetches, data = asked(m, MetricData(feature_bins={C: moved}), stable=False)
    assert fetches == [Fetch(DataKind.FEATURE_BINS, (C,))]
    r = judged(m, data, stable=False)
    assert r.verdict is Verdict.FAILED
    assert r.message.startswith("psi by feature: amount 0.") and "country" in r.message
    steady = FeatureBins({"amount": {0: 51.0, 1: 49.0}, "country": {0: 90.0, 1: 10.0}}, reference)
    assert judged(m, MetricData(feature_bins={C: steady})).verdict is Verdict.SUCCESSFUL
    few = FeatureBins({"amount": {0: 1.0}}, reference)
    assert "too few inputs" in judged(m, MetricData(feature_bins={C: few})).message
    none = judged(m, MetricData(feature_bins={C: FeatureBins()}))
    assert none.verdict is Verdict.INCONCLUSIVE and "--profile-uri" in none.message


def test_traffic_never_fetched_is_no_evidence() -> None:
    r = judged(metric(builtin="errorRate", max=1), MetricData(values={C: 0.0}))
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.message == "too little traffic: canary 0 requests (min 10)"


def test_min_samples_zero_lets_any_traffic_through() -> None:
    m = metric(builtin="errorRate", max=0.05)
    r = judged(m, MetricData(request_counts={C: 0.0}, values={C: 0.0}), least=0)
    assert r.verdict is Verdict.SUCCESSFUL


def test_too_few_mann_whitney_samples_is_no_data() -> None:
    m = metric(builtin="latencyP99", judge={"minSamples": 20})
    r = judged(m, MetricData(request_counts=PLENTY, samples={C: [1.0] * 5, S: [1.0] * 30}))
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.message == "too few samples: canary 5, stable 30 (min 20)"


def test_too_few_predictions_is_no_data_with_at_least_one_required() -> None:
    m = metric(builtin="predictionDrift", max=0.2)
    few = MetricData(
        predictions={C: PredictionCounts({"a": 5.0}), S: PredictionCounts({"a": 50.0})}
    )
    r = judged(m, few)
    assert r.verdict is Verdict.INCONCLUSIVE
    assert r.message == "too few predictions: canary 5, stable 50 (min 10)"
    # minSamples 0 still needs one prediction per side: drift of nothing means nothing.
    none = judged(m, MetricData(predictions={C: PredictionCounts({"a": 5.0})}), least=0)
    assert none.message == "too few predictions: canary 5, stable 0 (min 1)"


# -- empty answers and errors ------------------------------------------------------------------


def test_an_empty_answer_is_no_data_whatever_was_fetched_before() -> None:
    m = metric(query="q", max=1)
    data = MetricData(values={C: 0.5}).merged(MetricData(empty="no data for 'q'"))
    assert next_fetch(m, data, has_stable=True, min_samples=10) is None
    r = judged(m, data)
    assert (r.verdict, r.message) == (Verdict.INCONCLUSIVE, "no data: no data for 'q'")
    assert (r.value, r.stable_value, r.bound) == (None, None, None)


def test_long_messages_are_trimmed() -> None:
    r = judged(metric(query="q", max=1), MetricData(empty="x" * 5000))
    assert len(r.message) == MAX_MESSAGE and r.message.endswith("...")
    e = error_result("m", "Unreachable: " + "y" * 5000, AT)
    assert (e.verdict, len(e.message), e.value) == (Verdict.ERROR, MAX_MESSAGE, None)
    assert e.message.startswith("Unreachable: yyy")
