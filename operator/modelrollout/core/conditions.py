"""Kubernetes-style conditions: lastTransitionTime changes only when the status changes."""

from __future__ import annotations

from datetime import datetime

from modelrollout.api import Condition, ConditionStatus

READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"


def set_condition(
    conditions: list[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> list[Condition]:
    """`conditions` with `type_` set; its transition time kept unless the status flips."""
    previous = next((c for c in conditions if c.type == type_), None)
    changed = previous is None or previous.status != status
    since = now if changed or previous is None else previous.last_transition_time or now
    updated = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:1024],
        last_transition_time=since,
        observed_generation=generation,
    )
    out = [c for c in conditions if c.type != type_]
    out.append(updated)
    order = {READY: 0, PROGRESSING: 1, DEGRADED: 2}
    return sorted(out, key=lambda c: (order.get(c.type, 3), c.type))


def find(conditions: list[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)
