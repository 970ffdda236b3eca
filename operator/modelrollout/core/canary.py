"""The canary state machine: steps setWeight, pause (timed or manual) and analysis.

Replicas router: the stable keeps spec.replicas; the canary's replicas approximate the weight
(routing.canary_replicas_for_weight) and the reported weight comes from READY pods.
Exact routers (gatewayAPI, istio, nginx): the canary runs at spec.replicas from its first step, so
a weight change never waits for pods and an abort never lacks capacity; the router gets the step's
weight once the canary is ready.

status.currentStepIndex: the step in progress; len(steps) promoting (the candidate scaled to
spec.replicas); len(steps) + 1 the post-promotion window (strategy.canary.postPromotionAnalysis).
In that window the candidate takes all traffic while the previous stable stays at spec.replicas,
so a failed analysis returns traffic to pods that are already up. Exact routers get weight 100.
The replicas router cannot say "100% candidate, stable warm" with pod counts (every ready pod
behind `<name>` gets a share), so `<name>` switches its selector to the candidate's revision,
the same Service-selector switch blue/green uses (TrafficPlan.active_revision); `<name>-stable`
keeps selecting the stable. A rollback or promotion restores the all-revisions selector.

CANARY is this module as a strategy.RolloutStrategy (registered in core/strategy_registry.py).
"""

from __future__ import annotations

from modelrollout.api import (
    AnalysisKind,
    CanaryStep,
    CanaryStrategy,
    ModelDeploymentSpec,
    PauseReason,
    Phase,
    parse_duration,
)
from modelrollout.core.controls import Controls
from modelrollout.core.decision_state import ROUTER_RECHECK_SECONDS, DecisionState
from modelrollout.core.gates import Gate, before_traffic, run_analysis, wait_for_pods
from modelrollout.core.plan import TrafficPlan
from modelrollout.core.routing import (
    canary_replicas_for_weight,
    effective_weight,
    uses_replica_weights,
)
from modelrollout.core.step_outcome import IN_PROGRESS, PROMOTED, StepOutcome, StepResult
from modelrollout.core.strategy import RolloutLayout, RolloutStrategy


def _describe(step: CanaryStep) -> str:
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    if step.shadow is not None:
        return f"shadow {step.shadow.percent}% for {step.shadow.duration}"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause"
    return "analysis"


def reached_weight(steps: list[CanaryStep], index: int) -> int:
    """The weight of the last setWeight step before `index` (weights never decrease)."""
    weights = [s.set_weight for s in steps[:index] if s.set_weight is not None]
    return weights[-1] if weights else 0


def _strategy(ctx: DecisionState) -> CanaryStrategy:
    canary = ctx.spec.strategy.canary
    assert canary is not None
    return canary


def shadowing(steps: list[CanaryStep], index: int) -> int:
    """The share of requests mirrored at step `index`: a first shadow step's percent until the
    first setWeight (analysis steps in between judge the candidate on the copies), else 0."""
    if not steps or steps[0].shadow is None:
        return 0
    first_weight = next((i for i, s in enumerate(steps) if s.set_weight is not None), len(steps))
    return steps[0].shadow.percent if index < first_weight else 0


def needed_canary_replicas(ctx: DecisionState, weight: int) -> int:
    replicas = ctx.spec.replicas
    if not uses_replica_weights(ctx.spec) or weight >= 100:
        return replicas
    return canary_replicas_for_weight(replicas, weight)


def _advance(ctx: DecisionState, index: int, total: int, step: CanaryStep) -> int:
    ctx.st.current_step_index = index + 1
    ctx.st.step_started_at = ctx.now
    ctx.event("Normal", "StepCompleted", f"step {index + 1}/{total} ({_describe(step)}) completed")
    return index + 1


def routed_weight(ctx: DecisionState) -> int | None:
    """The candidate's weight as the router reads it back; None for the replicas router, whose
    weight is the ready pods themselves.

    A step's weight counts only once the routing object holds it (as Argo Rollouts verifies
    weights): status.canaryWeight never claims more than the router does.
    """
    if uses_replica_weights(ctx.spec):
        return None
    seen = ctx.obs.traffic
    if seen is None or seen.canary_revision != ctx.st.canary_revision:
        return 0
    return seen.canary_weight


