"""`decide`: the one entry point of the pure core.

A pure function of (spec, status, observation): level-triggered, safe to call any number of times,
and all rollout state it needs lives in status, so a restarted operator continues where it was.
"""

from __future__ import annotations

from datetime import UTC, datetime

from modelrollout.api import (
    ConditionStatus,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    Outcome,
    Phase,
    parse_duration,
)
from modelrollout.api.controls import NO_STABLE_TO_ABORT_TO
from modelrollout.core.conditions import DEGRADED, PROGRESSING, READY, set_condition
from modelrollout.core.controls import Controls, consume_all, pending_controls
from modelrollout.core.decision_state import ROUTER_RECHECK_SECONDS, DecisionState
from modelrollout.core.evaluation import AnalysisEvaluator
from modelrollout.core.gates import Gate, validation_gate
from modelrollout.core.hold import hold
from modelrollout.core.monitoring import CONDITION, MODEL_HEALTHY, monitor
from modelrollout.core.observation import Observation, TrafficObservation
from modelrollout.core.plan import AnalysisRequest, DesiredRevision, Plan, TrafficPlan
from modelrollout.core.revision import compute_revision
from modelrollout.core.step_outcome import StepOutcome
from modelrollout.core.strategy import RolloutLayout, RolloutStrategy
from modelrollout.core.strategy_registry import strategy_for
from modelrollout.core.transitions import (
    FAST_ROLLBACK_REASON,
    abort_candidate,
    aborted_reason,
    clear_candidate,
    promote_candidate,
    start_rollout,
    supersede_candidate,
)

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The history's reason for a promotion when neither the step nor a fast rollback gives one.
_ALL_STEPS_COMPLETED = "all steps completed"


def decide(
    name: str,
    namespace: str,
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    obs: Observation,
    *,
    evaluate: AnalysisEvaluator | None = None,
) -> Plan:
    """The desired state for one ModelDeployment (docs/architecture.md, "The decision")."""
    ctx = DecisionState(
        name=name,
        namespace=namespace,
        spec=spec,
        obs=obs,
        revision=compute_revision(spec),
        evaluate=evaluate,
        st=status.model_copy(deep=True),
    )
    if obs.faults:
        return hold(ctx, obs.faults)
    strategy = strategy_for(spec)
    fast_rollback = _lifecycle(ctx, strategy, pending_controls(status))
    analysis_due = _step(ctx, strategy, pending_controls(ctx.st), fast_rollback=fast_rollback)
    if analysis_due is None:
        analysis_due, rolled_back = monitor(ctx)
        if rolled_back:
            _aborted(ctx, strategy)
    _retain(ctx, strategy)
    prune = _prune(ctx)
    _finish(ctx)
    return Plan(
        status=ctx.st,
        revisions=tuple(
            DesiredRevision(revision=r, replicas=n) for r, n in sorted(ctx.desired.items())
        ),
        prune=prune,
        traffic=ctx.traffic,
        events=tuple(ctx.events),
        requeue_after=min(ctx.deadlines) if ctx.deadlines else None,
        analysis_due=analysis_due,
        validation_due=ctx.validation_due,
        revision=ctx.revision,
    )


def _lifecycle(ctx: DecisionState, strategy: RolloutStrategy, controls: Controls) -> bool:
    """Which candidate is current: start, supersede, retry or abort it.

    True when a rollout started here is a fast rollback (see transitions.start_rollout).
    """
    st = ctx.st
    stable, candidate = st.stable_revision, st.canary_revision
    if ctx.revision == stable:
        if candidate is not None:
            supersede_candidate(ctx, f"spec returned to the stable revision {stable}")
            clear_candidate(ctx)
            st.handled_requests = consume_all(st)
        return False
    if candidate != ctx.revision:
        return start_rollout(ctx, strategy)
    if st.aborted_revision == candidate:
        if controls.retry:
            return start_rollout(ctx, strategy, retried=True)
        return False
    if controls.abort:
        if stable is None:
            ctx.event("Warning", "AbortIgnored", NO_STABLE_TO_ABORT_TO)
        else:
            abort_candidate(ctx, "Aborted", "aborted by request", Outcome.ABORTED)
    return False


