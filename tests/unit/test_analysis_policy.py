"""Outcome policy: no data and errors never succeed; limits; run verdicts with reasons."""

from __future__ import annotations

from collections.abc import Mapping

from modelrollout.api import AnalysisRunPhase, DataPolicy, Verdict
from modelrollout.core.analysis_policy import (
    Counted,
    Counts,
    Limits,
    Measurement,
    MetricPolicy,
    classify,
    count_round,
    judge_run,
    round_outcome,
)
from modelrollout.core.judges import Judgement, judge_bound, no_data

OK = Judgement(Verdict.SUCCESSFUL, 0.001, "<= 0.01", "0.001 within <= 0.01")
BAD = judge_bound(0.052, None, 0.01)
EMPTY = no_data("<= 0.01", "no data")


def m(judgement: Judgement | None, metric: str = "error-rate") -> Measurement:
    return Measurement(metric, judgement, None if judgement else "prometheus unreachable")


def run(
    rounds: list[list[Measurement]],
    limits: Limits,
    policies: Mapping[str, MetricPolicy] | None = None,
) -> AnalysisRunPhase:
    counts = Counts()
    last = None
    for r in rounds:
        last = round_outcome(r, policies or {})
        counts = count_round(counts, last)
    return judge_run(counts, limits, last).phase


def test_classify_follows_policy() -> None:
    pause, fail, ignore = (MetricPolicy(o, o) for o in DataPolicy)
    assert classify(m(EMPTY), pause) is Counted.INCONCLUSIVE
    assert classify(m(EMPTY), fail) is Counted.FAILURE
    assert classify(m(EMPTY), ignore) is Counted.IGNORED
    assert classify(m(None), pause) is Counted.ERROR
    assert classify(m(None), fail) is Counted.FAILURE
    assert classify(m(None), ignore) is Counted.IGNORED
    assert classify(m(OK), ignore) is Counted.SUCCESS
    assert classify(m(BAD), pause) is Counted.FAILURE


def test_round_is_its_worst_metric() -> None:
    outcome = round_outcome([m(OK, "p99"), m(EMPTY, "drift"), m(BAD), m(None, "x")], {})
    assert outcome.counted is Counted.FAILURE
    assert outcome.decisive is not None and outcome.decisive.metric == "error-rate"
    assert round_outcome([m(OK, "p99"), m(None)], {}).counted is Counted.ERROR
    assert round_outcome([m(OK, "p99"), m(EMPTY)], {}).counted is Counted.INCONCLUSIVE


def test_success_after_count_rounds() -> None:
    limits = Limits(count=2)
    assert run([[m(OK)]], limits) is AnalysisRunPhase.RUNNING
    assert run([[m(OK)], [m(OK)]], limits) is AnalysisRunPhase.SUCCESSFUL


def test_failure_names_metric_and_value() -> None:
    last = round_outcome([m(OK, "p99"), m(BAD)], {})
    v = judge_run(count_round(Counts(), last), Limits(failure_limit=0), last)
    assert v.phase is AnalysisRunPhase.FAILED
    assert v.metric == "error-rate" and v.value == 0.052
    assert v.reason == (
        "metric error-rate value 0.052 (0.052 > max 0.01): 1 failed measurement(s) > failureLimit 0"
    )


def test_failure_limit_allows_some_failures() -> None:
    limits = Limits(failure_limit=1, count=3)
    assert run([[m(BAD)], [m(OK)], [m(OK)]], limits) is AnalysisRunPhase.SUCCESSFUL
    assert run([[m(BAD)], [m(BAD)]], limits) is AnalysisRunPhase.FAILED


def test_no_data_is_never_success() -> None:
    # Default onNoData=pause: inconclusive beyond the limit pauses the run.
    assert run([[m(EMPTY)]], Limits()) is AnalysisRunPhase.INCONCLUSIVE
    # Within the limit it keeps running; it does not succeed on no evidence.
    assert run([[m(EMPTY)]], Limits(inconclusive_limit=5)) is AnalysisRunPhase.RUNNING
    # onNoData=fail fails.
    fail = {"error-rate": MetricPolicy(on_no_data=DataPolicy.FAIL)}
    assert run([[m(EMPTY)]], Limits(), fail) is AnalysisRunPhase.FAILED
    # onNoData=ignore with nothing else measured: no evidence, keep running.
    ignore = {"error-rate": MetricPolicy(on_no_data=DataPolicy.IGNORE)}
    assert run([[m(EMPTY)], [m(EMPTY)]], Limits(count=1), ignore) is AnalysisRunPhase.RUNNING
    # An ignored metric next to a metric with evidence: success.
    assert run([[m(EMPTY), m(OK, "p99")]], Limits(count=1), ignore) is AnalysisRunPhase.SUCCESSFUL


def test_all_errors_never_success() -> None:
    # argo-rollouts#4479: every measurement errored but the run reported Successful.
    limits = Limits(consecutive_error_limit=10, count=2)
    assert run([[m(None)], [m(None)], [m(None)]], limits) is AnalysisRunPhase.RUNNING


def test_only_inconclusive_rounds_within_limit_never_succeed() -> None:
    limits = Limits(inconclusive_limit=3, count=2)
    assert run([[m(EMPTY)], [m(EMPTY)]], limits) is AnalysisRunPhase.RUNNING


def test_errors_pause_then_recover() -> None:
    limits = Limits(consecutive_error_limit=1, count=2)
    counts = count_round(Counts(), round_outcome([m(OK)], {}))
    err = round_outcome([m(None)], {})
    counts = count_round(counts, err)
    assert judge_run(counts, limits, err).phase is AnalysisRunPhase.RUNNING
    counts = count_round(counts, err)
    v = judge_run(counts, limits, err)
    assert v.phase is AnalysisRunPhase.ERROR
    assert "prometheus unreachable" in v.reason
    # Errored rounds do not count: one counted round so far.
    assert counts.counted == 1
    ok = round_outcome([m(OK)], {})
    counts = count_round(counts, ok)
    assert judge_run(counts, limits, ok).phase is AnalysisRunPhase.SUCCESSFUL


def test_ignored_errors_do_not_pause() -> None:
    ignore = {"error-rate": MetricPolicy(on_error=DataPolicy.IGNORE)}
    rounds = [[m(None), m(OK, "p99")], [m(None), m(OK, "p99")]]
    assert (
        run(rounds, Limits(consecutive_error_limit=0, count=2), ignore)
        is AnalysisRunPhase.SUCCESSFUL
    )


def test_background_analysis_never_completes() -> None:
    rounds = [[m(OK)]] * 10
    assert run(rounds, Limits(count=None)) is AnalysisRunPhase.RUNNING
    assert run([*rounds, [m(BAD)]], Limits(count=None)) is AnalysisRunPhase.FAILED
