"""Two operator instances with Kopf peering: only the higher priority acts; when it leaves, the
other takes over."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.integration.operator_process import (
    Operator,
    apply_and_settle,
    canary_md,
    control,
    events,
    healthy_on,
    in_phase,
    install_crds,
    roll_to,
    status,
    wait_for,
)
from tests.testenv.controlplane import ControlPlane

NAME = "peered"
CRDS_DIR = Path(__file__).parent / "crds"


@pytest.fixture(scope="module")
def peering_crd(control_plane: ControlPlane) -> None:
    install_crds(control_plane, CRDS_DIR / "kopfpeering.yaml", "kopfpeerings.kopf.dev")


@contextmanager
def high_and_standby(
    cp: ControlPlane, ns: str, log_dir: Path
) -> Iterator[tuple[Operator, Operator]]:
    """Two peered operators, the high-priority one active and a standby, both running."""
    cp.kubectl(
        "apply", "-n", ns, "-f", "-",
        input='{"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "md"}}',
    )  # fmt: skip
    with (
        Operator(cp, ns, log_dir, "--peering", "md", "--priority", "100", instance="high") as high,
        Operator(cp, ns, log_dir, "--peering", "md", "--priority", "50", instance="low") as low,
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
        posted = {event.get("reportingInstance") for event in events(cp, ns, NAME)}
        assert posted == {"high"}, posted
        assert "Resuming" not in low.log()

        # A graceful exit removes its peering record: the other resumes and takes over.
        high.signal(signal.SIGTERM)
        wait_for("the low-priority operator resumes", lambda: "Resuming" in low.log())
        before = {event["metadata"]["name"] for event in events(cp, ns, NAME)}
        r3 = roll_to(cp, ns, v1, "3")
        wait_for("v3 Healthy", lambda: healthy_on(cp, ns, NAME, r3))
        later = {
            event.get("reportingInstance")
            for event in events(cp, ns, NAME)
            if event["metadata"]["name"] not in before
        }
        assert later == {"low"}, later


@pytest.mark.timeout(600)
def test_the_standby_finishes_a_rollout_after_the_active_operator_is_sigkilled(
    crd: str, peering_crd: None, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    """No goodbye from a killed operator: the standby resumes once the dead peer's record is
    older than its lifetime (Kopf's peering, 60 s), then finishes with the same outcome."""
    cp, ns = control_plane, namespace
    with high_and_standby(cp, ns, tmp_path) as (high, low):
        steps = [{"setWeight": 50}, {"pause": {}}, {"setWeight": 80}]
        v1 = canary_md(NAME, "1", steps)
        apply_and_settle(cp, ns, v1)
        r2 = roll_to(cp, ns, v1, "2")
        wait_for("v2 paused at 50 %", lambda: in_phase(cp, ns, NAME, "Paused"))
        high.kill()
        killed = time.monotonic()
        wait_for("the standby resumes", lambda: "Resuming" in low.log(), timeout=150)
        print(f"takeover after SIGKILL: {time.monotonic() - killed:.1f} s")
        control(cp, ns, NAME, "promote", "after-takeover")
        wait_for("v2 Healthy", lambda: healthy_on(cp, ns, NAME, r2))
        latest = status(cp, ns, NAME)["history"][0]
        assert (latest["revision"], latest["outcome"]) == (r2, "Promoted")
        acted = {
            e.get("reportingInstance")
            for e in events(cp, ns, NAME)
            if e["reason"] == "StepPromoted"
        }
        assert acted == {"low"}, acted
