"""Outcome policy: from measurements to the verdict of an analysis run (pure).

A run is a sequence of rounds; each round measures every metric once. A round counts as the
worst of its metrics after each metric's policy is applied (failure > error > inconclusive >
success; ignored metrics do not count):
- Failed: the run fails (rollback) when failed rounds exceed `failure_limit`.
- Inconclusive: beyond `inconclusive_limit` the run is Inconclusive, which pauses the rollout
  until a person promotes, aborts or retries (sticky).
- Error (Prometheus unreachable, bad query, timeout): beyond `consecutive_error_limit` rounds in a
  row the run is Error, which pauses the rollout; NOT sticky: the next round without an error
  resets the count and the run goes on.
- No data (empty result, too few samples) and Error follow the metric's policy
  (`onNoData` / `onError`): pause (default: counted as Inconclusive / Error), fail (counted as a
  failure) or ignore (not counted).

Never Successful without evidence (argo-rollouts#4479, #1466): an errored round and a round in
which every metric was ignored do not count towards completion, and a run succeeds only after
`count` counted rounds of which at least one was Successful. Background analysis (count None)
never completes: it only fails or pauses.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from modelrollout.api import (
    AnalysisKind,
    AnalysisRunPhase,
    AnalysisSpec,
    AnalysisStatus,
    DataPolicy,
    MetricResult,
    Verdict,
    parse_duration,
)
from modelrollout.core.evaluation import AnalysisOutcome
from modelrollout.core.judges import Judgement
from modelrollout.core.observation import AnalysisMeasurements
from modelrollout.core.plan import AnalysisRequest

MAX_RESULTS = 64
MAX_MESSAGE = 1024


class Counted(StrEnum):
    """What a measurement counts as after the metric's policy is applied (worst first)."""

    FAILURE = "failure"
    ERROR = "error"
    INCONCLUSIVE = "inconclusive"
    SUCCESS = "success"
    IGNORED = "ignored"


_SEVERITY = list(Counted)


@dataclass(frozen=True)
class MetricPolicy:
    on_no_data: DataPolicy = DataPolicy.PAUSE
    on_error: DataPolicy = DataPolicy.PAUSE


@dataclass(frozen=True)
class Limits:
    failure_limit: int = 0
    inconclusive_limit: int = 0
    consecutive_error_limit: int = 4
    # Counted rounds needed to complete; None = background analysis, never completes.
    count: int | None = 1


@dataclass(frozen=True)
class Measurement:
    """One metric measured once; `judgement` is None when measuring failed (an error)."""

    metric: str
    judgement: Judgement | None
    error: str | None = None

    @property
    def value(self) -> float | None:
        return None if self.judgement is None else self.judgement.value

    @property
    def message(self) -> str:
        if self.judgement is None:
            return self.error or "error"
        return self.judgement.message


@dataclass(frozen=True)
class Counts:
    """What must survive between rounds (status.analysis holds the same counters)."""

    measurements: int = 0
    successful: int = 0
    failed: int = 0
    inconclusive: int = 0
    errors: int = 0
    consecutive_errors: int = 0

    @property
    def counted(self) -> int:
        """Rounds that count towards completion."""
        return self.successful + self.failed + self.inconclusive


@dataclass(frozen=True)
class RoundOutcome:
    counted: Counted
    # The measurement that decided the round (names the metric in reasons).
    decisive: Measurement | None


@dataclass(frozen=True)
class RunJudgement:
    phase: AnalysisRunPhase
    reason: str
    metric: str | None = None
    value: float | None = None


def classify(m: Measurement, policy: MetricPolicy) -> Counted:
    """Apply the metric's onNoData / onError to one measurement."""
    if m.judgement is None or m.judgement.verdict is Verdict.ERROR:
        return {
            DataPolicy.PAUSE: Counted.ERROR,
            DataPolicy.FAIL: Counted.FAILURE,
            DataPolicy.IGNORE: Counted.IGNORED,
        }[policy.on_error]
    if m.judgement.no_data or m.judgement.verdict is Verdict.INCONCLUSIVE:
        # Judges only say Inconclusive for missing or too scarce data.
        return {
            DataPolicy.PAUSE: Counted.INCONCLUSIVE,
            DataPolicy.FAIL: Counted.FAILURE,
            DataPolicy.IGNORE: Counted.IGNORED,
        }[policy.on_no_data]
    return Counted.SUCCESS if m.judgement.verdict is Verdict.SUCCESSFUL else Counted.FAILURE


