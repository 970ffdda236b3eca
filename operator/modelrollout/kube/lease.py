"""The Lease that lets one replica act at a time (the rules are in core.leadership).

`Leadership.ensure()` is called before each reconcile. It asks the API server at most once per
`retry_s`; in between it answers from what it last learnt. Thread-safe: reconciles run in
worker threads.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from modelrollout.core.leadership import (
    LeaseAction,
    LeaseRecord,
    LeaseTimes,
    may_act,
    next_action,
)
from modelrollout.kube.errors import Conflict, ShellError
from modelrollout.kube.resources import LEASES
from modelrollout.kube.rest import JSON, Kube

log = logging.getLogger(__name__)


def _record(lease: JSON | None) -> LeaseRecord | None:
    if lease is None:
        return None
    spec = lease.get("spec") or {}
    return LeaseRecord(
        holder=spec.get("holderIdentity"),
        version=str(lease["metadata"]["resourceVersion"]),
        duration_s=float(spec.get("leaseDurationSeconds") or LeaseTimes().duration_s),
    )


def _micro_time(now: dt.datetime) -> str:
    return now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Leadership:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        identity: str,
        times: LeaseTimes | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._kube = kube
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.times = times or LeaseTimes()
        self._clock = clock
        self._lock = threading.Lock()
        self._asked_at: float | None = None
        self._renewed_at: float | None = None
        # The record as last seen, and when (this replica's clock) it was first seen so.
        self._seen: tuple[str | None, str] | None = None
        self._seen_since = 0.0
        self._acting = False

    def ensure(self, claim: bool = True) -> bool:
        """Whether this replica may act now, taking or renewing the Lease when it is time.

        claim=False only looks (a replica with nothing to do keeps its view of the record
        fresh, so that it can take over as soon as the record expires once it has work)."""
        with self._lock:
            now = self._clock()
            if self._asked_at is not None and now - self._asked_at < self.times.retry_s:
                return may_act(self._renewed_at, now, self.times)
            self._asked_at = now
            try:
                self._step(now, claim)
            except ShellError as error:
                log.warning("lease %s/%s: %s", self.namespace, self.name, error)
            acting = may_act(self._renewed_at, self._clock(), self.times)
            if acting != self._acting:
                self._acting = acting
                holder = self._seen[0] if self._seen else None
                log.info(
                    "lease %s/%s: %s",
                    self.namespace,
                    self.name,
                    "acting" if acting else f"not acting (holder: {holder})",
                )
            return acting

    def _step(self, now: float, claim: bool) -> None:
        lease = self._kube.get(LEASES, self.namespace, self.name)
        record = _record(lease)
        seen = (record.holder, record.version) if record else None
        if seen != self._seen:
            self._seen, self._seen_since = seen, now
        action = next_action(self.identity, record, now - self._seen_since)
        if action is LeaseAction.WAIT:
            self._renewed_at = None
            return
        if not claim:
            return
        wall = dt.datetime.now(dt.UTC)
        spec: JSON = {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": int(self.times.duration_s),
            "renewTime": _micro_time(wall),
        }
        try:
            if action is LeaseAction.CREATE:
                spec["acquireTime"] = spec["renewTime"]
                self._kube.create(
                    LEASES,
                    self.namespace,
                    {
                        "apiVersion": LEASES.api_version,
                        "kind": LEASES.kind,
                        "metadata": {"name": self.name, "namespace": self.namespace},
                        "spec": spec,
                    },
                )
            else:
                assert record is not None and lease is not None
                if action is LeaseAction.TAKE:
                    spec["acquireTime"] = spec["renewTime"]
                    transitions = int(lease.get("spec", {}).get("leaseTransitions") or 0)
                    spec["leaseTransitions"] = transitions + 1
                    log.info(
                        "lease %s/%s: taken over from %r", self.namespace, self.name, record.holder
                    )
                self._kube.merge_patch(
                    LEASES,
                    self.namespace,
                    self.name,
                    {"metadata": {"resourceVersion": record.version}, "spec": spec},
                )
        except Conflict:
            # Someone else wrote first: look again at the next try.
            self._renewed_at = None
            return
        # The renewal counts from before it was sent: the deadline errs on the safe side.
        self._renewed_at = now