def _wait_for_router(ctx: DecisionState, what: str) -> StepResult:
    """The weight is written; wait until the router reads it back, for progressDeadlineSeconds.

    The same bound as for the step's pods: a router that never confirms is as stuck as pods that
    never get ready, but it pauses instead of rolling back (the candidate did nothing wrong), and
    the rollout goes on by itself once the router confirms.
    """
    deadline = ctx.spec.progress_deadline_seconds
    holds = routed_weight(ctx)
    ctx.requeue_in(ROUTER_RECHECK_SECONDS)
    if ctx.deadline_passed(ctx.st.step_started_at, deadline):
        ctx.pause(
            PauseReason.WEIGHT_NOT_CONFIRMED,
            f"{what}: the router holds {holds}% after {deadline}s: check the routing object",
        )
    else:
        ctx.set_phase(
            Phase.PROGRESSING,
            f"{what}: waiting for the router to confirm (it holds {holds}%)",
            "WaitingForRouter",
        )
    return IN_PROGRESS


def _report_routing_change(ctx: DecisionState, target: int) -> None:
    """A Warning event when someone else moved the weight away from what the router held.

    The router held `target` at the previous decision (status.canaryWeight) and holds something
    else now, without the rollout asking: another client wrote the routing object (an Argo CD
    sync, a person). The shell writes `target` back with this plan.
    """
    held = routed_weight(ctx)
    seen = ctx.obs.traffic
    if held is None or seen is None or held == target or ctx.st.canary_weight != target:
        return
    ctx.event(
        "Warning",
        "TrafficRoutingChanged",
        f"{seen.routing_object or 'the routing object'} was changed by "
        f"{seen.changed_by or 'another client'}: it sends {held}% to revision "
        f"{ctx.st.canary_revision}, the rollout {target}%; setting it back",
    )


def post_promotion_index(steps: list[CanaryStep]) -> int:
    """status.currentStepIndex of the post-promotion window."""
    return len(steps) + 1


def step_canary(ctx: DecisionState, controls: Controls) -> StepResult:
    """Advance the canary as far as the observation allows."""
    st = ctx.st
    strategy = _strategy(ctx)
    steps = strategy.steps
    total = len(steps)
    last = total if strategy.post_promotion_analysis is None else post_promotion_index(steps)
    index = min(st.current_step_index or 0, last)
    if index > total and (controls.promote or controls.promote_full):
        ctx.event("Normal", "PostPromotionSkipped", "promote: post-promotion analysis skipped")
        return StepResult(
            StepOutcome.PROMOTED,
            promotion_reason="promoted by request (post-promotion analysis skipped)",
        )
    requested: str | None = None
    if controls.promote_full and index < total:
        ctx.event("Normal", "PromoteFull", "promoteFull: remaining steps skipped")
        requested = "promoteFull requested"
        index = total
        st.step_started_at = ctx.now
    elif controls.promote and index < total:
        ctx.event("Normal", "StepPromoted", f"step {index + 1}/{total} promoted by request")
        index += 1
        st.step_started_at = ctx.now
    st.current_step_index = index
    stop = before_traffic(ctx)
    if stop is not None:
        return stop
    result = _run_steps(ctx, steps, index)
    if result.outcome == StepOutcome.IN_PROGRESS and result.analysis_due is None:
        # One run measured at a time: a step's own analysis goes before the background one.
        result = _background_analysis(ctx)
    return result if requested is None else result.promoted_for(requested)


