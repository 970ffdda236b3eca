"""Monitoring after promotion (core/monitoring.py), driven through the simulated cluster with the
real outcome policy: one check per interval of the serving revision; healthy, no data, breach;
alert or rollback to the previous revision within rollbackWindow."""

from __future__ import annotations

from typing import Any

from modelrollout.api import (
    AnalysisKind,
    MetricResult,
    MonitoringState,
    Outcome,
    Phase,
    Verdict,
)
from modelrollout.cli.render import status_view
from modelrollout.core.analysis_policy import evaluate
from modelrollout.core.observation import AnalysisMeasurements
from modelrollout.core.plan import Plan
from modelrollout.core.revision import compute_revision
from tests.unit.builders import ERROR_RATE_ANALYSIS as ANALYSIS
from tests.unit.builders import GATEWAY_ROUTING as GATEWAY
from tests.unit.builders import T0
from tests.unit.scripted_rollout import replicas
from tests.unit.simulated_cluster import SimCluster, SimRollout
from tests.unit.test_core_canary import spec

STEPS: list[dict[str, Any]] = [{"setWeight": 50}]
INPUTS = {"name": "inputs", "builtin": "inputDrift", "max": 0.2}
DRIFTED = "psi by feature: amount 0.61, country 0.04 > max 0.2"


def monitored(
    policy: str = "rollback", routing: dict[str, Any] | None = GATEWAY, **monitoring: Any
) -> tuple[SimRollout, str, str, Plan]:
    """Version 1, then version 2 promoted through its step: (rollout, v1, v2, plan). An exact
    router keeps version 1 warm within rollbackWindow (the replicas router cannot)."""
    extra = {
        "analysis": ANALYSIS,
        "rollbackWindow": "1h",
        "monitoring": {"interval": "30s", "policy": policy, "metrics": [INPUTS], **monitoring},
    }
    rollout = SimRollout(
        spec("1", STEPS, routing=routing, **extra), SimCluster(now=T0), evaluate=evaluate
    )
    rollout.cluster.analysis_available = True
    rollout.settle()
    v1 = compute_revision(rollout.spec)
    rollout.change_spec(spec("2", STEPS, routing=routing, **extra))
    plan = rollout.settle()
    v2 = compute_revision(rollout.spec)
    assert plan.status.stable_revision == v2 and plan.status.phase == Phase.HEALTHY
    return rollout, v1, v2, plan


def check(rollout: SimRollout, plan: Plan, verdict: Verdict, message: str = "") -> Plan:
    """Measure the check the plan asks for, as the shell would, with one result."""
    due = plan.analysis_due
    assert due is not None and due.kind is AnalysisKind.MONITORING
    assert due.canary_revision == rollout.status.stable_revision and due.stable_revision is None
    rollout.cluster.now = max(rollout.cluster.now, due.measure_at)
    value = 0.61 if verdict is Verdict.FAILED else 0.02
    result = MetricResult(
        metric="inputs",
        value=None if verdict is Verdict.INCONCLUSIVE else value,
        verdict=verdict,
        measured_at=rollout.cluster.now,
        message=message or verdict.value,
    )
    return rollout.reconcile(AnalysisMeasurements(due.key, rollout.cluster.now, (result,)))


def next_check(rollout: SimRollout) -> Plan:
    """A second later: the next check has started and asks to be measured."""
    rollout.cluster.tick(1)
    return rollout.reconcile()


def condition(plan: Plan) -> tuple[str, str]:
    found = next(c for c in plan.status.conditions if c.type == "ModelHealthy")
    return found.status, found.reason


def test_the_serving_revision_is_checked_every_interval_and_reported() -> None:
    rollout, _, v2, plan = monitored()
    assert plan.status.monitoring is not None
    assert plan.status.monitoring.state is MonitoringState.PENDING
    assert condition(plan) == ("Unknown", "Pending")
    first = plan.analysis_due
    plan = check(rollout, plan, Verdict.SUCCESSFUL)
    assert plan.status.monitoring is not None
    assert plan.status.monitoring.state is MonitoringState.HEALTHY
    assert condition(plan) == ("True", "Healthy")
    plan = next_check(rollout)
    second = plan.analysis_due
    assert first is not None and second is not None and second.key != first.key
    gap = (second.measure_at - first.measure_at).total_seconds()
    assert 25 <= gap <= 60  # about one interval
    assert plan.status.stable_revision == v2 and "MonitoringBreach" not in reasons(plan)


def reasons(plan: Plan) -> list[str]:
    return [e.reason for e in plan.events]


def test_no_data_is_never_healthy() -> None:
    rollout, _, _, plan = monitored()
    plan = check(rollout, plan, Verdict.INCONCLUSIVE, "too few inputs in the window")
    assert plan.status.monitoring is not None
    assert plan.status.monitoring.state is MonitoringState.NO_DATA
    assert condition(plan) == ("Unknown", "NoData")
    assert "too few inputs" in plan.status.monitoring.message


