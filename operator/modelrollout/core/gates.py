"""Gates shared by the canary and blue/green machines: validation, analysis runs, pauses."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

from modelrollout.api import (
    AnalysisKind,
    AnalysisRunPhase,
    AnalysisSpec,
    AnalysisStatus,
    AnalysisStepSpec,
    BackgroundAnalysis,
    Outcome,
    PauseReason,
    Phase,
    ValidationResult,
    Verdict,
)
from modelrollout.core.decision_state import DecisionState
from modelrollout.core.plan import AnalysisRequest, ValidationRequest
from modelrollout.core.step_outcome import ABORTED, IN_PROGRESS, StepOutcome, StepResult
from modelrollout.core.transitions import abort_candidate

ANALYSIS_UNAVAILABLE = "analysis is not available"


class Gate(Enum):
    PASSED = "passed"
    WAITING = "waiting"
    FAILED = "failed"


@dataclass(frozen=True)
class AnalysisGate:
    """An analysis run mapped onto the rollout; `analysis_due` is set while it waits on a
    measurement (the run is Running, or paused on errors)."""

    gate: Gate
    analysis_due: AnalysisRequest | None = None

    def held(self) -> StepResult:
        """The step's result when the gate does not let it go on: Failed aborts, anything else
        waits (with the measurement to take, if any)."""
        if self.gate == Gate.FAILED:
            return ABORTED
        return StepResult(StepOutcome.IN_PROGRESS, analysis_due=self.analysis_due)


def spec_paused(ctx: DecisionState) -> bool:
    """spec.paused freezes the rollout; on resume, the paused time does not count for the step."""
    st = ctx.st
    if ctx.spec.paused:
        ctx.pause(PauseReason.SPEC_PAUSED, "paused by spec.paused: set it to false to resume")
        return True
    if st.pause_reason == PauseReason.SPEC_PAUSED:
        if st.pause_started_at is not None and st.step_started_at is not None:
            st.step_started_at = st.step_started_at + (ctx.now - st.pause_started_at)
        st.pause_reason = None
        st.pause_started_at = None
        ctx.event("Normal", "Resumed", "spec.paused is false: the rollout continues")
    return False


def validation_gate(ctx: DecisionState) -> tuple[Gate, str]:
    """The offline validation of the candidate, before any live traffic."""
    candidate = ctx.st.canary_revision
    if ctx.spec.validation is None or candidate is None:
        return Gate.PASSED, ""
    started = ctx.st.rollout_started_at or ctx.now
    seen = ctx.obs.validation
    if (
        seen is not None
        and seen.revision == candidate
        and (seen.started_at is None or seen.started_at >= started)
    ):
        ctx.st.validation = seen.model_copy(deep=True)
    result = ctx.st.validation
    if result is not None and result.revision == candidate:
        if result.result == ValidationResult.PASSED:
            return Gate.PASSED, ""
        if result.result in (ValidationResult.FAILED, ValidationResult.ERROR):
            return Gate.FAILED, f"validation of revision {candidate} failed: {result.message}"
    ctx.validation_due = ValidationRequest(revision=candidate, requested_at=started)
    ctx.set_phase(Phase.VALIDATING, f"validating revision {candidate} offline", "Validating")
    return Gate.WAITING, ""


def effective_analysis(
    base: AnalysisSpec, run: AnalysisStepSpec | BackgroundAnalysis | None
) -> AnalysisSpec:
    """spec.analysis narrowed to the run's metrics, with the run's count."""
    update: dict[str, object] = {}
    if run is not None and run.metrics:
        wanted = set(run.metrics)
        update["metrics"] = [m for m in base.metrics if m.name in wanted]
    if isinstance(run, AnalysisStepSpec) and run.count is not None:
        update["count"] = run.count
    return base.model_copy(update=update)


def _measurement_errors(analysis: AnalysisStatus | None) -> set[tuple[str, str]]:
    if analysis is None:
        return set()
    return {(r.metric, r.message) for r in analysis.results if r.verdict is Verdict.ERROR}


def _report_measurement_errors(
    ctx: DecisionState, label: str, before: AnalysisStatus | None, after: AnalysisStatus
) -> None:
    """A Warning event for each metric whose source fails in a new way (once per cause)."""
    for metric, message in sorted(_measurement_errors(after) - _measurement_errors(before)):
        ctx.event("Warning", "MetricSourceError", f"{label}: metric {metric}: {message}")


def run_analysis(
    ctx: DecisionState,
    kind: AnalysisKind,
    run: AnalysisStepSpec | BackgroundAnalysis | None,
    step_index: int | None,
    started_at: datetime,
    label: str,
) -> AnalysisGate:
    """Fold fresh measurements into the run and map its verdict onto the rollout.

    Never passes without the evaluator's Successful: unavailable analysis pauses. Failed rolls
    the candidate back (reason AnalysisFailed, message `label: why`). A run still measuring (or
    paused on errors) waits with the request to measure next as its `analysis_due`.
    """
    candidate = ctx.st.canary_revision
    background = kind == AnalysisKind.BACKGROUND
    if ctx.spec.analysis is None or candidate is None:
        ctx.pause(
            PauseReason.ANALYSIS_UNAVAILABLE,
            f"{label}: {ANALYSIS_UNAVAILABLE} (no spec.analysis)",
        )
        return AnalysisGate(Gate.WAITING)
    if not ctx.obs.analysis_available or ctx.evaluate is None:
        ctx.pause(PauseReason.ANALYSIS_UNAVAILABLE, f"{label}: {ANALYSIS_UNAVAILABLE}")
        return AnalysisGate(Gate.WAITING)
    # After promotion the stable serves nothing: comparing with it would judge stale or empty
    # windows, so the run has no stable and comparisons are "no data" (never success).
    stable = None if kind == AnalysisKind.POST_PROMOTION else ctx.st.stable_revision
    key = f"{candidate}/{kind.value}/{step_index if step_index is not None else '-'}/"
    key += started_at.strftime("%Y%m%dT%H%M%S")
    request = AnalysisRequest(
        key=key,
        kind=kind,
        spec=effective_analysis(ctx.spec.analysis, run),
        canary_revision=candidate,
        stable_revision=stable,
        started_at=started_at,
        measure_at=ctx.now,
        step_index=step_index,
    )
    fresh = ctx.obs.measurements
    outcome = ctx.evaluate(
        request, ctx.st.analysis, fresh if fresh is not None and fresh.key == key else None, ctx.now
    )
    if outcome.analysis is not None:
        _report_measurement_errors(ctx, label, ctx.st.analysis, outcome.analysis)
        ctx.st.analysis = outcome.analysis
    verdict = outcome.verdict
    if verdict == AnalysisRunPhase.SUCCESSFUL:
        ctx.event("Normal", "AnalysisSuccessful", f"{label}: analysis passed")
        return AnalysisGate(Gate.PASSED)
    if verdict == AnalysisRunPhase.FAILED:
        why = outcome.message or "analysis failed"
        abort_candidate(ctx, "AnalysisFailed", f"{label}: {why}", Outcome.ROLLED_BACK)
        return AnalysisGate(Gate.FAILED)
    if verdict == AnalysisRunPhase.INCONCLUSIVE:
        ctx.pause(
            PauseReason.ANALYSIS_INCONCLUSIVE,
            f"{label}: analysis inconclusive ({outcome.message}): promote to continue, "
            "abort to roll back",
        )
        return AnalysisGate(Gate.WAITING)
    measure_at = outcome.next_measure_at or ctx.now
    due = replace(request, measure_at=measure_at)
    ctx.requeue_at(measure_at)
    if verdict == AnalysisRunPhase.ERROR:
        ctx.pause(
            PauseReason.ANALYSIS_ERROR,
            f"{label}: analysis paused on errors: {outcome.message}",
        )
    elif not background:
        ctx.set_phase(
            Phase.PROGRESSING, f"{label}: analysis running {outcome.message}".strip(), "Analysis"
        )
    return AnalysisGate(Gate.WAITING, analysis_due=due)


def before_traffic(ctx: DecisionState) -> StepResult | None:
    """The holdout gate and spec.paused, checked before any step: an outcome, or None to go on."""
    gate, why = validation_gate(ctx)
    if gate == Gate.FAILED:
        abort_candidate(ctx, "ValidationFailed", why, Outcome.ABORTED)
        return ABORTED
    if gate == Gate.WAITING or spec_paused(ctx):
        return IN_PROGRESS
    return None


def wait_for_pods(ctx: DecisionState, what: str, ready: int, needed: int) -> StepResult:
    """Wait for the candidate's pods; past progressDeadlineSeconds the candidate is aborted."""
    candidate = ctx.st.canary_revision
    if ctx.deadline_passed(ctx.st.step_started_at, ctx.spec.progress_deadline_seconds):
        abort_candidate(
            ctx,
            "ProgressDeadlineExceeded",
            f"{what}: {ready}/{needed} pods ready after {ctx.spec.progress_deadline_seconds}s"
            + ctx.trouble_of(candidate),
            Outcome.ABORTED,
        )
        return ABORTED
    assert candidate is not None
    ctx.waiting_for_pods(
        candidate, f"{what}: waiting for pods of revision {candidate} ({ready}/{needed} ready)"
    )
    return IN_PROGRESS