def round_outcome(
    measurements: Sequence[Measurement], policies: Mapping[str, MetricPolicy]
) -> RoundOutcome:
    """The worst counted outcome of one round and the measurement responsible for it."""
    worst = RoundOutcome(Counted.IGNORED, None)
    for m in measurements:
        counted = classify(m, policies.get(m.metric, MetricPolicy()))
        if _SEVERITY.index(counted) < _SEVERITY.index(worst.counted):
            worst = RoundOutcome(counted, m)
    return worst


def count_round(counts: Counts, outcome: RoundOutcome) -> Counts:
    c = replace(counts, measurements=counts.measurements + 1)
    if outcome.counted is Counted.ERROR:
        return replace(c, errors=c.errors + 1, consecutive_errors=c.consecutive_errors + 1)
    c = replace(c, consecutive_errors=0)
    if outcome.counted is Counted.SUCCESS:
        return replace(c, successful=c.successful + 1)
    if outcome.counted is Counted.FAILURE:
        return replace(c, failed=c.failed + 1)
    if outcome.counted is Counted.INCONCLUSIVE:
        return replace(c, inconclusive=c.inconclusive + 1)
    return c  # every metric ignored: no evidence either way


def _value(v: float | None) -> str:
    return "no value" if v is None else f"{v:.4g}"


def judge_run(counts: Counts, limits: Limits, last: RoundOutcome | None = None) -> RunJudgement:
    """The run's verdict; the reason names the deciding metric of the last round and its value."""
    m = last.decisive if last is not None else None
    metric = m.metric if m is not None else None
    value = m.value if m is not None else None
    what = f"metric {metric} value {_value(value)} ({m.message})" if m is not None else "analysis"
    # Failure first: it rolls back, and it must win over any pause.
    if counts.failed > limits.failure_limit:
        return RunJudgement(
            AnalysisRunPhase.FAILED,
            f"{what}: {counts.failed} failed measurement(s) > failureLimit {limits.failure_limit}",
            metric,
            value,
        )
    if counts.consecutive_errors > limits.consecutive_error_limit:
        return RunJudgement(
            AnalysisRunPhase.ERROR,
            f"{what}: {counts.consecutive_errors} consecutive error(s) > consecutiveErrorLimit "
            f"{limits.consecutive_error_limit}",
            metric,
            value,
        )
    if counts.inconclusive > limits.inconclusive_limit:
        return RunJudgement(
            AnalysisRunPhase.INCONCLUSIVE,
            f"{what}: {counts.inconclusive} inconclusive measurement(s) > inconclusiveLimit "
            f"{limits.inconclusive_limit}",
            metric,
            value,
        )
    progress = f"{counts.counted}/{limits.count if limits.count else '∞'} measurement(s)"
    if limits.count is None or counts.counted < limits.count:
        tail = (
            f"; last: {what}"
            if m is not None and last and last.counted is not Counted.SUCCESS
            else ""
        )
        return RunJudgement(AnalysisRunPhase.RUNNING, f"{progress}{tail}", metric, value)
    if counts.successful == 0:
        # Never succeed without evidence: keep measuring.
        return RunJudgement(
            AnalysisRunPhase.RUNNING, f"{progress}, none successful yet", metric, value
        )
    return RunJudgement(
        AnalysisRunPhase.SUCCESSFUL,
        f"{counts.successful} of {counts.counted} measurement(s) successful",
        metric,
        value,
    )


# -- the evaluator the state machines call (core/evaluation.py AnalysisEvaluator) ----------------


def next_grid_time(after: datetime, interval: float) -> datetime:
    """The next multiple of `interval` (since the epoch) at least interval/2 after `after`.

    Rollouts with the same interval then measure at the same instants and share batched queries.
    """
    t = after.timestamp() + interval / 2
    return datetime.fromtimestamp(math.ceil(t / interval) * interval, UTC)


