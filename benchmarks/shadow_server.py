"""Benchmark: what shadow traffic costs the stable, with and without mirroring, in one run.

Run with ``make bench-server`` or ``.venv/bin/python benchmarks/shadow_server.py``.

- Model: LogisticRegression on 20 features (benchmarks/model_server.py), 1-row JSON requests.
- The stable is measured alone, mirroring 10 % and mirroring 100 % of its requests to a twin
  candidate (another modelrollout-server process with the same model, started once). Each run
  starts a fresh stable; wrk sends the load to the stable only.
- The candidate shares this machine's 2 cores with the stable and wrk: the cost measured here
  includes the candidate's own CPU, which on a cluster runs in other pods.
- After each run the stable's own counters say how many copies were compared and dropped.

Results are appended to benchmarks/RESULTS.md with the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from model_server import (
    CONNECTIONS,
    OURS_BIN,
    RATIO_COLUMNS,
    Config,
    Run,
    alternate,
    bench_arguments,
    command_line,
    free_port,
    launch,
    load,
    machine,
    publish,
    ratio_row,
    request_body,
    run_wrk,
    stop,
    wait_ready,
    write_models,
    wrk_script,
)

NAME = "shadow"
HEADER = "## Shadow traffic: the stable's cost of mirroring\n"
PERCENTS = {"stable alone": None, "stable mirroring 10 %": 10, "stable mirroring 100 %": 100}


def configs() -> list[Config]:
    return [Config(label, "ours") for label in PERCENTS]


def shadow_counts(url: str) -> dict[str, float]:
    """The stable's mirrored requests by result (summed over its series)."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for s in family.samples:
            if s.name == "model_shadow_requests_total":
                counts[s.labels["result"]] = counts.get(s.labels["result"], 0.0) + s.value
    return counts


def measure(cfg: Config, ctx: dict[str, object], seconds: float, warmup: float) -> Run:
    model: Path = ctx["model"]  # type: ignore[assignment]
    tmp: Path = ctx["tmp"]  # type: ignore[assignment]
    percent = PERCENTS[cfg.label]
    extra: list[str] = []
    if percent is not None:
        config = tmp / f"shadow-{percent}.json"
        target = {"target": ctx["candidate"], "percent": percent, "revision": "twin"}
        config.write_text(json.dumps(target))
        extra = ["--shadow-config", str(config)]
    port = free_port()
    proc = launch(
        [
            str(OURS_BIN), "--name", NAME, "--uri", str(model), "--host", "127.0.0.1",
            "--port", str(port), "--revision", "stable", "--log-level", "WARNING", *extra,
        ],
        tmp / "stable.log",
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    script: Path = ctx["script"]  # type: ignore[assignment]
    counts: dict[str, dict[str, float]] = ctx["counts"]  # type: ignore[assignment]

    def generate(duration: float) -> tuple[float, float, float, int]:
        before = shadow_counts(base)
        result = run_wrk(f"{base}/v2/models/{NAME}/infer", script, duration)
        after = shadow_counts(base)
        counts[cfg.label] = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        counts[cfg.label]["requests"] = result[0] * duration
        return result

    return load(cfg, proc, f"{base}/v2/health/ready", generate, seconds, warmup)


def report(
    cfgs: list[Config], counts: dict[str, dict[str, float]], args: argparse.Namespace, command: str
) -> str:
    lines = [
        f"### {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Command: `{command}`  ",
        f"{machine(args)}, wrk {CONNECTIONS} connections, "
        f"{args.rounds} alternating rounds x {args.seconds:g} s per configuration (medians). "
        "LogisticRegression, 1-row JSON requests; the twin candidate runs on the same cores. "
        f"Load average before/after: {args.load_before:.1f}/{os.getloadavg()[0]:.1f}.",
        "",
        "| configuration | req/s | p50 ms | p99 ms | memory MB (PSS) | copies compared "
        "(last run) | dropped (queue full) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cfgs:
        n = counts.get(c.label, {})
        compared = f"{n.get('compared', 0):.0f} of {n.get('requests', 0):.0f}"
        lines.append(
            f"| {c.label} | {c.median('rps'):.0f} | {c.median('p50_ms'):.2f} | "
            f"{c.median('p99_ms'):.2f} | {c.median('mem_mb'):.0f} | {compared} | "
            f"{n.get('dropped', 0):.0f} |"
        )
    alone = cfgs[0]
    lines += ["", "| comparison | throughput | p50 | p99 | memory |", "|---|---:|---:|---:|---:|"]
    for c in cfgs[1:]:
        lines.append(ratio_row(f"{c.label} vs alone", c, alone, RATIO_COLUMNS))
    return "\n".join(lines) + "\n"


def main() -> int:
    args = bench_arguments(__doc__).parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: scripts/ensure-debian-tools.sh wrk:wrk", file=sys.stderr)
        return 2
    args.load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-shadow-") as tmp_s:
        tmp = Path(tmp_s)
        model = write_models(tmp)["lr"]["skops"]
        port = free_port()
        candidate = launch(
            [str(OURS_BIN), "--name", NAME, "--uri", str(model), "--host", "127.0.0.1",
             "--port", str(port), "--revision", "twin", "--log-level", "WARNING"],
            tmp / "candidate.log",
        )  # fmt: skip
        counts: dict[str, dict[str, float]] = {}
        try:
            wait_ready(candidate, f"http://127.0.0.1:{port}/v2/health/ready")
            ctx: dict[str, object] = {
                "tmp": tmp,
                "model": model,
                "candidate": f"http://127.0.0.1:{port}",
                "script": wrk_script(tmp, request_body()),
                "counts": counts,
            }
            cfgs = configs()
            alternate(cfgs, args.rounds, lambda cfg: measure(cfg, ctx, args.seconds, args.warmup))
        finally:
            stop(candidate)
    publish(report(cfgs, counts, args, command_line()), args, HEADER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
