"""The operator as a real process on the real control plane (kwok makes pods Ready)."""

from __future__ import annotations

from typing import Any

from tests.integration.operator_process import (
    Operator,
    apply,
    apply_and_settle,
    canary_md,
    control,
    deployments,
    events,
    get_md,
    healthy_on,
    in_phase,
    md_manifest,
    model,
    revision,
    roll_to,
    selectors,
    status,
    wait_for,
    with_version,
)
from tests.testenv.controlplane import ControlPlane

NAME = "fraud"


def test_canary_goes_through_its_steps_to_healthy(
    operator: Operator, control_plane: ControlPlane, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    v1 = canary_md(
        NAME, "1", [{"setWeight": 25}, {"pause": {"duration": "2s"}}, {"setWeight": 50},
                    {"pause": {"duration": "2s"}}],
    )  # fmt: skip
    r1 = apply_and_settle(cp, ns, v1)
    assert deployments(cp, ns, NAME) == {r1: 3}

    v2 = with_version(v1, "2")
    r2 = revision(v2)
    apply(cp, ns, v2)
    seen: list[tuple[int | None, int]] = []

    def progress() -> dict[str, Any] | None:
        st = status(cp, ns, NAME)
        if st.get("canaryRevision") == r2:
            step = (st.get("currentStepIndex"), st.get("canaryWeight", 0))
            if not seen or seen[-1] != step:
                seen.append(step)
        return healthy_on(cp, ns, NAME, r2)

    final = wait_for("second revision Healthy", progress, interval=0.2)
    weights = [weight for _, weight in seen]
    assert 25 in weights and 50 in weights, seen
    assert weights == sorted(weights), f"weights went down: {seen}"
    assert final["observedGeneration"] == get_md(cp, ns, NAME)["metadata"]["generation"]
    assert final["canaryWeight"] == 0
    # The old stable is scaled to zero only now; the new one runs at full size.
    wait_for("old revision scaled to zero", lambda: deployments(cp, ns, NAME) == {r1: 0, r2: 3})
    services = selectors(cp, ns, NAME)
    assert services[""] == {"modelrollout.io/name": NAME}
    assert services["-stable"]["modelrollout.io/revision"] == r2
    reasons = {event["reason"] for event in events(cp, ns, NAME)}
    assert len(reasons) >= 2, reasons  # a transition posts an event
    assert {"RolloutStarted", "Promoted"} <= reasons, reasons


def test_spec_change_mid_rollout_starts_over_from_the_new_revision(
    operator: Operator, control_plane: ControlPlane, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    v1 = canary_md(NAME, "1", [{"setWeight": 40}, {"pause": {}}])
    r1 = apply_and_settle(cp, ns, v1)
    r2 = roll_to(cp, ns, v1, "2")

    def paused_on(rev: str) -> dict[str, Any] | None:
        st = status(cp, ns, NAME)
        ok = st.get("canaryRevision") == rev and st.get("phase") == "Paused"
        return st if ok and st.get("canaryWeight") == 40 else None

    wait_for("v2 paused at 40%", lambda: paused_on(r2))
    r3 = roll_to(cp, ns, v1, "3")
    st = wait_for("v3 paused at 40%", lambda: paused_on(r3))
    assert st["stableRevision"] == r1
    wait_for("v2 scaled away", lambda: deployments(cp, ns, NAME).get(r2, 0) == 0)

    control(cp, ns, NAME, "promoteFull", "full-1")
    wait_for("v3 Healthy", lambda: healthy_on(cp, ns, NAME, r3))


def test_abort_returns_all_traffic_to_stable_at_once(
    operator: Operator, control_plane: ControlPlane, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    v1 = canary_md(NAME, "1", [{"setWeight": 50}, {"pause": {}}])
    r1 = apply_and_settle(cp, ns, v1)
    r2 = roll_to(cp, ns, v1, "2")
    wait_for(
        "v2 at 50%",
        lambda: (
            status(cp, ns, NAME).get("canaryWeight") == 50
            and deployments(cp, ns, NAME).get(r2, 0) > 0
        ),
    )

    control(cp, ns, NAME, "abort", "abort-1")

    st = wait_for("aborted", lambda: in_phase(cp, ns, NAME, "Degraded"))
    assert st["canaryWeight"] == 0
    assert st["stableRevision"] == r1
    wait_for("canary scaled to zero", lambda: deployments(cp, ns, NAME) == {r1: 3, r2: 0})
    assert selectors(cp, ns, NAME)["-canary"]["modelrollout.io/revision"] == r1


def test_blue_green_switches_the_active_service(
    operator: Operator, control_plane: ControlPlane, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    v1 = md_manifest(NAME, model("1"), {"blueGreen": {"autoPromotion": False}})
    r1 = apply_and_settle(cp, ns, v1)
    assert selectors(cp, ns, NAME)[""]["modelrollout.io/revision"] == r1

    r2 = roll_to(cp, ns, v1, "2")

    def previewing() -> bool:
        services = selectors(cp, ns, NAME)
        return (
            services.get("-preview", {}).get("modelrollout.io/revision") == r2
            and services[""]["modelrollout.io/revision"] == r1
        )

    # Promote once the status says v2 awaits it, as a person would: the preview Service moves
    # before the status records the candidate, and a request older than the rollout lapses.
    st = wait_for("v2 awaiting promotion", lambda: in_phase(cp, ns, NAME, "Paused"))
    assert st["canaryRevision"] == r2
    assert previewing()
    control(cp, ns, NAME, "promote", "promote-1")
    wait_for(
        "active switched to v2",
        lambda: selectors(cp, ns, NAME)[""]["modelrollout.io/revision"] == r2,
    )
    wait_for("v2 Healthy", lambda: healthy_on(cp, ns, NAME, r2))


def test_deleting_the_model_deployment_removes_its_children(
    operator: Operator, control_plane: ControlPlane, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    apply_and_settle(cp, ns, canary_md(NAME, "1", [{"setWeight": 50}]))
    assert deployments(cp, ns, NAME) and selectors(cp, ns, NAME)

    cp.kubectl("delete", "modeldeployment", NAME, "-n", ns, "--wait=true", "--timeout=60s")

    wait_for(
        "children garbage-collected",
        lambda: not deployments(cp, ns, NAME) and not selectors(cp, ns, NAME),
    )


def test_a_deleted_service_is_recreated_without_a_spec_change(
    operator: Operator, control_plane: ControlPlane, namespace: str
) -> None:
    cp, ns = control_plane, namespace
    r1 = apply_and_settle(cp, ns, canary_md(NAME, "1", [{"setWeight": 50}]))
    before = selectors(cp, ns, NAME)
    assert before["-stable"]["modelrollout.io/revision"] == r1 and "" in before

    cp.kubectl("delete", "service", NAME, "-n", ns, "--wait=true", "--timeout=60s")

    def recreated() -> dict[str, dict[str, str]] | None:
        now = selectors(cp, ns, NAME)
        return now if "" in now else None

    assert wait_for("Service recreated", recreated) == before
