"""A canary's shadow step end to end: real control plane, operator process, Prometheus, model
servers, load through the HTTPRoute. The operator writes the shadow ConfigMap; the stable's
server mirrors half its requests to the candidate and compares; an analysis step judges the
agreement before any live request reaches the candidate."""

from __future__ import annotations

from typing import Any

from tests.e2e.harness import Env, md_manifest, wait_until

RPS = 40.0
AGREEMENT = {"name": "agreement", "builtin": "shadowAgreement", "min": 0.95, "window": "6s"}
STEPS: list[dict[str, Any]] = [
    {"shadow": {"percent": 50, "duration": "6s"}},
    {"analysis": {}},
    {"setWeight": 50},
    {"pause": {"duration": "2s"}},
]


def deploy(env: Env) -> str:
    return env.deploy_stable(md_manifest("1", env.prom.url, [AGREEMENT], steps=STEPS), RPS)


def start_candidate(env: Env, *faults: str) -> str:
    v2 = md_manifest("2", env.prom.url, [AGREEMENT], steps=STEPS)
    candidate = env.add_revision(v2, *faults)
    env.apply(v2)
    return candidate


def served(env: Env, revision: str) -> float:
    return env.fleet.servers[revision].counter("model_infer_request_success_total")


def test_a_candidate_that_agrees_is_promoted_through_its_steps(env: Env) -> None:
    deploy(env)
    candidate = start_candidate(env)
    wait_until("mirroring", lambda: env.status().get("currentStepIndex") == 0 and served(
        env, candidate) > 0)  # fmt: skip
    st = wait_until("candidate Healthy", lambda: env.healthy_on(candidate), timeout=180)
    assert st["history"][0]["outcome"] == "Promoted"
    result = next(r for r in st["analysis"]["results"] if r["metric"] == "agreement")
    assert result["verdict"] == "Successful" and result["value"] >= 0.95


def test_a_candidate_that_disagrees_is_rolled_back_before_answering_anyone(env: Env) -> None:
    stable = deploy(env)
    candidate = start_candidate(env, "--fault-prediction-shift", "0.6")
    st = wait_until("rollback", lambda: (s := env.status()).get("phase") == "Degraded" and s)
    assert st["stableRevision"] == stable and st["abortedRevision"] == candidate
    assert "metric agreement value" in st["message"], st["message"]
    assert st["history"][0]["outcome"] == "RolledBack"
    # The candidate answered mirrored copies only: the load never picked it, and the traffic
    # never left the stable.
    assert env.load is not None and env.load.sent.get(candidate, 0) == 0
    assert served(env, candidate) > 0
    assert env.routing().get(candidate, 0) == 0
