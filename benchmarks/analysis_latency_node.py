"""Decision latency on real pods: from the moment a canary degrades to the moment the gateway
stops sending it requests, both measured at the client.

Everything as users run it (tests/node/stack.py): a real node running our images, the chart's
operator pod, Traefik routing by the HTTPRoute weights the operator writes, Prometheus
discovering the pods (1 s scrape). Load through the gateway, 2 clients. Each run rolls out a new
version whose pods answer well at first and fail half of their requests from
`--fault-error-after-seconds` on (the same background analysis as
benchmarks/analysis_latency.py: errorRate max 0.05, 2 s interval, from the first step).
t0 = the client's first 500 from the candidate; t1 = the client's last answer from the
candidate. Physical limit: scrape interval + one analysis interval + the query + one route write
+ Traefik's reconfiguration (its providers throttle, 200 ms here).

Run: python benchmarks/analysis_latency_node.py [--runs 10] [--results FILE]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.analysis_latency import markdown

from tests.integration.operator_process import phase_is
from tests.node.routes import gateway_applies, http_route, routed_strategy
from tests.node.stack import NodeStack, node_stack
from tests.node.workload import Load, apply, failing, model_deployment, published_models
from tests.testenv.waiting import eventually

NAME, NAMESPACE = "latency", "bench-latency"
INTERVAL = 2.0
ERRORS_AFTER_S = 30.0  # after the pod started: it is Ready and takes traffic well before
STEPS = [{"setWeight": 50}, {"pause": {}}]
TITLE = "decision latency on real pods (benchmarks/analysis_latency_node.py)"
DESCRIPTION = (
    "From the client's first 500 of a candidate that starts failing 50 % of its requests to "
    "the client's last answer from it, through the Traefik gateway; a real node, the chart's "
    "operator pod, Prometheus discovering the pods; errorRate max 0.05 in background analysis."
)


def spec(env: NodeStack) -> dict[str, Any]:
    analysis = {
        "interval": f"{INTERVAL:g}s",
        "prometheus": {"address": env.prometheus.url, "timeout": "1s"},
        "metrics": [{"name": "error-rate", "builtin": "errorRate", "max": 0.05}],
        "minSamples": 5,
        # A latency benchmark: a window without data on a loaded machine must not stop it.
        "inconclusiveLimit": 100,
    }
    strategy = routed_strategy(NAME, STEPS)
    strategy["canary"]["analysis"] = {"startStep": 0}
    return {"strategy": strategy, "analysis": analysis, "replicas": 1}


def one_run(env: NodeStack, base: str, digest: str, version: int) -> float:
    """One degraded candidate rolled back, with its own load through the gateway."""
    cp = env.cp
    manifest = model_deployment(NAME, str(version), f"{base}/v2.skops", digest,
                                template=failing(0.5, ERRORS_AFTER_S), **spec(env))  # fmt: skip
    good, bad = f"200 v{version}", "500"
    with Load(env.gateway.host, NAME, clients=2, port=env.gateway.port) as load:
        apply(cp, NAMESPACE, manifest)
        eventually(lambda: load.answered(good), "the candidate answering", 300)
        eventually(phase_is(cp, NAMESPACE, NAME, "Degraded"), "the rollback", 300)
        eventually(lambda: gateway_applies(env.gateway, NAMESPACE, NAME, 0), "route back", 60)
        time.sleep(2)  # the requests in flight when the route changed have answered
        counts = load.counts()
        degraded, healthy = load.answered(bad), load.answered(good)
    assert degraded is not None and healthy is not None, counts
    assert not any(k.startswith("error") for k in counts), counts
    return max(degraded[1], healthy[1]) - degraded[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--results", type=Path, help="append a markdown section to this file")
    args = parser.parse_args()
    latencies: list[float] = []
    with tempfile.TemporaryDirectory(prefix="mrlat") as tmp:
        work = Path(tmp)
        with node_stack(work, lambda m: print(m, file=sys.stderr, flush=True)) as env:
            cp = env.cp
            cp.create_namespace(NAMESPACE)
            base, digests = published_models(cp, f"{NAMESPACE}-files", env.images, work)
            apply(cp, NAMESPACE, http_route(env.gateway, NAME))
            first = model_deployment(NAME, "1", f"{base}/v1.skops", digests["v1.skops"],
                                     **spec(env))  # fmt: skip
            apply(cp, NAMESPACE, first)
            eventually(phase_is(cp, NAMESPACE, NAME, "Healthy"), "v1 Healthy", 300)
            eventually(lambda: gateway_applies(env.gateway, NAMESPACE, NAME, 0), "the route", 60)
            for i in range(args.runs):
                latency = one_run(env, base, digests["v2.skops"], i + 2)
                latencies.append(latency)
                print(f"run {i + 1}: {latency:.2f} s", file=sys.stderr, flush=True)
    result = {
        "runs": len(latencies),
        "scrape_interval_s": 1.0,
        "analysis_interval_s": INTERVAL,
        "median_s": round(statistics.median(latencies), 2),
        "max_s": round(max(latencies), 2),
        "min_s": round(min(latencies), 2),
        "target_s": INTERVAL + 2.0,
        "within_target": sum(1 for x in latencies if x <= INTERVAL + 2.0),
    }
    print(json.dumps(result))
    if args.results:
        with args.results.open("a") as out:
            out.write(markdown(result, latencies, TITLE, DESCRIPTION))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
