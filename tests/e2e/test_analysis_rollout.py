"""Analysis end to end: real control plane, operator process, Prometheus, model servers, load.

Each test deploys a stable revision, then a candidate whose server has a fault injected (or not),
and checks what the operator did to the traffic (read back from the HTTPRoute) and the status.
The drift rollback and Prometheus down mid-analysis run on real pods through a gateway instead
(tests/node/test_rollouts_on_node.py); what stays here (error and latency bounds, live accuracy,
too little traffic) is the judging itself, to which a pod adds nothing.
"""

from __future__ import annotations

import time
from typing import Any

from tests.e2e.harness import DRIFT, ERRORS, Env, md_manifest, wait_until

RPS = 40.0
# Over 8 s (about 160 canary requests) p99 is not just the slowest request, which one CPU stall
# on a loaded machine can make twice the stable's.
P99 = {"name": "p99", "builtin": "latencyP99", "window": "8s", "compareToStable": {"maxRatio": 3}}
ALL = [ERRORS, P99, DRIFT]


def deploy(env: Env, metrics: list[dict[str, Any]], rps: float = RPS, **extra: Any) -> str:
    return env.deploy_stable(md_manifest("1", env.prom.url, metrics, **extra), rps)


def start_candidate(env: Env, metrics: list[dict[str, Any]], *faults: str, **extra: Any) -> str:
    v2 = md_manifest("2", env.prom.url, metrics, **extra)
    candidate = env.add_revision(v2, *faults)
    env.apply(v2)
    return candidate


def expect_rollback(env: Env, stable: str, candidate: str, metric: str) -> dict[str, Any]:
    st = wait_until("rollback", lambda: (s := env.status()).get("phase") == "Degraded" and s)
    assert st["stableRevision"] == stable
    degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "AnalysisFailed"
    assert f"metric {metric} value" in st["message"], st["message"]
    assert st["analysis"]["phase"] == "Failed"
    assert st["history"][0]["outcome"] == "RolledBack"
    # All traffic back on stable, in the router itself.
    wait_until("all traffic on stable", lambda: env.routing().get(stable) == 100)
    assert env.routing().get(candidate, 0) == 0
    return st


def test_good_candidate_is_promoted(env: Env) -> None:
    deploy(env, ALL)
    candidate = start_candidate(env, ALL)
    st = wait_until("candidate Healthy", lambda: env.healthy_on(candidate))
    assert st["history"][0]["outcome"] == "Promoted"
    assert st["analysis"]["phase"] == "Successful"
    assert st["analysis"]["successful"] >= 3
    wait_until("all traffic on the candidate", lambda: env.routing().get(candidate) == 100)


def test_candidate_failing_five_percent_is_rolled_back(env: Env) -> None:
    stable = deploy(env, [ERRORS])
    candidate = start_candidate(env, [ERRORS], "--fault-error-rate", "0.05")
    expect_rollback(env, stable, candidate, "error-rate")


def test_candidate_three_times_slower_is_rolled_back(env: Env) -> None:
    # Relative to stable, and a fixed bound: on a loaded machine the stable's p99 can drift up
    # a bucket, but the candidate's 60 ms never drops below 50 ms.
    p99 = {**P99, "max": 0.05}
    stable = deploy(env, [p99])
    candidate = start_candidate(env, [p99], "--fault-latency-ms", "60")
    st = expect_rollback(env, stable, candidate, "p99")
    result = next(r for r in st["analysis"]["results"] if r["metric"] == "p99")
    assert result["verdict"] == "Failed" and result["value"] > 0.05


def test_candidate_with_less_live_accuracy_is_rolled_back(env: Env) -> None:
    # Labels reach a server half a second after the answer, by the weights: often the other
    # revision's. The candidate moves 60 % of its probability to the last class.
    accuracy = {
        "name": "live-accuracy",
        "builtin": "accuracy",
        "window": "8s",
        "compareToStable": {"minRatio": 0.9},
    }
    manifest = md_manifest("1", env.prom.url, [accuracy])
    stable = env.deploy_stable(manifest, RPS, feedback_delay=0.5)
    candidate = start_candidate(env, [accuracy], "--fault-prediction-shift", "0.6")
    st = expect_rollback(env, stable, candidate, "live-accuracy")
    result = next(r for r in st["analysis"]["results"] if r["metric"] == "live-accuracy")
    assert result["verdict"] == "Failed" and result["stableValue"] > 0.8, result
    assert env.load is not None and env.load.feedback_failed == []


def test_too_little_traffic_is_inconclusive_not_success(env: Env) -> None:
    stable = deploy(env, [ERRORS], rps=2.0)
    candidate = start_candidate(env, [ERRORS])
    st = wait_until(
        "inconclusive pause",
        lambda: (
            (s := env.status()).get("phase") == "Paused"
            and (s.get("analysis") or {}).get("phase") == "Inconclusive"
            and s
        ),
    )
    assert "too little traffic" in st["message"]
    assert st["stableRevision"] == stable and st["canaryRevision"] == candidate
    # Paused, not promoted and not rolled back: the split stays as it was.
    time.sleep(4)
    st = env.status()
    assert st["phase"] == "Paused" and st["stableRevision"] == stable
    assert env.routing().get(candidate, 0) > 0
