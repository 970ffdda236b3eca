"""Holding a rollout on a fault: the shell could not observe or act, so nothing may change.

A fault (a missing routing object, an API error, a Secret that cannot be read, ...) never moves
traffic, scales anything, promotes or rolls back: the plan carries out nothing but the status.
The status says why (message, the Progressing condition's reason). When a rollout is in flight
or wanted (the spec names another revision than the stable) it is paused (pauseReason Fault);
with nothing to roll out, the phase stays as it was. One Warning event per cause, not per retry;
control requests stay pending until the fault is gone. The shell looks again after
FAULT_RECHECK_SECONDS, so the rollout resumes by itself once the cause is gone.
"""

from __future__ import annotations

from modelrollout.api import ConditionStatus, PauseReason, Phase
from modelrollout.core.conditions import PROGRESSING, find, set_condition
from modelrollout.core.decision_state import DecisionState
from modelrollout.core.observation import Fault
from modelrollout.core.plan import Plan, TrafficPlan

# Faults are not watched (a routing object, a Secret): look again this soon.
FAULT_RECHECK_SECONDS = 5.0


def rollout_wanted(ctx: DecisionState) -> bool:
    """A candidate is rolling out, or the spec names a revision that is not the stable yet."""
    st = ctx.st
    rolling = st.canary_revision is not None and st.aborted_revision != st.canary_revision
    starting = ctx.revision not in (st.stable_revision, st.aborted_revision)
    return rolling or starting


def hold(ctx: DecisionState, faults: tuple[Fault, ...]) -> Plan:
    """The plan on a fault: the status says why; nothing else is carried out."""
    st = ctx.st
    fault = faults[0]
    message = fault.message[:1024]
    previous = find(st.conditions, PROGRESSING)
    if previous is None or (previous.reason, previous.message) != (fault.reason, message):
        ctx.event("Warning", fault.reason, message)
    rolling = rollout_wanted(ctx)
    if rolling:
        if st.pause_reason != PauseReason.FAULT or st.pause_started_at is None:
            st.pause_reason = PauseReason.FAULT
            st.pause_started_at = ctx.now
        st.phase = Phase.PAUSED
    st.message = message
    st.observed_generation = ctx.obs.generation
    st.conditions = set_condition(
        st.conditions,
        PROGRESSING,
        ConditionStatus.TRUE if rolling else ConditionStatus.FALSE,
        fault.reason,
        message,
        ctx.now,
        ctx.obs.generation,
    )
    return Plan(
        status=st,
        revisions=(),
        prune=(),
        traffic=TrafficPlan(stable_revision=None),
        events=tuple(ctx.events),
        requeue_after=FAULT_RECHECK_SECONDS,
        revision=ctx.revision,
        hold=True,
    )