def test_a_breach_with_alert_reports_and_moves_nothing() -> None:
    rollout, _, v2, plan = monitored(policy="alert")
    plan = check(rollout, plan, Verdict.FAILED, DRIFTED)
    [event] = [e for e in plan.events if e.reason == "MonitoringBreach"]
    assert event.type == "Warning" and "amount 0.61" in event.message
    status = rollout.status
    assert status.monitoring is not None and status.monitoring.state is MonitoringState.BREACHED
    assert status.monitoring.breaches == 1
    assert condition(plan)[0] == "False"
    assert "amount 0.61" in status.monitoring.message
    assert status.stable_revision == v2 and status.phase == Phase.HEALTHY
    assert replicas(rollout)[v2] == 4


def test_a_breach_with_rollback_serves_the_previous_revision_again() -> None:
    rollout, v1, v2, plan = monitored()
    due = plan.analysis_due
    assert due is not None
    rollout.cluster.now = due.measure_at
    result = MetricResult(
        metric="inputs", value=0.61, verdict=Verdict.FAILED, measured_at=due.measure_at,
        message=DRIFTED,
    )  # fmt: skip
    plan = rollout.reconcile(AnalysisMeasurements(due.key, due.measure_at, (result,)))
    assert {"MonitoringBreach", "MonitoringFailed"} <= set(reasons(plan))
    st = plan.status
    assert (st.stable_revision, st.canary_revision, st.aborted_revision) == (v1, v2, v2)
    assert st.phase == Phase.DEGRADED and "amount 0.61" in st.message
    assert st.history[0].revision == v2 and st.history[0].outcome == Outcome.ROLLED_BACK
    assert st.stable_model_version == "1"
    assert plan.traffic.stable_revision == v1 and plan.traffic.canary_weight == 0
    rollout.settle()
    assert replicas(rollout) == {v1: 4, v2: 0}
    # The restored revision is monitored from now on.
    plan = rollout.reconcile()
    assert rollout.status.monitoring is not None and rollout.status.monitoring.revision == v1
    # retry rolls the candidate out again, through its steps.
    rollout.request("retry")
    plan = rollout.reconcile()
    assert plan.status.canary_revision == v2 and plan.status.current_step_index == 0


def test_no_rollback_past_the_rollback_window() -> None:
    rollout, _, v2, plan = monitored()
    rollout.cluster.tick(3700)
    plan = check(rollout, rollout.reconcile(), Verdict.FAILED, DRIFTED)
    assert "MonitoringRollbackUnavailable" in reasons(plan)
    status = rollout.status
    assert status.stable_revision == v2
    assert status.monitoring is not None and status.monitoring.state is MonitoringState.BREACHED


def test_with_the_replicas_router_the_previous_revision_is_not_warm_and_nothing_moves() -> None:
    rollout, _, v2, plan = monitored(routing=None)
    plan = check(rollout, plan, Verdict.FAILED, DRIFTED)
    assert rollout.status.stable_revision == v2
    [unavailable] = [e for e in plan.events if e.reason == "MonitoringRollbackUnavailable"]
    assert "0/4 pods ready" in unavailable.message


def test_failures_within_the_limit_are_tolerated() -> None:
    rollout, _, v2, plan = monitored(failureLimit=1)
    check(rollout, plan, Verdict.FAILED, DRIFTED)
    assert rollout.status.stable_revision == v2
    assert rollout.status.monitoring is not None
    assert "failed check 1 of 1 tolerated" in rollout.status.monitoring.message
    check(rollout, next_check(rollout), Verdict.FAILED, DRIFTED)
    assert rollout.status.stable_revision != v2  # the second one in a row rolled back


def test_a_restarted_operator_measures_the_same_check() -> None:
    rollout, _, _, plan = monitored()
    due = plan.analysis_due
    rollout.restart()
    again = rollout.reconcile().analysis_due
    assert due is not None and again is not None and again.key == due.key


def test_without_monitoring_there_is_no_condition() -> None:
    rollout, _, _, plan = monitored()
    rollout.change_spec(rollout.spec.model_copy(update={"monitoring": None}))
    plan = rollout.reconcile()
    assert plan.status.monitoring is None
    assert all(c.type != "ModelHealthy" for c in plan.status.conditions)


def test_kubectl_modelrollout_status_shows_the_checks_and_the_features_that_moved() -> None:
    rollout, _, v2, plan = monitored(policy="alert")
    check(rollout, plan, Verdict.FAILED, DRIFTED)
    text = status_view(rollout.as_object(), rollout.cluster.now)
    assert f"Monitoring: Breached on {v2} for 0s (1 breaches)" in text
    row = next(line for line in text.splitlines() if line.strip().startswith("inputs"))
    assert "0.61" in row and "Failed" in row and "amount 0.61" in row
    assert "ModelHealthy" in text
