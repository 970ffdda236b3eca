"""Two operator instances with Kopf peering: only the higher priority acts; when it leaves (or is
cut off from the API server), the other takes over."""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.integration.operator_process import (
    Operator,
    apply_and_settle,
    canary_md,
    control,
    deployments,
    events,
    healthy_on,
    in_phase,
    install_crds,
    kubectl_json,
    roll_to,
    selectors,
    status,
    wait_for,
)
from tests.testenv.controlplane import ControlPlane
from tests.testenv.netns import IsolatedNetwork

NAME = "peered"
CRDS_DIR = Path(__file__).parent / "crds"
# Kopf's log line for a failed request (it retries) of a peering keep-alive.
KEEPALIVE_FAILED = re.compile(r"Request attempt #[\d/]+ failed; .*: PATCH \S+/kopfpeerings/md ")


@pytest.fixture(scope="module")
def peering_crd(control_plane: ControlPlane) -> None:
    install_crds(control_plane, CRDS_DIR / "kopfpeering.yaml", "kopfpeerings.kopf.dev")


@contextmanager
def high_and_standby(
    cp: ControlPlane, ns: str, log_dir: Path, launcher: Sequence[str] = ()
) -> Iterator[tuple[Operator, Operator]]:
    """Two peered operators, the high-priority one active and a standby, both running; the high
    one runs under `launcher` (e.g. in an IsolatedNetwork)."""
    cp.kubectl(
        "apply", "-n", ns, "-f", "-",
        input='{"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "md"}}',
    )  # fmt: skip
    peered = ("--peering", "md", "--priority")
    with (
        Operator(cp, ns, log_dir, *peered, "100", instance="high", launcher=launcher) as high,
        Operator(cp, ns, log_dir, *peered, "50", instance="low") as low,
    ):
        # Peered operators start paused and resume when they see no peer of higher or equal
        # priority. Two starting at the same instant may both resume for a moment before they
        # see each other (Kopf has no lease), so the second one starts once the first is active.
        high.start()
        wait_for("the high-priority operator resumes", lambda: "Resuming" in high.log())
        low.start()
        wait_for("the low one is up", lambda: "authentication has finished" in low.log())
        yield high, low


