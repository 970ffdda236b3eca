"""Who may act among replicas: the rules of a coordination.k8s.io Lease (pure).

Kopf's peering pauses standby replicas, but it is not a lock: after a partition heals it can
let two replicas act at once for a while (measured: a keep-alive stamped before the heal looks
stale; a replica deletes its own fresh record). So every replica also takes a Lease before it
acts, with the rules of client-go's leader election:

- A replica takes the Lease when nobody holds it, or when the record has not changed for the
  Lease's duration *as this replica has seen it* (its own clock, from when it observed the
  record: no comparison of two machines' clocks).
- The holder acts only while its last renewal began less than `renew_deadline` ago (shorter than
  the duration): a holder cut off from the API server stops acting before anyone else may
  take over.
- Taking and renewing are writes guarded by the record's resourceVersion: of two replicas that
  both saw it expire, one wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


@dataclass(frozen=True)
class LeaseTimes:
    """client-go's defaults: 15 s duration, 10 s renew deadline, 2 s between tries."""

    duration_s: float = 15.0
    renew_deadline_s: float = 10.0
    retry_s: float = 2.0


@dataclass(frozen=True)
class LeaseRecord:
    """What the Lease object says (spec.holderIdentity and the record's resourceVersion)."""

    holder: str | None
    version: str
    duration_s: float


class LeaseAction(StrEnum):
    CREATE = "Create"  # no Lease object yet
    TAKE = "Take"  # free or expired: write ourselves in
    RENEW = "Renew"  # ours: write a new renewTime
    WAIT = "Wait"  # someone else's, and alive


def next_action(me: str, record: LeaseRecord | None, unchanged_for_s: float) -> LeaseAction:
    """What to do with the Lease, given how long this replica has seen the record unchanged."""
    if record is None:
        return LeaseAction.CREATE
    if record.holder == me:
        return LeaseAction.RENEW
    if not record.holder or unchanged_for_s >= record.duration_s:
        return LeaseAction.TAKE
    return LeaseAction.WAIT


def may_act(renewed_at: float | None, now: float, times: LeaseTimes) -> bool:
    """Whether the holder may still act: its last successful renewal began within the deadline."""
    return renewed_at is not None and now - renewed_at < times.renew_deadline_s
