"""Blue/green with pre- and post-promotion analysis end to end (replicas router: Services only).

Clients call `<name>`, which selects the active revision. The preview is reached through
`<name>-preview` only: the load generator (harness.read_blue_green) sends half its requests there
while the preview differs from the active revision, as the smoke traffic of a real installation
would, so pre-promotion analysis has the preview's own requests to judge.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.harness import (
    DRIFT,
    ERRORS,
    NAME,
    Env,
    md_manifest,
    read_blue_green,
    selected_revision,
    wait_until,
)
from tests.integration.operator_process import deployments

RPS = 40.0
STRATEGY = {
    "blueGreen": {
        "autoPromotion": True,
        "previewReplicas": 1,
        # Before the switch the stable still serves clients: the preview can be compared with it.
        "prePromotionAnalysis": {"metrics": ["error-rate", "drift"]},
        # After it the old stable serves nobody: only bounds on the new revision itself mean
        # anything (a comparison would be "too little traffic" on the stable).
        "postPromotionAnalysis": {"metrics": ["error-rate"]},
        "scaleDownDelaySeconds": 2,
    }
}


def manifest(env: Env, version: str) -> dict[str, Any]:
    # The first pre-promotion measurement may come a second after the preview got its first
    # requests (the run counts from the rollout's start): one "too little traffic" is tolerated.
    m = md_manifest(version, env.prom.url, [ERRORS, DRIFT], strategy=STRATEGY, inconclusiveLimit=1)
    m["spec"]["replicas"] = 2
    return m


def selects(env: Env, service: str) -> str | None:
    return selected_revision(env.kube, env.namespace, service)


def event_messages(env: Env, reason: str) -> list[str]:
    return [str(e["message"]) for e in env.events() if e["reason"] == reason]


def start(env: Env, *twin_faults: str) -> tuple[str, str]:
    """Version 1 Healthy under load, then version 2 applied; returns (stable, candidate).

    With `twin_faults`, the candidate also gets a twin server with those faults, scraped but
    without load until the test swaps it in (Fleet.swap), started before the rollout so that
    the swap can follow the switch at once.
    """
    stable = env.deploy_stable(manifest(env, "1"), RPS, read=read_blue_green)
    v2 = manifest(env, "2")
    candidate = env.add_revision(v2)
    if twin_faults:
        env.fleet.start_spare(candidate, *twin_faults)
        env.prom.set_targets(env.fleet.targets(env.namespace))
    env.apply(v2)
    return stable, candidate


def test_good_candidate_passes_both_analyses_and_is_promoted(env: Env) -> None:
    stable, candidate = start(env)
    # Preview: the candidate has its preview pods and the preview Service, clients stay on stable.
    wait_until(
        "preview up",
        lambda: (
            deployments(env.cp, env.namespace, NAME).get(candidate) == 1
            and selects(env, f"{NAME}-preview") == candidate
            and (env.status().get("analysis") or {}).get("kind") == "prePromotion"
        ),
    )
    assert selects(env, NAME) == stable
    assert env.routing() == {stable: 50, candidate: 50}
    # The switch: `<name>` selects the candidate, scaled to spec.replicas, under post analysis.
    st = wait_until(
        "post-promotion analysis",
        lambda: (
            (s := env.status()).get("canaryRevision")
            and (s.get("analysis") or {}).get("kind") == "postPromotion"
            and s
        ),
    )
    assert st["stableRevision"] == stable and st["canaryRevision"] == candidate
    assert selects(env, NAME) == candidate
    assert deployments(env.cp, env.namespace, NAME).get(candidate) == 2
    st = wait_until("candidate Healthy", lambda: env.healthy_on(candidate))
    assert st["history"][0]["outcome"] == "Promoted"
    assert st["analysis"]["kind"] == "postPromotion"
    assert st["analysis"]["phase"] == "Successful"

    # Events are posted after the status write that reports them: wait for them.
    def both_reported() -> bool:
        passed = event_messages(env, "AnalysisSuccessful")
        return any("pre-promotion" in m for m in passed) and any(
            "post-promotion" in m for m in passed
        )

    wait_until("both analyses reported as events", both_reported)
    assert env.routing() == {candidate: 100}
    assert env.load is not None and env.load.sent.get(candidate, 0) > 0


def test_candidate_failing_after_the_switch_goes_back_to_stable(env: Env) -> None:
    # The candidate's first server is healthy (it passes pre-promotion analysis on preview
    # traffic); its twin fails half the requests and takes the candidate's load once switched.
    stable, candidate = start(env, "--fault-error-rate", "0.5")
    _, failing = env.fleet.spares[0]
    assert env.load is not None
    load = env.load
    wait_until("switched", lambda: load.weights == {candidate: 100})
    env.fleet.swap(candidate, failing)
    st = wait_until("rollback", lambda: (s := env.status()).get("phase") == "Degraded" and s)
    assert st["stableRevision"] == stable
    assert st["history"][0]["outcome"] == "RolledBack"
    degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "AnalysisFailed"
    assert "post-promotion: metric error-rate value" in st["message"], st["message"]
    assert st["analysis"]["kind"] == "postPromotion" and st["analysis"]["phase"] == "Failed"
    result = next(r for r in st["analysis"]["results"] if r["metric"] == "error-rate")
    assert result["verdict"] == "Failed" and result["value"] > 0.02
    # Pre-promotion had passed: the failure came after the switch.
    assert any("pre-promotion" in m for m in event_messages(env, "AnalysisSuccessful"))
    wait_until(
        "the post-promotion failure reported as an event",
        lambda: any(
            "post-promotion" in m and "error-rate" in m
            for m in event_messages(env, "AnalysisFailed")
        ),
    )
    # Clients are back on the old stable, which was never scaled down.
    wait_until("`<name>` selects stable", lambda: selects(env, NAME) == stable)
    wait_until("all traffic on stable", lambda: load.weights == {stable: 100})
    assert deployments(env.cp, env.namespace, NAME).get(stable) == 2