def _step(
    ctx: DecisionState, strategy: RolloutStrategy, controls: Controls, *, fast_rollback: bool
) -> AnalysisRequest | None:
    """One step of the rollout and its layout; returns the analysis run to measure next."""
    st = ctx.st
    if st.canary_revision is None:
        _steady(ctx, strategy)
    elif st.aborted_revision == st.canary_revision:
        _aborted(ctx, strategy)
    elif st.stable_revision is None:
        _initial(ctx, strategy)
    else:
        result = strategy.step(ctx, controls)
        if result.outcome == StepOutcome.PROMOTED:
            default = FAST_ROLLBACK_REASON if fast_rollback else _ALL_STEPS_COMPLETED
            promote_candidate(ctx, result.promotion_reason or default)
            _steady(ctx, strategy)
        elif result.outcome == StepOutcome.ABORTED:
            _aborted(ctx, strategy)
        else:
            _lay_out(ctx, strategy.rollout_layout(ctx))
        return result.analysis_due
    return None


def _lay_out(ctx: DecisionState, layout: RolloutLayout) -> None:
    """Replicas, traffic and status.canaryWeight of a candidate in progress."""
    st = ctx.st
    stable, candidate = st.stable_revision, st.canary_revision
    assert stable is not None and candidate is not None
    ctx.desired[stable] = layout.stable_replicas
    ctx.desired[candidate] = layout.candidate_replicas
    reported = layout.reported_weight
    st.canary_weight = layout.traffic.canary_weight if reported is None else reported
    ctx.traffic = layout.traffic


def _steady(ctx: DecisionState, strategy: RolloutStrategy) -> None:
    st = ctx.st
    stable = st.stable_revision
    assert stable is not None
    replicas = ctx.spec.replicas
    ctx.desired[stable] = replicas
    st.canary_weight = 0
    ctx.traffic = strategy.settled_traffic(stable)
    ready = ctx.ready(stable)
    version = st.stable_model_version or ""
    if ready >= replicas:
        ctx.set_phase(
            Phase.HEALTHY, f"revision {stable} (model version {version}) serving", "RolloutComplete"
        )
    else:
        ctx.waiting_for_pods(
            stable, f"waiting for pods of stable revision {stable} ({ready}/{replicas} ready)"
        )


def _aborted(ctx: DecisionState, strategy: RolloutStrategy) -> None:
    """All traffic on the stable; the aborted candidate scaled to zero."""
    st = ctx.st
    stable, candidate = st.stable_revision, st.canary_revision
    if stable is not None:
        ctx.desired[stable] = ctx.spec.replicas
    if candidate is not None:
        ctx.desired[candidate] = 0
    st.canary_weight = 0
    ctx.traffic = strategy.settled_traffic(stable)
    reason = ctx.degraded_reason or aborted_reason(ctx)
    message = st.message if st.phase == Phase.DEGRADED else f"revision {candidate} aborted"
    ctx.set_phase(
        Phase.DEGRADED, message or f"revision {candidate} aborted: retry or change the spec", reason
    )


def _initial(ctx: DecisionState, strategy: RolloutStrategy) -> None:
    """No stable yet: the first revision is deployed at once (nothing to compare it with)."""
    st = ctx.st
    candidate = st.canary_revision
    assert candidate is not None
    replicas = ctx.spec.replicas
    gate, why = validation_gate(ctx)
    if gate == Gate.FAILED:
        abort_candidate(ctx, "ValidationFailed", why, Outcome.ABORTED)
        _aborted(ctx, strategy)
        return
    # The Services select the first revision from the start (only its Ready pods get traffic):
    # selecting nothing until the promotion would apply two Services twice per new object.
    ctx.traffic = TrafficPlan(stable_revision=None, canary_revision=candidate)
    if gate == Gate.WAITING:
        ctx.desired[candidate] = 0
        return
    ready = ctx.ready(candidate)
    if ready >= replicas:
        promote_candidate(ctx, "initial deployment")
        _steady(ctx, strategy)
        return
    ctx.desired[candidate] = replicas
    message = f"deploying revision {candidate}: {ready}/{replicas} pods ready"
    if ctx.deadline_passed(st.step_started_at, ctx.spec.progress_deadline_seconds):
        ctx.set_phase(
            Phase.DEGRADED,
            f"{message}, past the progress deadline{ctx.trouble_of(candidate)}",
            "ProgressDeadlineExceeded",
        )
    else:
        ctx.waiting_for_pods(candidate, message)


def _router_sends_traffic(traffic: TrafficObservation | None, revision: str) -> bool:
    """Whether the routing object, as read back, may still send traffic to `revision`.

    Unread (None) counts as yes: only a read-back showing the move frees a revision (the
    routing object is the truth, not what we asked the shell to write).
    """
    if traffic is None:
        return True
    if traffic.active_revision == revision:
        return True
    if traffic.stable_revision == revision and traffic.canary_weight < 100:
        return True
    return traffic.canary_revision == revision and traffic.canary_weight > 0