def _run_steps(ctx: DecisionState, steps: list[CanaryStep], index: int) -> StepResult:
    st = ctx.st
    total = len(steps)
    ready = ctx.ready(st.canary_revision)
    while True:
        if index > total:
            return _post_promotion(ctx, index)
        if index == total:
            needed = ctx.spec.replicas
            if ready < needed:
                return wait_for_pods(ctx, "promoting", ready, needed)
            if _strategy(ctx).post_promotion_analysis is None:
                return PROMOTED
            index = _enter_post_promotion(ctx, steps)
            continue
        step = steps[index]
        label = f"step {index + 1}/{total}"
        if step.shadow is not None:
            what = f"{label} shadow {step.shadow.percent}%"
            needed = needed_canary_replicas(ctx, step.shadow.percent)
            if ready < needed:
                return wait_for_pods(ctx, what, ready, needed)
            if ctx.deadline_passed(st.step_started_at, parse_duration(step.shadow.duration)):
                index = _advance(ctx, index, total, step)
                continue
            ctx.set_phase(
                Phase.PROGRESSING,
                f"{what} of live requests mirrored to the candidate for {step.shadow.duration}",
                "Shadow",
            )
            return IN_PROGRESS
        if step.set_weight is not None:
            needed = needed_canary_replicas(ctx, step.set_weight)
            if ready < needed:
                return wait_for_pods(ctx, f"{label} setWeight {step.set_weight}", ready, needed)
            # With no pod to send it to (spec.replicas 0) the router is asked for 0.
            expected = step.set_weight if ready > 0 else 0
            if routed_weight(ctx) not in (None, expected):
                return _wait_for_router(ctx, f"{label} setWeight {step.set_weight}")
            index = _advance(ctx, index, total, step)
            continue
        if step.pause is not None:
            if step.pause.duration is None:
                ctx.pause(PauseReason.PAUSE_STEP, f"{label}: paused until promoted")
                return IN_PROGRESS
            seconds = parse_duration(step.pause.duration)
            if ctx.deadline_passed(st.step_started_at, seconds):
                index = _advance(ctx, index, total, step)
                continue
            ctx.set_phase(Phase.PROGRESSING, f"{label}: pause {step.pause.duration}", "TimedPause")
            return IN_PROGRESS
        started = st.step_started_at or ctx.now
        checked = run_analysis(ctx, AnalysisKind.STEP, step.analysis, index, started, label)
        if checked.gate == Gate.PASSED:
            index = _advance(ctx, index, total, step)
            continue
        return checked.held()


def _enter_post_promotion(ctx: DecisionState, steps: list[CanaryStep]) -> int:
    st = ctx.st
    index = post_promotion_index(steps)
    st.current_step_index = index
    st.step_started_at = ctx.now
    ctx.event(
        "Normal",
        "PostPromotionStarted",
        f"all traffic on revision {st.canary_revision}; previous stable {st.stable_revision} "
        "kept up while the post-promotion analysis runs",
    )
    return index


def _post_promotion(ctx: DecisionState, index: int) -> StepResult:
    """The window after the last step: Passed promotes, Failed rolls back to the warm stable."""
    run = _strategy(ctx).post_promotion_analysis
    started = ctx.st.step_started_at or ctx.now
    checked = run_analysis(ctx, AnalysisKind.POST_PROMOTION, run, index, started, "post-promotion")
    if checked.gate == Gate.PASSED:
        return StepResult(StepOutcome.PROMOTED, promotion_reason="post-promotion analysis passed")
    return checked.held()


def _background_analysis(ctx: DecisionState) -> StepResult:
    """spec.strategy.canary.analysis: judged all along while the canary takes traffic."""
    st = ctx.st
    background = _strategy(ctx).analysis
    steps = _strategy(ctx).steps
    index = st.current_step_index or 0
    if background is None:
        return IN_PROGRESS
    if st.phase == Phase.PAUSED and ctx.pause_reason != PauseReason.PAUSE_STEP:
        # Paused by a step's analysis or its unavailability: one verdict at a time.
        return IN_PROGRESS
    if index < background.start_step or reached_weight(steps, index) == 0:
        return IN_PROGRESS
    if index > len(steps):
        return IN_PROGRESS  # the post-promotion analysis is the one verdict now
    started = st.rollout_started_at or ctx.now
    label = "background analysis"
    return run_analysis(ctx, AnalysisKind.BACKGROUND, background, None, started, label).held()


