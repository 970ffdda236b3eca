"""The evaluator the state machines call: runs, idempotence, grid-aligned measurement times."""

from __future__ import annotations

import datetime as dt

from modelrollout.api import (
    AnalysisKind,
    AnalysisRunPhase,
    AnalysisSpec,
    AnalysisStatus,
    DataPolicy,
    MetricResult,
    Verdict,
)
from modelrollout.core.analysis_policy import evaluate, next_grid_time, policies_of
from modelrollout.core.observation import AnalysisMeasurements
from modelrollout.core.plan import AnalysisRequest
from tests.unit.builders import T0

SPEC = AnalysisSpec.model_validate(
    {
        "interval": "10s",
        "count": 2,
        "prometheus": {"address": "http://prom:9090"},
        "metrics": [{"name": "error-rate", "builtin": "errorRate", "max": 0.01}],
        "consecutiveErrorLimit": 1,
    }
)


def request(kind: AnalysisKind = AnalysisKind.STEP) -> AnalysisRequest:
    return AnalysisRequest(
        key="k1",
        kind=kind,
        spec=SPEC,
        canary_revision="cand",
        stable_revision="stab",
        started_at=T0,
        measure_at=T0 + dt.timedelta(seconds=10),
        step_index=2,
    )


def measured(at: float, verdict: Verdict, value: float | None = None) -> AnalysisMeasurements:
    when = T0 + dt.timedelta(seconds=at)
    result = MetricResult(
        metric="error-rate", value=value, verdict=verdict, measured_at=when, message="m"
    )
    return AnalysisMeasurements("k1", when, (result,))


def step(
    previous: AnalysisStatus | None,
    m: AnalysisMeasurements | None,
    kind: AnalysisKind = AnalysisKind.STEP,
) -> tuple[AnalysisRunPhase, AnalysisStatus]:
    out = evaluate(request(kind), previous, m, T0)
    assert out.analysis is not None
    return out.verdict, out.analysis


def test_grid_alignment() -> None:
    t = dt.datetime.fromtimestamp(1000.3, dt.UTC)
    assert next_grid_time(t, 10).timestamp() == 1010.0
    # Late by more than half an interval: the next grid point after that.
    assert next_grid_time(dt.datetime.fromtimestamp(1006.0, dt.UTC), 10).timestamp() == 1020.0


def test_fresh_run_waits_one_interval() -> None:
    late = evaluate(request(), None, None, T0).analysis
    started_mid_grid = AnalysisRequest(
        "k", AnalysisKind.STEP, SPEC, "c", "s", T0 + dt.timedelta(seconds=4), T0, 2
    )
    first = evaluate(started_mid_grid, None, None, T0).analysis
    assert late is not None and first is not None
    # Started 4 s into a 10 s grid: the first measurement is a full interval later, not at 10.
    assert first.next_measurement_at == T0 + dt.timedelta(seconds=20)
    verdict, status = step(None, None)
    assert verdict is AnalysisRunPhase.RUNNING
    assert status.kind == "step" and status.revision == "cand" and status.step_index == 2
    assert status.next_measurement_at == T0 + dt.timedelta(seconds=10)


def test_success_after_count_and_no_double_counting() -> None:
    _, s = step(None, None)
    v, s = step(s, measured(10.2, Verdict.SUCCESSFUL, 0.001))
    assert v is AnalysisRunPhase.RUNNING and s.measurements == 1
    assert s.next_measurement_at == T0 + dt.timedelta(seconds=20)
    # The same measurements folded in again (a second decide) are not counted twice.
    v, s = step(s, measured(10.2, Verdict.SUCCESSFUL, 0.001))
    assert s.measurements == 1
    v, s = step(s, measured(20.1, Verdict.SUCCESSFUL, 0.002))
    assert v is AnalysisRunPhase.SUCCESSFUL and s.successful == 2
    assert s.next_measurement_at is None


def test_failure_is_final_and_named() -> None:
    _, s = step(None, None)
    v, s = step(s, measured(10.0, Verdict.FAILED, 0.052))
    assert v is AnalysisRunPhase.FAILED
    assert s.message.startswith("metric error-rate value 0.052")
    # Later measurements do not change a finished run.
    v, s2 = step(s, measured(20.0, Verdict.SUCCESSFUL, 0.0))
    assert v is AnalysisRunPhase.FAILED and s2 == s


def test_errors_pause_and_resume() -> None:
    _, s = step(None, None)
    v, s = step(s, measured(10.0, Verdict.ERROR))
    assert v is AnalysisRunPhase.RUNNING
    v, s = step(s, measured(20.0, Verdict.ERROR))
    assert v is AnalysisRunPhase.ERROR and s.next_measurement_at is not None
    v, s = step(s, measured(30.0, Verdict.SUCCESSFUL, 0.0))
    assert v is AnalysisRunPhase.RUNNING and s.consecutive_errors == 0
    v, s = step(s, measured(40.0, Verdict.SUCCESSFUL, 0.0))
    assert v is AnalysisRunPhase.SUCCESSFUL


def test_no_data_pauses_as_inconclusive() -> None:
    _, s = step(None, None)
    v, s = step(s, measured(10.0, Verdict.INCONCLUSIVE))
    assert v is AnalysisRunPhase.INCONCLUSIVE and s.next_measurement_at is None


def test_background_never_succeeds() -> None:
    _, s = step(None, None, AnalysisKind.BACKGROUND)
    for t in (10.0, 20.0, 30.0):
        v, s = step(s, measured(t, Verdict.SUCCESSFUL, 0.0), AnalysisKind.BACKGROUND)
        assert v is AnalysisRunPhase.RUNNING


def test_another_run_starts_afresh() -> None:
    _, s = step(None, None)
    _, s = step(s, measured(10.0, Verdict.FAILED, 0.5))
    other = AnalysisRequest("k2", AnalysisKind.STEP, SPEC, "cand", "stab", T0, T0, step_index=4)
    out = evaluate(other, s, None, T0)
    assert out.verdict is AnalysisRunPhase.RUNNING
    assert out.analysis is not None and out.analysis.failed == 0


def test_no_data_right_after_errors_belongs_to_the_outage() -> None:
    _, s = step(None, None)
    _, s = step(s, measured(10.0, Verdict.ERROR))
    _, s = step(s, measured(20.0, Verdict.ERROR))
    v, s = step(s, measured(30.0, Verdict.INCONCLUSIVE))
    assert v is AnalysisRunPhase.ERROR and s.inconclusive == 0 and s.consecutive_errors == 3
    v, s = step(s, measured(40.0, Verdict.SUCCESSFUL, 0.0))
    assert v is AnalysisRunPhase.RUNNING
    # Without a preceding error, missing data is Inconclusive as usual.
    v, s = step(s, measured(50.0, Verdict.INCONCLUSIVE))
    assert v is AnalysisRunPhase.INCONCLUSIVE


def test_per_metric_policy_overrides_the_analysis_default() -> None:
    wire = SPEC.model_dump(by_alias=True, exclude_none=True, mode="json")
    wire["metrics"].append(
        {"name": "optional", "builtin": "requestRate", "min": 1, "onNoData": "ignore"}
    )
    spec = AnalysisSpec.model_validate(wire)
    policies = policies_of(spec)
    assert policies["error-rate"].on_no_data is DataPolicy.PAUSE
    assert policies["optional"].on_no_data is DataPolicy.IGNORE
    assert policies["optional"].on_error is DataPolicy.PAUSE