def policies_of(spec: AnalysisSpec) -> dict[str, MetricPolicy]:
    return {
        m.name: MetricPolicy(
            m.on_no_data or spec.on_no_data,
            m.on_error or spec.on_error,
        )
        for m in spec.metrics
    }


def limits_of(request: AnalysisRequest) -> Limits:
    spec = request.spec
    count = None if request.kind is AnalysisKind.BACKGROUND else spec.count
    return Limits(
        failure_limit=spec.failure_limit,
        inconclusive_limit=spec.inconclusive_limit,
        consecutive_error_limit=spec.consecutive_error_limit,
        count=count,
    )


def to_measurement(result: MetricResult) -> Measurement:
    if result.verdict is Verdict.ERROR:
        return Measurement(result.metric, None, result.message or "error")
    verdict = result.verdict
    return Measurement(
        result.metric,
        Judgement(
            verdict,
            result.value,
            result.bound or "",
            result.message,
            no_data=verdict is Verdict.INCONCLUSIVE,
        ),
    )


def _same_run(previous: AnalysisStatus | None, request: AnalysisRequest) -> bool:
    return (
        previous is not None
        and previous.kind == request.kind.value
        and previous.revision == request.canary_revision
        and previous.step_index == request.step_index
        and previous.started_at == request.started_at
    )


def _keeps_measuring(phase: AnalysisRunPhase) -> bool:
    # Error is not sticky: keep measuring so the run resumes when Prometheus is back.
    return phase in (AnalysisRunPhase.RUNNING, AnalysisRunPhase.ERROR)


def evaluate(
    request: AnalysisRequest,
    previous: AnalysisStatus | None,
    measurements: AnalysisMeasurements | None,
    now: datetime,
) -> AnalysisOutcome:
    """Fold fresh measurements into the run named by `request` (an AnalysisEvaluator)."""
    interval = parse_duration(request.spec.interval)
    if not _same_run(previous, request):
        previous = AnalysisStatus(
            phase=AnalysisRunPhase.RUNNING,
            revision=request.canary_revision,
            step_index=request.step_index,
            kind=request.kind.value,
            started_at=request.started_at,
            # First measurement at least one interval in: the candidate needs traffic (and the
            # rate() windows data) to be judged; earlier, it would only be "too little traffic".
            next_measurement_at=next_grid_time(
                request.started_at + timedelta(seconds=interval / 2), interval
            ),
            message=f"0/{limits_of(request).count or '∞'} measurement(s)",
        )
    assert previous is not None
    phase = previous.phase
    fresh = (
        measurements is not None
        and measurements.key == request.key
        and _keeps_measuring(phase)
        and not any(r.measured_at == measurements.measured_at for r in previous.results)
    )
    if not fresh or measurements is None:
        next_at = previous.next_measurement_at if _keeps_measuring(phase) else None
        return AnalysisOutcome(phase, previous.message, previous, next_at)
    limits = limits_of(request)
    outcome = round_outcome(
        [to_measurement(r) for r in measurements.results], policies_of(request.spec)
    )
    if outcome.counted is Counted.INCONCLUSIVE and previous.consecutive_errors > 0:
        # Right after Prometheus was unreachable, its rate() windows are still empty: missing
        # data then belongs to the outage (still paused, not counted), not to the candidate.
        outcome = RoundOutcome(Counted.ERROR, outcome.decisive)
    counts = count_round(
        Counts(
            previous.measurements,
            previous.successful,
            previous.failed,
            previous.inconclusive,
            previous.errors,
            previous.consecutive_errors,
        ),
        outcome,
    )
    verdict = judge_run(counts, limits, outcome)
    next_at = (
        next_grid_time(measurements.measured_at, interval)
        if _keeps_measuring(verdict.phase)
        else None
    )
    status = previous.model_copy(
        update={
            "phase": verdict.phase,
            "next_measurement_at": next_at,
            "measurements": counts.measurements,
            "successful": counts.successful,
            "failed": counts.failed,
            "inconclusive": counts.inconclusive,
            "errors": counts.errors,
            "consecutive_errors": counts.consecutive_errors,
            "results": list(measurements.results)[:MAX_RESULTS],
            "message": verdict.reason[:MAX_MESSAGE],
        }
    )
    return AnalysisOutcome(verdict.phase, status.message, status, next_at)