def canary_layout(ctx: DecisionState) -> RolloutLayout:
    """Replicas and traffic for a canary in progress (stable and candidate both set)."""
    st = ctx.st
    stable, candidate = st.stable_revision, st.canary_revision
    assert stable is not None and candidate is not None
    steps = _strategy(ctx).steps
    index = min(st.current_step_index or 0, post_promotion_index(steps))
    reached = reached_weight(steps, index)
    validating = st.phase == Phase.VALIDATING
    if index > len(steps):
        target = ctx.spec.replicas
    elif index == len(steps):
        target = max(ctx.spec.replicas, needed_canary_replicas(ctx, reached))
    else:
        step = steps[index]
        aiming = step.set_weight if step.set_weight is not None else reached
        target = needed_canary_replicas(ctx, aiming or shadowing(steps, index))
    ready = ctx.ready(candidate)
    active = None
    mirrored = shadowing(steps, index)
    if mirrored and index < len(steps):
        # The candidate answers copies only: no live traffic. The replicas router keeps the
        # `<name>` Service on the stable (every ready pod behind it would get a share).
        return RolloutLayout(
            stable_replicas=ctx.spec.replicas,
            candidate_replicas=0 if validating else target,
            traffic=TrafficPlan(
                stable_revision=stable,
                canary_revision=candidate,
                canary_weight=0,
                active_revision=stable if uses_replica_weights(ctx.spec) else None,
                mirror_percent=mirrored if ready > 0 else 0,
            ),
            reported_weight=routed_weight(ctx),
        )
    if index > len(steps):
        # Everything goes to the candidate only while it can take it; else the stable takes it.
        switched = ctx.candidate_holds_all_traffic(routed_weight(ctx))
        weight = 100 if switched else 0
        if uses_replica_weights(ctx.spec):
            active = candidate if switched else stable
    elif uses_replica_weights(ctx.spec):
        weight = effective_weight(ctx.ready(stable), ready)
    else:
        weight = reached if ready > 0 else 0
        at_weight_step = index < len(steps) and steps[index].set_weight is not None
        if at_weight_step and ready >= target and ready > 0:
            weight = steps[index].set_weight or 0  # asked for; the step completes once read back
    traffic = TrafficPlan(
        stable_revision=stable,
        canary_revision=candidate,
        canary_weight=weight,
        active_revision=active,
    )
    return RolloutLayout(
        stable_replicas=ctx.spec.replicas,
        candidate_replicas=0 if validating else target,
        traffic=traffic,
        reported_weight=routed_weight(ctx),
    )


class CanaryRollout(RolloutStrategy):
    """spec.strategy.canary: weights step by step, pauses, analyses, post-promotion window."""

    def applies_to(self, spec: ModelDeploymentSpec) -> bool:
        return spec.strategy.canary is not None

    def step(self, ctx: DecisionState, controls: Controls) -> StepResult:
        return step_canary(ctx, controls)

    def rollout_layout(self, ctx: DecisionState) -> RolloutLayout:
        layout = canary_layout(ctx)
        target = layout.traffic.canary_weight
        _report_routing_change(ctx, target)
        if routed_weight(ctx) not in (None, target):
            # The weight is written with this plan: read it back soon, so that the status
            # reports it (routing objects are watched only for changes by others).
            ctx.requeue_in(ROUTER_RECHECK_SECONDS)
        return layout

    def settled_traffic(self, stable: str | None) -> TrafficPlan:
        return TrafficPlan(stable_revision=stable)

    def keeps_routed_revisions_warm(self, spec: ModelDeploymentSpec) -> bool:
        # The replicas router moves traffic with pod counts: no router object to wait for.
        return not uses_replica_weights(spec)

    def scale_down_delay_seconds(self, spec: ModelDeploymentSpec) -> float:
        return 0.0

    def fast_rollback_step_index(self, spec: ModelDeploymentSpec) -> int:
        canary = spec.strategy.canary
        # Promoting: the candidate scaled to spec.replicas, then promoted.
        return len(canary.steps) if canary is not None else 0


CANARY = CanaryRollout()
