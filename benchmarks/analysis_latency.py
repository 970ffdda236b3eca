"""Decision latency: from the moment a canary degrades to all traffic back on stable.

Everything real: the test control plane, the operator process, Prometheus (1 s scrape), one
modelrollout-server per revision, and a load generator following the HTTPRoute's weights. Each
run starts a new candidate revision with two servers: a healthy one that gets the load and a twin
with `--fault-error-rate 0.5` (same revision label, also scraped). Once the canary takes traffic
under background analysis, the load generator moves the candidate's share to the faulty twin at
t0 (at a random point of the analysis interval); t1 = the load generator reads 0 % for the
candidate from the HTTPRoute. Compared with the configured scrape + analysis interval (target:
within one analysis interval + 2 s).

Run: python benchmarks/analysis_latency.py [--runs 20] [--interval 2] [--results FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.e2e.harness import (
    HTTPROUTE_CRD,
    MD_CRD,
    Env,
    environment,
    md_manifest,
    revision_of,
    wait_until,
)
from tests.testenv.controlplane import ControlPlane

ERRORS = {"name": "error-rate", "builtin": "errorRate", "max": 0.05}


def manifest(version: str, env: Env, interval: float) -> dict[str, Any]:
    m = md_manifest(
        version,
        env.prom.url,
        [ERRORS],
        steps=[{"setWeight": 50}, {"pause": {}}],
        interval=f"{interval:g}s",
        minSamples=5,
        # A latency benchmark: a window without data on a loaded machine must not stop it.
        inconclusiveLimit=100,
    )
    m["spec"]["strategy"]["canary"]["analysis"] = {"startStep": 0}
    return m


def one_run(env: Env, version: str, interval: float) -> float:
    m = manifest(version, env, interval)
    candidate = env.add_revision(m)
    bad = env.fleet.start_spare(candidate, "--fault-error-rate", "0.5")
    env.prom.set_targets(env.fleet.targets(env.namespace))
    env.apply(m)
    assert env.load is not None
    wait_until(
        "canary takes traffic under background analysis",
        lambda: (
            env.load is not None
            and env.load.weights.get(candidate, 0) > 0
            and (env.status().get("analysis") or {}).get("successful", 0) >= 1
        ),
        timeout=120,
    )
    # Degrade at a random phase of the measurement grid, not right after a measurement.
    time.sleep(random.uniform(0, interval))
    # The candidate's load moves to its faulty twin (same revision label) at once.
    env.fleet.swap(candidate, bad)
    t0 = time.monotonic()
    load = env.load
    wait_until("all traffic back on stable", lambda: not load.weights.get(candidate), timeout=120)
    changes = [t for t, w in load.changes if t >= t0 and not w.get(candidate)]
    t1 = changes[0] if changes else time.monotonic()
    st = env.status()
    assert st.get("phase") == "Degraded", st.get("message")
    return t1 - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--interval", type=float, default=2.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--results", type=Path, help="append a markdown section to this file")
    args = parser.parse_args()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cp = ControlPlane(work / "cp")
        cp.start()
        try:
            for crd in (MD_CRD, HTTPROUTE_CRD):
                cp.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(crd))
            cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd",
                       "--all")  # fmt: skip
            namespace = f"bench-{uuid.uuid4().hex[:6]}"
            cp.create_namespace(namespace)
            (work / "env").mkdir()
            with environment(cp, namespace, work / "env") as env:
                env.deploy_stable(manifest("1", env, args.interval), rps=40.0)
                stable = revision_of(manifest("1", env, args.interval))
                for i in range(args.runs):
                    latency = one_run(env, str(i + 2), args.interval)
                    latencies.append(latency)
                    print(f"run {i + 1}: {latency:.2f} s", file=sys.stderr, flush=True)
                    if args.results:  # keep finished runs even if a later one fails
                        with args.results.with_suffix(".runs").open("a") as runs:
                            runs.write(f"{latency:.3f}\n")
                    assert env.status().get("stableRevision") == stable
        finally:
            cp.stop()
    result = {
        "runs": len(latencies),
        "scrape_interval_s": 1.0,
        "analysis_interval_s": args.interval,
        "median_s": round(statistics.median(latencies), 2),
        "max_s": round(max(latencies), 2),
        "min_s": round(min(latencies), 2),
        "target_s": args.interval + 2.0,
        "within_target": sum(1 for x in latencies if x <= args.interval + 2.0),
    }
    print(json.dumps(result, indent=2) if args.json else result)
    if args.results:
        with args.results.open("a") as out:
            out.write(markdown(result, latencies, TITLE, DESCRIPTION))
    return 0


TITLE = "decision latency (make bench-analysis)"
DESCRIPTION = (
    "Degradation (candidate's load moved to a twin failing 50 % of requests) to all traffic "
    "back on stable, read from the HTTPRoute by the load generator. Real control plane, "
    "operator process, Prometheus, model servers; errorRate max 0.05 in background analysis."
)


def markdown(result: dict[str, Any], latencies: list[float], title: str, description: str) -> str:
    runs = ", ".join(f"{x:.2f}" for x in latencies)
    return (
        f"\n### Analysis: {title}, {dt.date.today()}\n\n{description}\n\n"
        "| runs | scrape interval | analysis interval | median | max | min | target "
        "(interval + 2 s) | runs within target |\n"
        "|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        f"| {result['runs']} | {result['scrape_interval_s']:g} s | "
        f"{result['analysis_interval_s']:g} s | {result['median_s']} s | {result['max_s']} s | "
        f"{result['min_s']} s | {result['target_s']:g} s | {result['within_target']} |\n\n"
        f"Per run (s): {runs}\n"
    )


if __name__ == "__main__":
    raise SystemExit(main())
