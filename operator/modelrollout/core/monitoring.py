"""Monitoring after promotion (spec.monitoring): the serving revision is checked every interval.

Each check is one analysis run of the serving revision alone (kind monitoring, one measurement,
no stable), measured by the same evaluator as the rollout's analysis, so missing data is never a
pass. Its result goes to status.monitoring and the condition ModelHealthy. Failed checks beyond
failureLimit are a breach: a Warning event naming the metric (and for inputDrift the features),
and with policy rollback, traffic back to the previous revision while it is within
spec.rollbackWindow and its pods are ready; otherwise the breach is reported and nothing moves.
"""

from __future__ import annotations

from dataclasses import replace

from modelrollout.api import (
    AnalysisKind,
    AnalysisRunPhase,
    AnalysisSpec,
    ConditionStatus,
    DataPolicy,
    ModelDeploymentSpec,
    MonitoringPolicy,
    MonitoringSpec,
    MonitoringState,
    MonitoringStatus,
)
from modelrollout.core.decision_state import DecisionState
from modelrollout.core.plan import AnalysisRequest
from modelrollout.core.transitions import roll_back_promotion, within_rollback_window

MODEL_HEALTHY = "ModelHealthy"
BREACH = "MonitoringBreach"
ROLLED_BACK = "MonitoringFailed"

# status.monitoring.state -> condition ModelHealthy
CONDITION = {
    MonitoringState.HEALTHY: ConditionStatus.TRUE,
    MonitoringState.BREACHED: ConditionStatus.FALSE,
    MonitoringState.NO_DATA: ConditionStatus.UNKNOWN,
    MonitoringState.PENDING: ConditionStatus.UNKNOWN,
}


def check_spec(spec: ModelDeploymentSpec, monitoring: MonitoringSpec) -> AnalysisSpec:
    """One check as an analysis run: one measurement, the monitoring's metrics and bounds."""
    prometheus = monitoring.prometheus or (spec.analysis.prometheus if spec.analysis else None)
    assert prometheus is not None  # admission requires one
    no_data = DataPolicy.FAIL if monitoring.on_no_data is DataPolicy.FAIL else DataPolicy.PAUSE
    return AnalysisSpec(
        interval=monitoring.interval,
        count=1,
        prometheus=prometheus,
        metrics=monitoring.metrics,
        failure_limit=0,
        inconclusive_limit=0,
        consecutive_error_limit=0,
        on_no_data=no_data,
        on_error=DataPolicy.PAUSE,
        min_samples=monitoring.min_samples,
    )


def monitor(ctx: DecisionState) -> tuple[AnalysisRequest | None, bool]:
    """The check to measure next (or None), and whether a breach just rolled back."""
    st, mon = ctx.st, ctx.spec.monitoring
    stable = st.stable_revision
    if mon is None or stable is None:
        st.monitoring = None
        return None, False
    candidate_live = st.canary_revision is not None and st.aborted_revision != st.canary_revision
    if candidate_live or ctx.ready(stable) < 1:
        return None, False  # a rollout in progress is judged by its own analysis
    state = st.monitoring
    if state is None or state.revision != stable:
        state = MonitoringStatus(
            revision=stable, since=ctx.now, next_check_at=st.promoted_at or ctx.now
        )
    st.monitoring = state
    if not ctx.obs.analysis_available or ctx.evaluate is None:
        _set(ctx, state, MonitoringState.NO_DATA, "analysis unavailable (no metric provider)")
        return None, False
    start = state.next_check_at or ctx.now
    if ctx.now < start:
        ctx.requeue_at(start)
        return None, False
    request = AnalysisRequest(
        key=f"{stable}/monitoring/-/{start.strftime('%Y%m%dT%H%M%S')}",
        kind=AnalysisKind.MONITORING,
        spec=check_spec(ctx.spec, mon),
        canary_revision=stable,
        stable_revision=None,
        started_at=start,
        measure_at=ctx.now,
    )
    fresh = ctx.obs.measurements
    outcome = ctx.evaluate(
        request,
        state.check,
        fresh if fresh is not None and fresh.key == request.key else None,
        ctx.now,
    )
    state.check = outcome.analysis
    verdict, message = outcome.verdict, outcome.message
    if verdict in (AnalysisRunPhase.RUNNING, AnalysisRunPhase.ERROR):
        if verdict is AnalysisRunPhase.ERROR:
            _set(ctx, state, MonitoringState.NO_DATA, f"check failed to measure: {message}")
        measure_at = outcome.next_measure_at or ctx.now
        ctx.requeue_at(measure_at)
        return replace(request, measure_at=measure_at), False
    # The check is over: the next one starts now (its measurement comes an interval later).
    state.next_check_at = ctx.now
    ctx.requeue_in(1.0)
    if verdict is AnalysisRunPhase.SUCCESSFUL:
        state.failures_in_a_row = 0
        _set(ctx, state, MonitoringState.HEALTHY, f"revision {stable}: every metric in bounds")
        return None, False
    if verdict is AnalysisRunPhase.INCONCLUSIVE:
        _set(ctx, state, MonitoringState.NO_DATA, f"revision {stable}: {message}")
        return None, False
    state.failures_in_a_row += 1
    if state.failures_in_a_row <= mon.failure_limit:
        n, limit = state.failures_in_a_row, mon.failure_limit
        state.message = f"revision {stable}: failed check {n} of {limit} tolerated: {message}"[
            :1024
        ]
        return None, False
    return None, _breach(ctx, state, mon, message)


def _breach(ctx: DecisionState, state: MonitoringStatus, mon: MonitoringSpec, why: str) -> bool:
    st = ctx.st
    stable = state.revision
    state.breaches += 1
    state.failures_in_a_row = 0
    _set(ctx, state, MonitoringState.BREACHED, f"revision {stable}: {why}")
    ctx.event("Warning", BREACH, f"revision {stable}: {why}")
    if mon.policy is not MonitoringPolicy.ROLLBACK:
        return False
    previous = st.previous_stable_revision
    if previous is None or not within_rollback_window(ctx, previous):
        ctx.event(
            "Warning",
            "MonitoringRollbackUnavailable",
            f"revision {stable}: no previous revision within spec.rollbackWindow to roll back to",
        )
        return False
    ready = ctx.ready(previous)
    if ready < ctx.spec.replicas:
        ctx.event(
            "Warning",
            "MonitoringRollbackUnavailable",
            f"revision {stable}: previous revision {previous} has {ready}/{ctx.spec.replicas} "
            "pods ready: traffic stays",
        )
        return False
    roll_back_promotion(ctx, ROLLED_BACK, f"monitoring: {why}")
    return True


def _set(ctx: DecisionState, state: MonitoringStatus, to: MonitoringState, message: str) -> None:
    if state.state is not to:
        state.since = ctx.now
    state.state = to
    state.message = message[:1024]
