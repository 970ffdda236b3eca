"""The strategy seam: which strategy a spec gets, what each one tells `decide`, and the
bookkeeping DecisionState keeps for it."""

from __future__ import annotations

from modelrollout.api import ModelDeploymentSpec, ModelDeploymentStatus, PauseReason, Phase
from modelrollout.core.bluegreen import BG_SWITCHING, BLUE_GREEN
from modelrollout.core.canary import CANARY
from modelrollout.core.decision_state import DecisionState
from modelrollout.core.observation import Observation
from modelrollout.core.plan import TrafficPlan
from modelrollout.core.step_outcome import IN_PROGRESS, PROMOTED, StepOutcome, StepResult
from modelrollout.core.strategy_registry import STRATEGIES, strategy_for
from tests.unit.builders import GATEWAY_ROUTING, T0, canary, deployment_spec

STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 60}]


def blue_green(**fields: object) -> ModelDeploymentSpec:
    return deployment_spec(strategy={"blueGreen": fields})


def test_each_spec_gets_the_one_strategy_it_names() -> None:
    specs = {
        CANARY: deployment_spec(strategy=canary(STEPS)),
        BLUE_GREEN: blue_green(),
    }
    for strategy, spec in specs.items():
        assert strategy_for(spec) is strategy
        assert [s for s in STRATEGIES if s.applies_to(spec)] == [strategy]


def test_settled_traffic_puts_everything_on_the_stable() -> None:
    assert CANARY.settled_traffic("s1") == TrafficPlan(stable_revision="s1")
    assert BLUE_GREEN.settled_traffic("s1") == TrafficPlan(
        stable_revision="s1", active_revision="s1", preview_revision="s1"
    )
    assert BLUE_GREEN.settled_traffic(None) == TrafficPlan(stable_revision=None)


def test_only_routed_strategies_keep_revisions_warm() -> None:
    replicas_router = deployment_spec(strategy=canary(STEPS))
    gateway = deployment_spec(strategy=canary(STEPS, routing=GATEWAY_ROUTING))
    assert not CANARY.keeps_routed_revisions_warm(replicas_router)
    assert CANARY.keeps_routed_revisions_warm(gateway)
    assert BLUE_GREEN.keeps_routed_revisions_warm(blue_green())
    assert CANARY.scale_down_delay_seconds(gateway) == 0.0
    assert BLUE_GREEN.scale_down_delay_seconds(blue_green(scaleDownDelaySeconds=45)) == 45.0


def test_a_fast_rollback_starts_where_all_traffic_moves() -> None:
    assert CANARY.fast_rollback_step_index(deployment_spec(strategy=canary(STEPS))) == 3
    assert BLUE_GREEN.fast_rollback_step_index(blue_green()) == BG_SWITCHING


def test_a_reason_found_by_the_steps_wins_over_the_request_that_started_them() -> None:
    assert PROMOTED.promoted_for("promoteFull requested") == StepResult(
        StepOutcome.PROMOTED, promotion_reason="promoteFull requested"
    )
    passed = StepResult(StepOutcome.PROMOTED, promotion_reason="post-promotion analysis passed")
    assert passed.promoted_for("promoteFull requested") == passed
    assert IN_PROGRESS.promoted_for("promoteFull requested") == IN_PROGRESS


def test_phase_changes_record_the_degraded_and_pause_reasons() -> None:
    ctx = DecisionState(
        name="md",
        namespace="ns",
        spec=deployment_spec(),
        obs=Observation(now=T0, generation=1),
        revision="r1",
        evaluate=None,
        st=ModelDeploymentStatus(),
    )
    ctx.pause(PauseReason.PAUSE_STEP, "step 2/3: paused until promoted")
    assert (ctx.st.phase, ctx.pause_reason, ctx.progress_reason) == (
        Phase.PAUSED,
        PauseReason.PAUSE_STEP,
        "PauseStep",
    )
    ctx.set_phase(Phase.DEGRADED, "revision r1 aborted", "AnalysisFailed")
    assert (ctx.st.phase, ctx.degraded_reason, ctx.progress_reason) == (
        Phase.DEGRADED,
        "AnalysisFailed",
        "AnalysisFailed",
    )
    ctx.set_phase(Phase.PROGRESSING, "waiting for pods", "WaitingForPods")
    assert ctx.degraded_reason == "AnalysisFailed"  # kept: read only while Degraded
