"""Control requests (promote, promoteFull, abort, retry): tokens that act once each.

A request is pending when status.<field> is a non-empty token different from
status.handledRequests.<field>. Every pending token is consumed by the decision that first sees
it (recorded as handled), whether or not it applied, so an old token never acts later.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelrollout.api import HandledRequests, ModelDeploymentStatus
from modelrollout.api.controls import CONTROL_FIELDS as FIELD_OF

# The status fields that hold control tokens (python names), from the one table in api.
CONTROL_FIELDS = tuple(FIELD_OF.values())


@dataclass(frozen=True)
class Controls:
    promote: bool
    promote_full: bool
    abort: bool
    retry: bool


def pending_controls(status: ModelDeploymentStatus) -> Controls:
    handled = status.handled_requests

    def pending(field: str) -> bool:
        token = getattr(status, field)
        return bool(token) and token != getattr(handled, field)

    return Controls(
        promote=pending("promote"),
        promote_full=pending("promote_full"),
        abort=pending("abort"),
        retry=pending("retry"),
    )


def consume_all(status: ModelDeploymentStatus) -> HandledRequests:
    """handledRequests with every current token recorded as handled."""
    handled = status.handled_requests.model_copy()
    for field in CONTROL_FIELDS:
        token = getattr(status, field)
        if token:
            setattr(handled, field, token)
    return handled
