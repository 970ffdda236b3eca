"""The blue/green state machine: preview, pre-promotion analysis, switch, post-promotion analysis.

Stages live in status.currentStepIndex: 0 preview (pods and pre-promotion analysis), 1 awaiting
promotion (manual, or autoPromotionSeconds), 2 switching (the candidate scaled to spec.replicas,
then `<name>` selects it), 3 post-promotion analysis (a failure switches back to the stable, which
is still up). The old revision is scaled down scaleDownDelaySeconds after promotion.

BLUE_GREEN is this module as a strategy.RolloutStrategy (registered in core/strategy_registry.py).
"""

from __future__ import annotations

from modelrollout.api import (
    AnalysisKind,
    BlueGreenStrategy,
    ModelDeploymentSpec,
    PauseReason,
    Phase,
    parse_duration,
)
from modelrollout.core.controls import Controls
from modelrollout.core.decision_state import DecisionState
from modelrollout.core.gates import AnalysisGate, Gate, before_traffic, run_analysis, wait_for_pods
from modelrollout.core.plan import TrafficPlan
from modelrollout.core.step_outcome import IN_PROGRESS, PROMOTED, StepOutcome, StepResult
from modelrollout.core.strategy import RolloutLayout, RolloutStrategy

# The stages, kept in status.currentStepIndex.
BG_PREVIEW, BG_AWAITING, BG_SWITCHING, BG_POST = 0, 1, 2, 3

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


def step_blue_green(ctx: DecisionState, controls: Controls) -> StepResult:
    """Advance the blue/green rollout as far as the observation allows."""
    st = ctx.st
    stage = min(st.current_step_index or 0, BG_POST)
    requested: str | None = None
    if controls.promote_full or controls.promote:
        if stage == BG_POST:
            ctx.event("Normal", "PostPromotionSkipped", "promote: post-promotion analysis skipped")
            return StepResult(
                StepOutcome.PROMOTED,
                promotion_reason="promoted by request (post-promotion analysis skipped)",
            )
        if stage < BG_SWITCHING:
            ctx.event("Normal", "PromoteRequested", "promote: switching to the preview")
            requested = "promoted by request"
            stage = _enter(ctx, BG_SWITCHING)
    st.current_step_index = stage
    stop = before_traffic(ctx)
    if stop is not None:
        return stop
    result = _run_stages(ctx, stage)
    return result if requested is None else result.promoted_for(requested)


def _run_stages(ctx: DecisionState, stage: int) -> StepResult:
    st = ctx.st
    strategy = _strategy(ctx)
    ready = ctx.ready(st.canary_revision)
    while True:
        if stage == BG_PREVIEW:
            needed = preview_replicas(ctx)
            if ready < needed:
                return wait_for_pods(ctx, _STAGE_NAMES[stage], ready, needed)
            shadow = strategy.shadow
            if shadow is not None and not _shadow_done(ctx, shadow.duration):
                ctx.set_phase(
                    Phase.PROGRESSING,
                    f"preview: {shadow.percent}% of live requests mirrored to it for "
                    f"{shadow.duration}",
                    "Shadow",
                )
                return IN_PROGRESS
            if strategy.pre_promotion_analysis is not None:
                checked = _analysis_stage(ctx, AnalysisKind.PRE_PROMOTION, stage)
                if checked.gate != Gate.PASSED:
                    return checked.held()
            ctx.event("Normal", "PreviewReady", f"preview revision {st.canary_revision} ready")
            stage = _enter(ctx, BG_AWAITING)
            continue
        if stage == BG_AWAITING:
            if not strategy.auto_promotion:
                ctx.pause(
                    PauseReason.AWAITING_PROMOTION, "preview ready: promote to switch traffic"
                )
                return IN_PROGRESS
            delay = strategy.auto_promotion_seconds
            if delay and not ctx.deadline_passed(st.step_started_at, delay):
                ctx.set_phase(
                    Phase.PROGRESSING,
                    f"preview ready: switching automatically after {delay}s",
                    "AutoPromotionDelay",
                )
                return IN_PROGRESS
            stage = _enter(ctx, BG_SWITCHING)
            continue
        if stage == BG_SWITCHING:
            needed = ctx.spec.replicas
            if ready < needed:
                return wait_for_pods(ctx, _STAGE_NAMES[stage], ready, needed)
            ctx.event("Normal", "Switched", f"active Service now selects {st.canary_revision}")
            if strategy.post_promotion_analysis is None:
                return PROMOTED
            stage = _enter(ctx, BG_POST)
            continue
        checked = _analysis_stage(ctx, AnalysisKind.POST_PROMOTION, stage)
        if checked.gate == Gate.PASSED:
            return PROMOTED
        return checked.held()


def _shadow_done(ctx: DecisionState, duration: str) -> bool:
    """The shadow phase counts from the preview stage's start (its pods' startup included)."""
    return ctx.deadline_passed(ctx.st.step_started_at, parse_duration(duration))


def _analysis_stage(ctx: DecisionState, kind: AnalysisKind, stage: int) -> AnalysisGate:
    """The pre- or post-promotion analysis of the stage started at status.stepStartedAt."""
    strategy = _strategy(ctx)
    pre = kind == AnalysisKind.PRE_PROMOTION
    run = strategy.pre_promotion_analysis if pre else strategy.post_promotion_analysis
    label = "pre-promotion" if pre else "post-promotion"
    return run_analysis(ctx, kind, run, stage, ctx.st.step_started_at or ctx.now, label)


def blue_green_layout(ctx: DecisionState) -> RolloutLayout:
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
    switched = stage == BG_POST and ctx.candidate_holds_all_traffic()
    shadow = _strategy(ctx).shadow
    mirrored = shadow is not None and stage < BG_SWITCHING and ctx.ready(candidate) > 0
    traffic = TrafficPlan(
        stable_revision=stable,
        canary_revision=candidate,
        canary_weight=100 if switched else 0,
        active_revision=candidate if switched else stable,
        preview_revision=candidate,
        mirror_percent=shadow.percent if shadow is not None and mirrored else 0,
    )
    return RolloutLayout(
        stable_replicas=ctx.spec.replicas, candidate_replicas=target, traffic=traffic
    )


class BlueGreenRollout(RolloutStrategy):
    """spec.strategy.blueGreen: a preview next to the stable, then all traffic at once."""

    def applies_to(self, spec: ModelDeploymentSpec) -> bool:
        return spec.strategy.blue_green is not None

    def step(self, ctx: DecisionState, controls: Controls) -> StepResult:
        return step_blue_green(ctx, controls)

    def rollout_layout(self, ctx: DecisionState) -> RolloutLayout:
        return blue_green_layout(ctx)

    def settled_traffic(self, stable: str | None) -> TrafficPlan:
        # `<name>` (active) and `<name>-preview` both select the stable.
        return TrafficPlan(stable_revision=stable, active_revision=stable, preview_revision=stable)

    def keeps_routed_revisions_warm(self, spec: ModelDeploymentSpec) -> bool:
        return True  # the switch is a routing change (Service selector, router), never pod counts

    def scale_down_delay_seconds(self, spec: ModelDeploymentSpec) -> float:
        blue_green = spec.strategy.blue_green
        return float(blue_green.scale_down_delay_seconds) if blue_green is not None else 0.0

    def fast_rollback_step_index(self, spec: ModelDeploymentSpec) -> int:
        return BG_SWITCHING  # scaled to spec.replicas, then switched


BLUE_GREEN = BlueGreenRollout()
