"""Conditions and control tokens: the small rules the state machines rely on."""

from __future__ import annotations

from datetime import timedelta

from modelrollout.api import ConditionStatus, HandledRequests, ModelDeploymentStatus
from modelrollout.core.conditions import set_condition
from modelrollout.core.controls import consume_all, pending_controls
from modelrollout.core.history import history_limit
from tests.unit.builders import T0


def test_transition_time_moves_only_when_the_status_flips() -> None:
    first = set_condition([], "Ready", ConditionStatus.FALSE, "StableUnavailable", "", T0, 1)
    later = T0 + timedelta(minutes=5)
    same = set_condition(first, "Ready", ConditionStatus.FALSE, "Other", "msg", later, 2)
    assert same[0].last_transition_time == T0
    assert (same[0].reason, same[0].message, same[0].observed_generation) == ("Other", "msg", 2)
    flipped = set_condition(same, "Ready", ConditionStatus.TRUE, "StableAvailable", "", later, 2)
    assert flipped[0].last_transition_time == later


def test_conditions_keep_a_stable_order_and_foreign_types() -> None:
    conditions = set_condition([], "Degraded", ConditionStatus.FALSE, "AsExpected", "", T0, 1)
    conditions = set_condition(conditions, "Custom", ConditionStatus.TRUE, "X", "", T0, 1)
    conditions = set_condition(conditions, "Ready", ConditionStatus.TRUE, "Y", "", T0, 1)
    assert [c.type for c in conditions] == ["Ready", "Degraded", "Custom"]


def test_a_token_is_pending_until_recorded_as_handled() -> None:
    status = ModelDeploymentStatus(promote="a", abort="")
    pending = pending_controls(status)
    assert (pending.promote, pending.abort, pending.retry, pending.promote_full) == (
        True,
        False,
        False,
        False,
    )
    handled = consume_all(status)
    assert handled == HandledRequests(promote="a")
    status = status.model_copy(update={"handled_requests": handled})
    assert not pending_controls(status).promote
    status = status.model_copy(update={"promote": "b"})
    assert pending_controls(status).promote


def test_history_limit_is_bounded_by_the_schema() -> None:
    assert history_limit(0) == 5
    assert history_limit(3) == 8
    assert history_limit(20) == 20
