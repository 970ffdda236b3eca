"""Transitions shared by both strategies: start, abort (roll back) and promote a candidate."""

from __future__ import annotations

from datetime import timedelta

from modelrollout.api import Outcome, Phase, parse_duration
from modelrollout.core.conditions import DEGRADED, find
from modelrollout.core.controls import CONTROL_FIELDS, consume_all, pending_controls
from modelrollout.core.decision_state import DecisionState
from modelrollout.core.strategy import RolloutStrategy

# The history's reason for a promotion at the end of a fast rollback (see start_rollout).
FAST_ROLLBACK_REASON = "fast rollback within rollbackWindow"


def within_rollback_window(ctx: DecisionState, revision: str) -> bool:
    """Undo to the previous stable inside spec.rollbackWindow skips the steps (fast rollback)."""
    st = ctx.st
    if ctx.spec.rollback_window is None or st.promoted_at is None:
        return False
    if revision != st.previous_stable_revision:
        return False
    window = timedelta(seconds=parse_duration(ctx.spec.rollback_window))
    return ctx.now < st.promoted_at + window


def supersede_candidate(ctx: DecisionState, why: str) -> None:
    """A candidate the spec no longer names ends in the history (unless it already did)."""
    st = ctx.st
    previous = st.canary_revision
    if previous is None or previous == ctx.revision or st.aborted_revision == previous:
        return
    ctx.add_history(previous, st.canary_model_version or "", Outcome.ABORTED, why)
    ctx.event("Normal", "Superseded", f"revision {previous}: {why}")


def _leave_steps(ctx: DecisionState) -> None:
    """The candidate is on no step and paused for nothing."""
    st = ctx.st
    st.current_step_index = None
    st.step_started_at = None
    st.pause_reason = None
    st.pause_started_at = None


def clear_candidate(ctx: DecisionState) -> None:
    """No candidate any more: its bookkeeping leaves the status."""
    st = ctx.st
    st.canary_revision = None
    st.canary_model_version = None
    st.aborted_revision = None
    st.rollout_started_at = None
    st.canary_weight = 0
    _leave_steps(ctx)


def start_rollout(ctx: DecisionState, strategy: RolloutStrategy, *, retried: bool = False) -> bool:
    """The spec's revision becomes the candidate, from its first step; pending tokens lapse.

    True for a fast rollback (the previous stable again within spec.rollbackWindow): it starts
    at the strategy's fast-rollback step, and a promotion later in this same decision is
    recorded with FAST_ROLLBACK_REASON unless the step gives its own.
    """
    st = ctx.st
    supersede_candidate(ctx, f"superseded by revision {ctx.revision}")
    fast = st.stable_revision is not None and within_rollback_window(ctx, ctx.revision)
    st.canary_revision = ctx.revision
    st.canary_model_version = ctx.spec.model.version
    st.aborted_revision = None
    st.step_started_at = ctx.now
    st.rollout_started_at = ctx.now
    st.pause_reason = None
    st.pause_started_at = None
    st.canary_weight = 0
    if st.validation is not None and st.validation.revision == ctx.revision:
        st.validation = None
    _report_lapsed_requests(ctx, retried)
    st.handled_requests = consume_all(st)
    if fast:
        st.current_step_index = strategy.fast_rollback_step_index(ctx.spec)
        ctx.event(
            "Normal",
            "FastRollback",
            f"revision {ctx.revision} was stable within rollbackWindow: steps skipped",
        )
    else:
        st.current_step_index = 0
    verb = "retrying" if retried else "rolling out"
    ctx.event(
        "Normal",
        "RolloutRetried" if retried else "RolloutStarted",
        f"{verb} revision {ctx.revision} (model version {ctx.spec.model.version})",
    )
    return fast


def _report_lapsed_requests(ctx: DecisionState, retried: bool) -> None:
    """A request pending when a new rollout starts was meant for what came before: it lapses.

    Acting on it could promote (or abort) a revision nobody looked at; saying so lets a person
    who sent it in the moment the spec changed send it again.
    """
    pending = pending_controls(ctx.st)
    for field in CONTROL_FIELDS:
        if not getattr(pending, field) or (retried and field == "retry"):
            continue
        token = getattr(ctx.st, field)
        alias = type(ctx.st).model_fields[field].alias or field
        ctx.event(
            "Warning",
            "RequestLapsed",
            f"{alias} request {token!r} came before revision {ctx.revision} "
            "started rolling out and was not applied to it: send it again if meant for it",
        )


def _in_words(outcome: Outcome) -> str:
    """RolledBack -> "rolled back", for messages people read."""
    return "".join(f" {c.lower()}" if c.isupper() else c for c in outcome.value).strip()


def abort_candidate(ctx: DecisionState, reason: str, message: str, outcome: Outcome) -> None:
    """All traffic back to the stable at once; the candidate is not retried until retry/spec."""
    st = ctx.st
    candidate = st.canary_revision
    if candidate is None:
        return
    st.aborted_revision = candidate
    _leave_steps(ctx)
    ctx.add_history(candidate, st.canary_model_version or "", outcome, f"{reason}: {message}")
    ctx.event("Warning", reason, f"revision {candidate}: {message}")
    ctx.set_phase(Phase.DEGRADED, f"revision {candidate} {_in_words(outcome)}: {message}", reason)
    ctx.degraded_reason = reason


def aborted_reason(ctx: DecisionState) -> str:
    """The reason of an earlier abort, kept in the Degraded condition."""
    degraded = find(ctx.st.conditions, DEGRADED)
    if degraded is not None and degraded.status == "True" and degraded.reason:
        return degraded.reason
    return "Aborted"


def promote_candidate(ctx: DecisionState, how: str) -> None:
    """The candidate becomes the stable; the old stable stays up until traffic has left it."""
    st = ctx.st
    candidate = st.canary_revision
    if candidate is None:
        return
    version = st.canary_model_version or ctx.spec.model.version
    ctx.add_history(candidate, version, Outcome.PROMOTED, how)
    ctx.event(
        "Normal", "Promoted", f"revision {candidate} (model version {version}) promoted: {how}"
    )
    if st.stable_revision is not None and st.stable_revision != candidate:
        st.previous_stable_revision = st.stable_revision
    st.stable_revision = candidate
    st.stable_model_version = version
    st.promoted_at = ctx.now
    clear_candidate(ctx)


def roll_back_promotion(ctx: DecisionState, reason: str, message: str) -> None:
    """The serving revision is taken back after promotion: the previous stable serves again and
    the revision it replaced becomes an aborted candidate (not retried until retry or a new
    spec, which rolls it out through every step again)."""
    st = ctx.st
    bad, previous = st.stable_revision, st.previous_stable_revision
    if bad is None or previous is None:
        return
    bad_version = st.stable_model_version or ""
    promoted = [h for h in st.history if h.revision == previous and h.outcome is Outcome.PROMOTED]
    st.stable_revision = previous
    st.stable_model_version = promoted[0].model_version if promoted else None
    st.previous_stable_revision = None
    st.promoted_at = ctx.now
    st.canary_revision = bad
    st.canary_model_version = bad_version
    st.aborted_revision = bad
    _leave_steps(ctx)
    ctx.add_history(bad, bad_version, Outcome.ROLLED_BACK, f"{reason}: {message}")
    ctx.event("Warning", reason, f"revision {bad}: {message}; traffic back on revision {previous}")
    ctx.set_phase(Phase.DEGRADED, f"revision {bad} rolled back after promotion: {message}", reason)
    ctx.degraded_reason = reason
