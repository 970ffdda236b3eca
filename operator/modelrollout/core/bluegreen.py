"""The blue/green state machine: preview, pre-promotion analysis, switch, post-promotion analysis.

Stages live in status.currentStepIndex: 0 preview (pods and pre-promotion analysis), 1 awaiting
promotion (manual, or autoPromotionSeconds), 2 switching (the candidate scaled to spec.replicas,
then `<name>` selects it), 3 post-promotion analysis (a failure switches back to the stable, which
is still up). The old revision is scaled down scaleDownDelaySeconds after promotion.
"""

from __future__ import annotations

from modelrollout.api import BlueGreenStrategy, PauseReason, Phase
from modelrollout.core.controls import Controls
from modelrollout.core.decision_state import DecisionState
from modelrollout.core.gates import Gate, before_traffic, pause, run_analysis, wait_for_pods
from modelrollout.core.plan import AnalysisKind, TrafficPlan
from modelrollout.core.step_outcome import StepOutcome
from modelrollout.core.transitions import (
    BG_AWAITING,
    BG_POST,
    BG_PREVIEW,
    BG_SWITCHING,
)

_STAGE_NAMES = {
    BG_PREVIEW: "preview",
    BG_AWAITING: "awaiting promotion",
    BG_SWITCHING: "switching",
    BG_POST: "post-promotion analysis",
}


def _strategy(ctx: DecisionState) -> BlueGreenStrategy:
    blue_green = ctx.spec.strategy.blue_green
    assert blue_green is not None
    return blue_green


def preview_replicas(ctx: DecisionState) -> int:
    configured = _strategy(ctx).preview_replicas
    return ctx.spec.replicas if configured is None else configured


def _enter(ctx: DecisionState, stage: int) -> int:
    ctx.st.current_step_index = stage
    ctx.st.step_started_at = ctx.now
    return stage


def step_blue_green(ctx: DecisionState, controls: Controls) -> StepOutcome:
    """Advance the blue/green rollout as far as the observation allows."""
    st = ctx.st
    stage = min(st.current_step_index or 0, BG_POST)
    if controls.promote_full or controls.promote:
        if stage == BG_POST:
            ctx.event("Normal", "PostPromotionSkipped", "promote: post-promotion analysis skipped")
            ctx.promotion_reason = "promoted by request (post-promotion analysis skipped)"
            return StepOutcome.PROMOTED
        if stage < BG_SWITCHING:
            ctx.event("Normal", "PromoteRequested", "promote: switching to the preview")
            ctx.promotion_reason = "promoted by request"
            stage = _enter(ctx, BG_SWITCHING)
    st.current_step_index = stage
    stop = before_traffic(ctx)
    if stop is not None:
        return stop
    return _run_stages(ctx, stage)


def _run_stages(ctx: DecisionState, stage: int) -> StepOutcome:
    st = ctx.st
    strategy = _strategy(ctx)
    ready = ctx.ready(st.canary_revision)
    while True:
        if stage == BG_PREVIEW:
            needed = preview_replicas(ctx)
            if ready < needed:
                return wait_for_pods(ctx, _STAGE_NAMES[stage], ready, needed)
            if strategy.pre_promotion_analysis is not None:
                gate = _analysis_stage(ctx, AnalysisKind.PRE_PROMOTION, stage)
                if gate != Gate.PASSED:
                    return StepOutcome.ABORTED if gate == Gate.FAILED else StepOutcome.IN_PROGRESS
            ctx.event("Normal", "PreviewReady", f"preview revision {st.canary_revision} ready")
            stage = _enter(ctx, BG_AWAITING)
            continue
        if stage == BG_AWAITING:
            if not strategy.auto_promotion:
                pause(
                    ctx, PauseReason.AWAITING_PROMOTION, "preview ready: promote to switch traffic"
                )
                return StepOutcome.IN_PROGRESS
            delay = strategy.auto_promotion_seconds
            if delay and not ctx.deadline_passed(st.step_started_at, delay):
                ctx.set_phase(
                    Phase.PROGRESSING,
                    f"preview ready: switching automatically after {delay}s",
                    "AutoPromotionDelay",
                )
                return StepOutcome.IN_PROGRESS
            stage = _enter(ctx, BG_SWITCHING)
            continue
        if stage == BG_SWITCHING:
            needed = ctx.spec.replicas
            if ready < needed:
                return wait_for_pods(ctx, _STAGE_NAMES[stage], ready, needed)
            ctx.event("Normal", "Switched", f"active Service now selects {st.canary_revision}")
            if strategy.post_promotion_analysis is None:
                return StepOutcome.PROMOTED
            stage = _enter(ctx, BG_POST)
            continue
        gate = _analysis_stage(ctx, AnalysisKind.POST_PROMOTION, stage)
        if gate == Gate.PASSED:
            return StepOutcome.PROMOTED
        return StepOutcome.ABORTED if gate == Gate.FAILED else StepOutcome.IN_PROGRESS


def _analysis_stage(ctx: DecisionState, kind: AnalysisKind, stage: int) -> Gate:
    """The pre- or post-promotion analysis of the stage started at status.stepStartedAt."""
    strategy = _strategy(ctx)
    pre = kind == AnalysisKind.PRE_PROMOTION
    run = strategy.pre_promotion_analysis if pre else strategy.post_promotion_analysis
    label = "pre-promotion" if pre else "post-promotion"
    return run_analysis(ctx, kind, run, stage, ctx.st.step_started_at or ctx.now, label)


def blue_green_layout(ctx: DecisionState) -> None:
    """Replicas and traffic for a blue/green rollout in progress."""
    st = ctx.st
    stable, candidate = st.stable_revision, st.canary_revision
    assert stable is not None and candidate is not None
    stage = min(st.current_step_index or 0, BG_POST)
    validating = st.phase == Phase.VALIDATING
    if validating:
        target = 0
    elif stage >= BG_SWITCHING:
        target = ctx.spec.replicas
    else:
        target = preview_replicas(ctx)
    ctx.desired[stable] = ctx.spec.replicas
    ctx.desired[candidate] = target
    switched = stage == BG_POST and ctx.candidate_holds_all_traffic()
    st.canary_weight = 100 if switched else 0
    ctx.traffic = TrafficPlan(
        stable_revision=stable,
        canary_revision=candidate,
        canary_weight=st.canary_weight,
        active_revision=candidate if switched else stable,
        preview_revision=candidate,
    )
