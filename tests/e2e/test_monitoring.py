"""Monitoring after promotion, end to end: real control plane, operator process, Prometheus,
model servers given the training data's reference profile, and load through the HTTPRoute.

Version 2 is promoted through its steps; while its inputs look like the training data its checks
stay healthy; once they move (the load generator shifts a feature), inputDrift breaches and the
operator sends the traffic back to version 1, which rollbackWindow kept warm.
"""

from __future__ import annotations

from typing import Any

from tests.e2e.harness import ERRORS, Env, md_manifest, wait_until

RPS = 40.0
STEPS: list[dict[str, Any]] = [{"setWeight": 50}, {"pause": {"duration": "2s"}}]
MONITORING = {
    "interval": "2s",
    "policy": "rollback",
    "minSamples": 20,
    "metrics": [{"name": "inputs", "builtin": "inputDrift", "max": 0.25, "window": "6s"}],
}


def manifest(env: Env, version: str) -> dict[str, Any]:
    body = md_manifest(version, env.prom.url, [ERRORS], steps=STEPS)
    body["spec"]["monitoring"] = MONITORING
    body["spec"]["rollbackWindow"] = "10m"
    return body


def model_healthy(env: Env) -> str | None:
    st = env.status()
    found = [c for c in st.get("conditions", []) if c["type"] == "ModelHealthy"]
    return found[0]["status"] if found else None


def test_inputs_that_move_after_promotion_roll_back_and_steady_ones_raise_nothing(
    env: Env,
) -> None:
    v1 = env.deploy_stable(manifest(env, "1"), RPS)
    v2_manifest = manifest(env, "2")
    v2 = env.add_revision(v2_manifest)
    env.apply(v2_manifest)
    wait_until("version 2 promoted", lambda: env.healthy_on(v2))
    wait_until("all traffic on version 2", lambda: env.routing().get(v2) == 100)
    # Steady inputs: checks stay healthy and nothing moves.
    wait_until("ModelHealthy", lambda: model_healthy(env) == "True")
    first = env.status()["monitoring"]
    wait_until(
        "another check",
        lambda: (
            (env.status()["monitoring"].get("check") or {}).get("startedAt")
            and env.status()["monitoring"]["check"]["startedAt"] > first["check"]["startedAt"]
        ),
    )
    st = env.status()
    assert st["monitoring"]["state"] == "Healthy" and st["monitoring"].get("breaches", 0) == 0
    assert st["stableRevision"] == v2
    # The world moves: the first feature shifts by three standard deviations.
    assert env.load is not None
    env.load.shift = 3.0
    st = wait_until("rolled back", lambda: (s := env.status())["stableRevision"] == v1 and s)
    assert st["phase"] == "Degraded"
    assert st["abortedRevision"] == v2
    degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "MonitoringFailed"
    assert "metric inputs" in st["message"] and "psi by feature" in st["message"], st["message"]
    assert st["history"][0]["outcome"] == "RolledBack"
    wait_until("all traffic on version 1", lambda: env.routing().get(v1) == 100)
    reasons = {e["reason"] for e in env.events()}
    assert {"MonitoringBreach", "MonitoringFailed"} <= reasons
