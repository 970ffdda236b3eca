"""The manual controls: their names, the status field each sets, and when one can act.

One table for the operator (which consumes the tokens), the kubectl plugin and the Argo CD
actions (which send them). A control is a request token in a status field (see api/status.py);
pause and resume are spec.paused instead.
"""

from __future__ import annotations

from enum import StrEnum

from modelrollout.api.status import ModelDeploymentStatus, Phase


class Control(StrEnum):
    """A control as people name it (`kubectl modelrollout promote --full` is promote-full)."""

    PROMOTE = "promote"
    PROMOTE_FULL = "promote-full"
    ABORT = "abort"
    RETRY = "retry"


# The ModelDeploymentStatus field (and HandledRequests field) each control's token goes to.
CONTROL_FIELDS: dict[Control, str] = {
    Control.PROMOTE: "promote",
    Control.PROMOTE_FULL: "promote_full",
    Control.ABORT: "abort",
    Control.RETRY: "retry",
}

# Why an abort cannot act (the operator posts it as an AbortIgnored event, the plugin refuses).
NO_STABLE_TO_ABORT_TO = "abort: there is no stable revision to return to"

# A rollout is in flight in these phases: promote and abort act on it.
IN_FLIGHT_PHASES = frozenset({Phase.PENDING, Phase.VALIDATING, Phase.PROGRESSING, Phase.PAUSED})


def status_key(control: Control) -> str:
    """The control's field as it is spelled on the wire (camelCase)."""
    field = ModelDeploymentStatus.model_fields[CONTROL_FIELDS[control]]
    return field.alias or CONTROL_FIELDS[control]


def is_aborted(status: ModelDeploymentStatus) -> bool:
    """The current candidate was aborted or rolled back: only `retry` brings it back."""
    return status.aborted_revision is not None and status.aborted_revision == (
        status.canary_revision
    )


def refusal(control: Control, status: ModelDeploymentStatus) -> str | None:
    """Why `control` would do nothing on an object in this status now (None: it can act)."""
    phase = status.phase.value if status.phase is not None else "unknown"
    if control is Control.RETRY:
        if not is_aborted(status):
            return f"retry applies after a rollback or abort (phase Degraded), phase is {phase}"
        return None
    in_flight = status.phase in IN_FLIGHT_PHASES and bool(status.canary_revision)
    if not in_flight:
        return f"no rollout in progress (phase {phase}): nothing to {control.value}"
    if control is Control.ABORT and status.stable_revision is None:
        return NO_STABLE_TO_ABORT_TO
    return None