def _retain(ctx: DecisionState, strategy: RolloutStrategy) -> None:
    """Scale down everything else, but never a revision the router still sends traffic to."""
    st = ctx.st
    routed = strategy.keeps_routed_revisions_warm(ctx.spec)
    previous = st.previous_stable_revision
    if routed and previous is not None and previous not in ctx.desired and st.promoted_at:
        keep = 0.0
        if ctx.spec.rollback_window is not None:
            keep = parse_duration(ctx.spec.rollback_window)
        keep = max(keep, strategy.scale_down_delay_seconds(ctx.spec))
        if keep > 0 and not ctx.deadline_passed(st.promoted_at, keep):
            ctx.desired[previous] = ctx.spec.replicas
    for revision, seen in ctx.obs.revisions.items():
        if ctx.desired.get(revision, 0) > 0:
            continue
        if (
            routed
            and st.stable_revision is not None  # before a first stable nothing is routed
            and seen.replicas > 0
            and _router_sends_traffic(ctx.obs.traffic, revision)
        ):
            ctx.desired[revision] = seen.replicas
            ctx.requeue_in(ROUTER_RECHECK_SECONDS)
            continue
        ctx.desired.setdefault(revision, 0)


def _prune(ctx: DecisionState) -> tuple[str, ...]:
    """Idle revisions past revisionHistoryLimit (newest kept), never stable/candidate/previous."""
    st = ctx.st
    protected = {st.stable_revision, st.canary_revision, st.previous_stable_revision}
    idle = [
        seen
        for revision, seen in ctx.obs.revisions.items()
        if revision not in protected
        and ctx.desired.get(revision, 0) == 0
        and seen.replicas == 0
        and seen.ready_replicas == 0
    ]
    idle.sort(key=lambda s: (s.created_at or _EPOCH, s.revision), reverse=True)
    pruned = tuple(sorted(s.revision for s in idle[ctx.spec.revision_history_limit :]))
    for revision in pruned:
        ctx.desired.pop(revision, None)
    return pruned


def _finish(ctx: DecisionState) -> None:
    """observedGeneration, replica counts, conditions; every control token recorded as handled."""
    st = ctx.st
    now, generation = ctx.now, ctx.obs.generation
    st.observed_generation = generation
    st.ready_replicas = ctx.ready(st.stable_revision) if st.stable_revision else None
    st.canary_ready_replicas = ctx.ready(st.canary_revision) if st.canary_revision else None
    if st.phase == Phase.PAUSED and ctx.pause_reason is not None:
        # Compared with the status we were given, so a pause keeps its start across decisions.
        if st.pause_reason != ctx.pause_reason or st.pause_started_at is None:
            st.pause_reason = ctx.pause_reason
            st.pause_started_at = now
            ctx.event("Normal", "Paused", st.message)
    else:
        st.pause_reason = None
        st.pause_started_at = None
    stable_ready = st.stable_revision is not None and (st.ready_replicas or 0) >= ctx.spec.replicas
    conditions = set_condition(
        st.conditions,
        READY,
        ConditionStatus.TRUE if stable_ready else ConditionStatus.FALSE,
        "StableAvailable" if stable_ready else "StableUnavailable",
        (
            f"stable revision {st.stable_revision}: {st.ready_replicas or 0}/{ctx.spec.replicas} "
            "pods ready"
            if st.stable_revision
            else "no stable revision yet"
        ),
        now,
        generation,
    )
    rolling = st.phase in (Phase.PROGRESSING, Phase.VALIDATING, Phase.PAUSED)
    conditions = set_condition(
        conditions,
        PROGRESSING,
        ConditionStatus.TRUE if rolling else ConditionStatus.FALSE,
        ctx.progress_reason,
        st.message,
        now,
        generation,
    )
    degraded = st.phase == Phase.DEGRADED
    conditions = set_condition(
        conditions,
        DEGRADED,
        ConditionStatus.TRUE if degraded else ConditionStatus.FALSE,
        (ctx.degraded_reason or "Degraded") if degraded else "AsExpected",
        st.message if degraded else "",
        now,
        generation,
    )
    if st.monitoring is not None:
        conditions = set_condition(
            conditions,
            MODEL_HEALTHY,
            CONDITION[st.monitoring.state],
            st.monitoring.state.value,
            st.monitoring.message,
            now,
            generation,
        )
    else:
        conditions = [c for c in conditions if c.type != MODEL_HEALTHY]
    st.conditions = conditions
    st.handled_requests = consume_all(st)
