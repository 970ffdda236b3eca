"""Two operator instances with Kopf peering: only the higher priority acts; when it leaves, the
other takes over."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.integration.operator_process import (
    Operator,
    apply,
    canary_md,
    events,
    install_crds,
    set_version,
    status,
    wait_for,
)
from tests.integration.test_operator_rollout import CRDS_DIR, md_crd, revision, with_version
from tests.testenv.controlplane import ControlPlane

__all__ = ["md_crd"]
NAME = "peered"


@pytest.fixture(scope="module")
def peering_crd(control_plane: ControlPlane) -> None:
    install_crds(control_plane, CRDS_DIR / "kopfpeering.yaml", "kopfpeerings.kopf.dev")


@pytest.mark.timeout(600)
def test_two_peered_operators_never_both_act(
    md_crd: None, peering_crd: None, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    cp, ns = control_plane, namespace
    cp.kubectl(
        "apply", "-n", ns, "-f", "-",
        input='{"apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "md"}}',
    )  # fmt: skip
    high = Operator(cp, ns, tmp_path, "--peering", "md", "--priority", "100", instance="high")
    low = Operator(cp, ns, tmp_path, "--peering", "md", "--priority", "50", instance="low")
    try:
        # Peered operators start paused and resume when they see no peer of higher or equal
        # priority. Two starting at the same instant may both resume for a moment before they
        # see each other (Kopf has no lease), so the second one starts once the first is active.
        high.start()
        wait_for("the high-priority operator resumes", lambda: "Resuming" in high.log())
        low.start()
        wait_for("the low one is up", lambda: "authentication has finished" in low.log())
        v1 = canary_md(NAME, "1", [{"setWeight": 50}, {"pause": {"duration": "1s"}}])
        apply(cp, ns, v1)
        r1 = revision(v1)
        wait_for("v1 Healthy", lambda: status(cp, ns, NAME).get("stableRevision") == r1)
        set_version(cp, ns, NAME, "2")
        r2 = revision(with_version(v1, "2"))
        wait_for(
            "v2 Healthy",
            lambda: (
                (st := status(cp, ns, NAME)).get("stableRevision") == r2
                and st.get("phase") == "Healthy"
            ),
        )
        posted = {event.get("reportingInstance") for event in events(cp, ns, NAME)}
        assert posted == {"high"}, posted
        assert "Resuming" not in low.log()

        # A graceful exit removes its peering record: the other resumes and takes over.
        high.signal(signal.SIGTERM)
        wait_for("the low-priority operator resumes", lambda: "Resuming" in low.log())
        before = {event["metadata"]["name"] for event in events(cp, ns, NAME)}
        set_version(cp, ns, NAME, "3")
        r3 = revision(with_version(v1, "3"))
        wait_for(
            "v3 Healthy",
            lambda: (
                (st := status(cp, ns, NAME)).get("stableRevision") == r3
                and st.get("phase") == "Healthy"
            ),
        )
        later = {
            event.get("reportingInstance")
            for event in events(cp, ns, NAME)
            if event["metadata"]["name"] not in before
        }
        assert later == {"low"}, later
    finally:
        high.stop()
        low.stop()
        print(high.log()[-10000:], low.log()[-10000:])