@pytest.mark.timeout(600)
def test_two_peered_operators_never_both_act(
    crd: str, peering_crd: None, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cp, ns = control_plane, namespace
    with high_and_standby(cp, ns, tmp_path) as (high, low):
        v1 = canary_md(NAME, "1", [{"setWeight": 50}, {"pause": {"duration": "1s"}}])
        apply_and_settle(cp, ns, v1)
        r2 = roll_to(cp, ns, v1, "2")
        wait_for("v2 Healthy", lambda: healthy_on(cp, ns, NAME, r2))
        posted = posted_by(cp, ns)
        assert posted == {"high"}, posted
        assert "Resuming" not in low.log()

        # A graceful exit removes its peering record: the other resumes and takes over.
        high.signal(signal.SIGTERM)
        wait_for("the low-priority operator resumes", lambda: "Resuming" in low.log())
        before = event_names(cp, ns)
        r3 = roll_to(cp, ns, v1, "3")
        wait_for("v3 Healthy", lambda: healthy_on(cp, ns, NAME, r3))
        later = posted_by(cp, ns, lambda e: e["metadata"]["name"] not in before)
        assert later == {"low"}, later


def posted_by(
    cp: ControlPlane, ns: str, which: Callable[[dict[str, Any]], bool] = lambda event: True
) -> set[str | None]:
    """Who posted the ModelDeployment's events that `which` selects (reportingInstance)."""
    return {event.get("reportingInstance") for event in events(cp, ns, NAME) if which(event)}


def event_names(cp: ControlPlane, ns: str) -> set[str]:
    return {event["metadata"]["name"] for event in events(cp, ns, NAME)}


def paused_at_half(cp: ControlPlane, ns: str) -> tuple[dict[str, Any], str]:
    """v1 settled, then v2 rolled out and paused (indefinitely) at 50 % by the high-priority
    operator, its events posted (it is idle); returns (v1, r2)."""
    v1 = canary_md(NAME, "1", [{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}])
    apply_and_settle(cp, ns, v1)
    r2 = roll_to(cp, ns, v1, "2")
    wait_for("v2 paused at 50 %", lambda: in_phase(cp, ns, NAME, "Paused"))
    wait_for("its Paused event", lambda: posted_by(cp, ns, lambda e: e["reason"] == "Paused"))
    assert posted_by(cp, ns) == {"high"}
    return v1, r2


def standby_promotes(cp: ControlPlane, ns: str, low: Operator, r2: str, lost: str) -> None:
    """The standby resumes after the active operator was `lost` (printing how long it took), then
    carries out a promotion of the paused v2 by itself."""
    since = time.monotonic()
    wait_for("the standby resumes", lambda: "Resuming" in low.log(), timeout=150)
    print(f"takeover after {lost}: {time.monotonic() - since:.1f} s")
    control(cp, ns, NAME, "promote", "after-takeover")
    wait_for("v2 Healthy", lambda: healthy_on(cp, ns, NAME, r2))
    latest = status(cp, ns, NAME)["history"][0]
    assert (latest["revision"], latest["outcome"]) == (r2, "Promoted")
    acted = posted_by(cp, ns, lambda e: e["reason"] == "StepPromoted")
    assert acted == {"low"}, acted


@pytest.mark.timeout(600)
def test_the_standby_finishes_a_rollout_after_the_active_operator_is_sigkilled(
    crd: str, peering_crd: None, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """No goodbye from a killed operator: the standby resumes once the dead peer's record is
    older than its lifetime (Kopf's peering, 60 s), then finishes with the same outcome."""
    cp, ns = control_plane, namespace
    with high_and_standby(cp, ns, tmp_path) as (high, low):
        _, r2 = paused_at_half(cp, ns)
        high.kill()
        standby_promotes(cp, ns, low, r2, "SIGKILL")


def decided(cp: ControlPlane, ns: str) -> tuple[Any, ...]:
    """What the operators decided and carried out: the status without what only reports the pods
    (conditions, ready counts), the Deployments' replicas and the Services' selectors."""
    st = status(cp, ns, NAME)
    keys = ("phase", "stableRevision", "canaryRevision", "canaryWeight", "history", "promotedAt")
    return {k: st.get(k) for k in keys}, deployments(cp, ns, NAME), selectors(cp, ns, NAME)


def paused(op: Operator) -> bool:
    """Whether the operator's latest peering decision in its log is to pause (Kopf logs "Pausing
    operations in favour of [...]" on seeing a live peer of higher priority)."""
    log = op.log()
    return log.rfind("Pausing operations in favour of") > log.rfind("Resuming operations")


def kept_alive_since(cp: ControlPlane, ns: str, priority: int, since: dt.datetime) -> bool:
    """Whether the peer of `priority` has a keep-alive in the peering object stamped after `since`
    (a request that it sent then, not one retried from before)."""
    peers = kubectl_json(cp, "get", "kopfpeering", "md", "-n", ns).get("status") or {}
    return any(
        peer["priority"] == priority and dt.datetime.fromisoformat(peer["lastseen"]) > since
        for peer in peers.values()
    )


@pytest.mark.timeout(600)
def test_an_active_operator_partitioned_from_the_api_server_comes_back_to_fresh_state(
    crd: str, peering_crd: None, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """Partitioned rather than dead: the active operator keeps running, but what it sends to the
    API server is dropped (connections hang). For the standby that is a silent peer: it takes
    over once the peer's record expires, as after a SIGKILL, and promotes. When the partition
    heals, the returning operator (higher priority) pauses the standby again, undoes nothing it
    did, and carries out the next rollout from fresh state, not from what it saw before."""
    cp, ns = control_plane, namespace
    port = urlsplit(cp.server).port
    assert port is not None, cp.server
    with IsolatedNetwork(tmp_path) as net:
        net.forward(port)
        with high_and_standby(cp, ns, tmp_path, launcher=net.argv([])) as (high, low):
            v1, r2 = paused_at_half(cp, ns)
            before_cut, cut_at = event_names(cp, ns), len(high.log())
            net.cut()
            cut = time.monotonic()
            standby_promotes(cp, ns, low, r2, "the partition")
            promoted = decided(cp, ns)

            # Cut off, not crashed: its keep-alive to the peering fails, and it keeps running.
            wait_for(
                "a failed keep-alive of the cut off operator",
                lambda: KEEPALIVE_FAILED.search(high.log()[cut_at:]),
            )
            assert high.proc is not None and high.proc.poll() is None, high.log()[-5000:]

            low_log = len(low.log())
            net.heal()
            healed, healed_at = time.monotonic(), dt.datetime.now(dt.UTC)
            print(f"partition: {healed - cut:.1f} s")
            wait_for(
                "the standby pauses again",
                lambda: "Pausing operations in favour of" in low.log()[low_log:],
                timeout=150,
            )
            print(f"standby paused after heal: {time.monotonic() - healed:.1f} s")
            # The keep-alive that paused it was stamped before the heal, and the returning
            # operator may still act on peering events from before it (Kopf removes the records
            # it sees expired, its own included): the standby can resume again until a keep-alive
            # sent after the heal is in. From then on it stays paused.
            wait_for(
                "a keep-alive of the returning operator sent after the heal, the standby paused",
                lambda: kept_alive_since(cp, ns, 100, healed_at) and paused(low),
                timeout=150,
            )
            again = low.log()[low_log:].count("Resuming operations")
            print(
                f"returning operator kept alive after heal: {time.monotonic() - healed:.1f} s; "
                f"the standby resumed again {again} time(s) in between"
            )

            # Nothing the standby did was undone, and nothing of the cut off operator landed.
            assert decided(cp, ns) == promoted
            latest = status(cp, ns, NAME)["history"][0]
            assert (latest["revision"], latest["outcome"]) == (r2, "Promoted")
            since_cut = posted_by(cp, ns, lambda e: e["metadata"]["name"] not in before_cut)
            assert since_cut == {"low"}, since_cut

            before = event_names(cp, ns)
            r3 = roll_to(cp, ns, v1, "3")
            wait_for("v3 paused at 50 %", lambda: in_phase(cp, ns, NAME, "Paused"))
            control(cp, ns, NAME, "promote", "v3")
            wait_for("v3 Healthy", lambda: healthy_on(cp, ns, NAME, r3))
            later = posted_by(cp, ns, lambda e: e["metadata"]["name"] not in before)
            assert later == {"high"}, later
            assert paused(low)


def lease_holder(cp: ControlPlane, ns: str, name: str) -> str | None:
    out = cp.kubectl("get", "lease", name, "-n", ns, "--ignore-not-found", "-o", "json").stdout
    return (json.loads(out).get("spec") or {}).get("holderIdentity") if out.strip() else None


@pytest.mark.timeout(600)
def test_the_lease_alone_lets_one_of_two_running_operators_act(
    crd: str, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """The fence without Kopf's peering: two operators that both handle every event (standalone),
    one Lease. Only its holder acts; when the holder is SIGKILLed, the other takes the Lease once
    the record has been unchanged for its duration (15 s) and finishes the rollout."""
    cp, ns = control_plane, namespace
    fenced = ("--standalone", "--lease", "fence")
    with (
        Operator(cp, ns, tmp_path, *fenced, instance="high") as high,
        Operator(cp, ns, tmp_path, *fenced, instance="low") as low,
    ):
        high.start()
        v1 = canary_md(NAME, "1", [{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}])
        apply_and_settle(cp, ns, v1)
        assert lease_holder(cp, ns, "fence") == "high"
        low.start()
        wait_for("the second operator is up", lambda: "authentication has finished" in low.log())
        r2 = roll_to(cp, ns, v1, "2")
        wait_for("v2 paused at 50 %", lambda: in_phase(cp, ns, NAME, "Paused"))
        wait_for("its Paused event", lambda: posted_by(cp, ns, lambda e: e["reason"] == "Paused"))
        # Both saw every change; only the holder acted (the shell logs "<ns>/<name>: ...").
        assert posted_by(cp, ns) == {"high"}
        assert f"{ns}/{NAME}:" in high.log() and f"{ns}/{NAME}:" not in low.log()

        high.kill()
        since = time.monotonic()
        wait_for("the other takes the Lease", lambda: lease_holder(cp, ns, "fence") == "low")
        print(f"Lease taken over after SIGKILL: {time.monotonic() - since:.1f} s")
        control(cp, ns, NAME, "promote", "after-takeover")
        wait_for("v2 Healthy", lambda: healthy_on(cp, ns, NAME, r2))
        assert posted_by(cp, ns, lambda e: e["reason"] == "StepPromoted") == {"low"}
