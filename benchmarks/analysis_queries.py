"""PromQL queries per analysis interval with 10 and 100 concurrent rollouts, batched vs not.

A real Prometheus scrapes a synthetic exporter that plays the model server's metric contract for
every rollout's stable and canary revision (1 s scrape interval). Each interval, every rollout
measures errorRate, latencyP99 and predictionDrift at the same grid instant (as the evaluator
schedules them):
- batched: one AnalysisRunner for the process (shared query cache) — the operator's setup;
- unbatched: one runner per rollout (no sharing), what per-rollout queries would cost.

Run: python benchmarks/analysis_queries.py [--intervals N] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from modelrollout.analysis.runner import AnalysisRunner
from modelrollout.api import AnalysisSpec, Verdict
from tests.e2e.prometheus import (
    PrometheusProcess,
    SyntheticExporter,
    SyntheticRevision,
)

NS = "bench"
METRICS = [
    {"name": "error-rate", "builtin": "errorRate", "max": 0.05},
    {"name": "p99", "builtin": "latencyP99", "max": 0.5},
    {"name": "drift", "builtin": "predictionDrift", "max": 0.2},
]
INTERVAL = 2.0


def revisions(n: int) -> list[SyntheticRevision]:
    out = []
    for i in range(n):
        out.append(SyntheticRevision(NS, f"md{i}", f"s{i}", rps=5.0))
        out.append(SyntheticRevision(NS, f"md{i}", f"c{i}", rps=5.0))
    return out


async def one_setting(
    prom_url: str, rollouts: int, intervals: int, batched: bool
) -> dict[str, Any]:
    spec = AnalysisSpec.model_validate(
        {"interval": f"{INTERVAL:g}s", "prometheus": {"address": prom_url}, "metrics": METRICS}
    )
    shared = AnalysisRunner()
    runners = [shared] * rollouts if batched else [AnalysisRunner() for _ in range(rollouts)]
    per_interval: list[int] = []
    durations: list[float] = []
    verdicts: dict[str, int] = {}
    try:
        for _ in range(intervals):
            # Wait for the next grid instant, as the evaluator's schedule does.
            await asyncio.sleep(INTERVAL - time.time() % INTERVAL)
            before = sum(r.queries_sent for r in set(runners))
            start = time.perf_counter()
            results = await asyncio.gather(
                *(runners[i].measure(spec, NS, f"md{i}", f"c{i}", f"s{i}") for i in range(rollouts))
            )
            durations.append(time.perf_counter() - start)
            per_interval.append(sum(r.queries_sent for r in set(runners)) - before)
            for rs in results:
                for r in rs:
                    verdicts[r.verdict.value] = verdicts.get(r.verdict.value, 0) + 1
    finally:
        for r in set(runners):
            await r.aclose()
    return {
        "rollouts": rollouts,
        "batched": batched,
        "queries_per_interval": statistics.median(per_interval),
        "queries_per_interval_max": max(per_interval),
        "measure_seconds_median": round(statistics.median(durations), 3),
        "measure_seconds_max": round(max(durations), 3),
        "successful_share": round(
            verdicts.get(Verdict.SUCCESSFUL.value, 0) / sum(verdicts.values()), 3
        ),
    }


def table(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| rollouts | batched | PromQL queries / interval | measure time median (max) s "
        "| Successful share |",
        "|---:|:---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['rollouts']} | {'yes' if r['batched'] else 'no'} | "
            f"{r['queries_per_interval']:g} | {r['measure_seconds_median']} "
            f"({r['measure_seconds_max']}) | {r['successful_share']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--intervals", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--results", type=Path, help="append a markdown section to this file")
    args = parser.parse_args()
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp,
        SyntheticExporter(revisions(100)) as exporter,
        PrometheusProcess(Path(tmp), exporter.targets()) as prom,
    ):
        ready = "count_over_time(model_infer_request_success_total[10s]) >= 6"
        prom.wait_for(ready, timeout=120, min_series=200)
        for rollouts in (10, 100):
            for batched in (False, True):
                rows.append(asyncio.run(one_setting(prom.url, rollouts, args.intervals, batched)))
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(table(rows))
    if args.results:
        with args.results.open("a") as out:
            out.write(
                f"\n### Analysis: PromQL queries per interval (make bench-analysis, "
                f"{dt.date.today()})\n\n"
                "Each rollout measures errorRate, latencyP99 and predictionDrift at the same grid "
                f"instant ({INTERVAL:g} s interval; real Prometheus, 1 s scrape, synthetic "
                f"exporter for 100 rollouts x 2 revisions; {args.intervals} intervals). "
                "Unbatched = one runner per rollout; batched = the operator's shared runner.\n\n"
                + table(rows)
                + "\n"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
