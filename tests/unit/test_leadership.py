"""The Lease that lets one replica act at a time: the pure rules, and two replicas on the in-memory
API server with their own clocks (an outage, a partition, a race to take an expired Lease)."""

from __future__ import annotations

from modelrollout.core.leadership import LeaseAction, LeaseRecord, LeaseTimes, may_act, next_action
from modelrollout.kube.errors import KubeUnreachable
from modelrollout.kube.lease import Leadership
from modelrollout.kube.resources import LEASES
from tests.unit.fake_kube import KINDS, FakeKube

TIMES = LeaseTimes(duration_s=15, renew_deadline_s=10, retry_s=2)


def record(holder: str | None) -> LeaseRecord:
    return LeaseRecord(holder=holder, version="7", duration_s=15)


def test_the_rules() -> None:
    assert next_action("a", None, 0) is LeaseAction.CREATE
    assert next_action("a", record("a"), 100) is LeaseAction.RENEW
    assert next_action("a", record(None), 0) is LeaseAction.TAKE
    assert next_action("a", record("b"), 14.9) is LeaseAction.WAIT
    assert next_action("a", record("b"), 15) is LeaseAction.TAKE
    assert may_act(0.0, 9.9, TIMES) and not may_act(0.0, 10.0, TIMES)
    assert not may_act(None, 0.0, TIMES)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def replicas() -> tuple[FakeKube, Clock, Leadership, Leadership]:
    kube = FakeKube((*KINDS, LEASES))
    clock = Clock()
    a = Leadership(kube, "ops", "lease", "a", TIMES, clock)
    b = Leadership(kube, "ops", "lease", "b", TIMES, clock)
    return kube, clock, a, b


def holder(kube: FakeKube) -> str:
    stored = kube.stored(LEASES, "ops", "lease")
    assert stored is not None
    return str(stored["spec"]["holderIdentity"])


def test_one_acts_the_other_waits_and_takes_over_only_after_the_lease_expired() -> None:
    kube, clock, a, b = replicas()
    assert a.ensure() and holder(kube) == "a"
    assert not b.ensure()
    # a goes away without a word; b waits out the Lease's duration on its own clock.
    for _ in range(7):
        clock.now += 2
        assert not b.ensure()
    clock.now += 2  # 16 s since b first saw the record
    assert b.ensure() and holder(kube) == "b"
    assert kube.stored(LEASES, "ops", "lease")["spec"]["leaseTransitions"] == 1  # type: ignore[index]


def test_a_holder_cut_off_stops_acting_before_anyone_may_take_over() -> None:
    kube, clock, a, b = replicas()
    assert a.ensure()
    assert not b.ensure()
    acting_until = None
    for step in range(1, 10):
        clock.now += 2
        kube.fail_next("get", LEASES, KubeUnreachable("partitioned"))
        if a.ensure():
            acting_until = 2 * step
    # a stopped acting within its renew deadline (10 s); b may take over only after 15 s.
    assert acting_until is not None and acting_until < TIMES.renew_deadline_s
    assert holder(kube) == "a"


def test_of_two_that_saw_it_expire_one_takes_it() -> None:
    kube, clock, a, _ = replicas()
    c = Leadership(kube, "ops", "lease", "c", TIMES, clock)
    assert c.ensure()
    assert not a.ensure()
    clock.now += 16
    # a and b both read the expired record; b's write lands first, a's carries a stale version.
    kube.before_next(
        "patch",
        LEASES,
        lambda: kube.edit(LEASES, "ops", "lease", lambda o: o["spec"].update(holderIdentity="b")),
    )
    assert not a.ensure()
    assert holder(kube) == "b"
    assert not a.ensure()  # and a, having lost, does not act before the next look either


def test_a_replica_that_only_looks_never_writes_but_can_take_over_at_once_later() -> None:
    kube, clock, a, b = replicas()
    assert a.ensure()
    for _ in range(8):
        clock.now += 2
        assert not b.ensure(claim=False)
    assert holder(kube) == "a"
    clock.now += 2  # b has seen the record unchanged for 16 s: it takes it on its first claim
    assert b.ensure() and holder(kube) == "b"
