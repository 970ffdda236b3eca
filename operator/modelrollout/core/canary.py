"""The canary state machine: steps setWeight, pause (timed or manual) and analysis.

Replicas router: the stable keeps spec.replicas; the canary's replicas approximate the weight
(routing.canary_replicas_for_weight) and the reported weight comes from READY pods.
Exact routers (gatewayAPI, istio, nginx): the canary runs at spec.replicas from its first step, so
a weight change never waits for pods and an abort never lacks capacity; the router gets the step's
weight once the canary is ready.
"""

from __future__ import annotations

from modelrollout.api import CanaryStep, CanaryStrategy, Outcome, Phase, parse_duration
from modelrollout.core.context import Context
from modelrollout.core.controls import Controls
from modelrollout.core.gates import Gate, before_traffic, pause, run_analysis, wait_for_pods
from modelrollout.core.plan import AnalysisKind, TrafficPlan
from modelrollout.core.routing import (
    canary_replicas_for_weight,
    effective_weight,
    uses_replica_weights,
)
from modelrollout.core.steps import Step
from modelrollout.core.transitions import abort_candidate


def _describe(step: CanaryStep) -> str:
    if step.set_weight is not None:
        return f"setWeight {step.set_weight}"
    if step.pause is not None:
        return f"pause {step.pause.duration}" if step.pause.duration else "pause"
    return "analysis"


def reached_weight(steps: list[CanaryStep], index: int) -> int:
    """The weight of the last setWeight step before `index` (weights never decrease)."""
    weights = [s.set_weight for s in steps[:index] if s.set_weight is not None]
    return weights[-1] if weights else 0


def _strategy(ctx: Context) -> CanaryStrategy:
    canary = ctx.spec.strategy.canary
    assert canary is not None
    return canary


def needed_canary_replicas(ctx: Context, weight: int) -> int:
    replicas = ctx.spec.replicas
    if not uses_replica_weights(ctx.spec) or weight >= 100:
        return replicas
    return canary_replicas_for_weight(replicas, weight)


def _advance(ctx: Context, index: int, total: int, step: CanaryStep) -> int:
    ctx.st.current_step_index = index + 1
    ctx.st.step_started_at = ctx.now
    ctx.event("Normal", "StepCompleted", f"step {index + 1}/{total} ({_describe(step)}) completed")
    return index + 1


def step_canary(ctx: Context, controls: Controls) -> Step:
    """Advance the canary as far as the observation allows."""
    st = ctx.st
    steps = _strategy(ctx).steps
    total = len(steps)
    index = min(st.current_step_index or 0, total)
    if controls.promote_full and index < total:
        ctx.event("Normal", "PromoteFull", "promoteFull: remaining steps skipped")
        ctx.promotion_reason = "promoteFull requested"
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
    if result == Step.IN_PROGRESS:
        result = _background_analysis(ctx)
    return result


def _run_steps(ctx: Context, steps: list[CanaryStep], index: int) -> Step:
    st = ctx.st
    total = len(steps)
    ready = ctx.ready(st.canary_revision)
    while True:
        if index >= total:
            needed = ctx.spec.replicas
            if ready >= needed:
                return Step.PROMOTED
            return wait_for_pods(ctx, "promoting", ready, needed)
        step = steps[index]
        label = f"step {index + 1}/{total}"
        if step.set_weight is not None:
            needed = needed_canary_replicas(ctx, step.set_weight)
            if ready < needed:
                return wait_for_pods(ctx, f"{label} setWeight {step.set_weight}", ready, needed)
            index = _advance(ctx, index, total, step)
            continue
        if step.pause is not None:
            if step.pause.duration is None:
                pause(ctx, "PauseStep", f"{label}: paused until promoted")
                return Step.IN_PROGRESS
            seconds = parse_duration(step.pause.duration)
            if ctx.deadline_passed(st.step_started_at, seconds):
                index = _advance(ctx, index, total, step)
                continue
            ctx.set_phase(Phase.PROGRESSING, f"{label}: pause {step.pause.duration}", "TimedPause")
            return Step.IN_PROGRESS
        started = st.step_started_at or ctx.now
        gate, why = run_analysis(ctx, AnalysisKind.STEP, step.analysis, index, started, label)
        if gate == Gate.PASSED:
            index = _advance(ctx, index, total, step)
            continue
        if gate == Gate.FAILED:
            abort_candidate(ctx, "AnalysisFailed", f"{label}: {why}", Outcome.ROLLED_BACK)
            return Step.ABORTED
        return Step.IN_PROGRESS


def _background_analysis(ctx: Context) -> Step:
    """spec.strategy.canary.analysis: judged all along while the canary takes traffic."""
    st = ctx.st
    background = _strategy(ctx).analysis
    steps = _strategy(ctx).steps
    index = st.current_step_index or 0
    if background is None or ctx.analysis_due is not None:
        return Step.IN_PROGRESS
    if st.phase == Phase.PAUSED and ctx.pause_reason != "PauseStep":
        # Paused by a step's analysis or its unavailability: one verdict at a time.
        return Step.IN_PROGRESS
    if index < background.start_step or reached_weight(steps, index) == 0:
        return Step.IN_PROGRESS
    started = st.rollout_started_at or ctx.now
    gate, why = run_analysis(ctx, AnalysisKind.BACKGROUND, background, None, started, "background")
    if gate == Gate.FAILED:
        abort_candidate(ctx, "AnalysisFailed", f"background analysis: {why}", Outcome.ROLLED_BACK)
        return Step.ABORTED
    return Step.IN_PROGRESS


def canary_layout(ctx: Context) -> None:
    """Replicas and traffic for a canary in progress (stable and candidate both set)."""
    st = ctx.st
    stable, candidate = st.stable_revision, st.canary_revision
    assert stable is not None and candidate is not None
    steps = _strategy(ctx).steps
    index = min(st.current_step_index or 0, len(steps))
    reached = reached_weight(steps, index)
    validating = st.phase == Phase.VALIDATING
    if index >= len(steps):
        target = max(ctx.spec.replicas, needed_canary_replicas(ctx, reached))
    else:
        step = steps[index]
        aiming = step.set_weight if step.set_weight is not None else reached
        target = needed_canary_replicas(ctx, aiming)
    ctx.desired[stable] = ctx.spec.replicas
    ctx.desired[candidate] = 0 if validating else target
    ready = ctx.ready(candidate)
    if uses_replica_weights(ctx.spec):
        weight = effective_weight(ctx.ready(stable), ready)
    else:
        weight = reached if ready > 0 else 0
    st.canary_weight = weight
    ctx.traffic = TrafficPlan(
        stable_revision=stable, canary_revision=candidate, canary_weight=weight
    )
