"""Benchmark: modelrollout-server against MLServer on the model people ship most, a scikit-learn
Pipeline fitted on a pandas DataFrame.

Run with ``make bench-server`` (after benchmarks/model_server.py) or
``.venv/bin/python benchmarks/pipeline_server.py``.

- Model: ColumnTransformer (StandardScaler on 6 numeric columns, OneHotEncoder on 2 string
  columns) + HistGradientBoostingClassifier (100 iterations), fitted on a 5,000-row DataFrame.
  Ours loads the skops file (trusting the one type skops names), MLServer the same pipeline as
  joblib.
- Requests: the DataFrame as MLServer's pandas codec sends it (one input per column, FP64 and
  BYTES side by side, `"parameters": {"content_type": "pd"}`), 1 row and 100 rows; the same body
  for both servers. Ours answers predict + predict_proba with its metrics, MLServer predict only.
- Load, configurations, memory and the alternating rounds as in benchmarks/model_server.py.

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

import joblib
import numpy as np
import pandas as pd
import skops.io
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from model_server import (
    CONNECTIONS,
    OURS_BIN,
    RATIO_COLUMNS,
    Config,
    Run,
    alternate,
    bench_arguments,
    command_line,
    ensure_mlserver,
    free_port,
    launch,
    load,
    machine,
    publish,
    ratio_row,
    start_mlserver,
    with_wrk,
    wrk_script,
)

NUMBERS = [f"n{i}" for i in range(6)]
STRINGS = {"country": ["FR", "NO", "PE", "JP", "KE"], "channel": ["web", "app", "shop"]}
NAME = "pipeline"
HEADER = "## Model server on a DataFrame pipeline: modelrollout-server vs MLServer\n"


def frame(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    columns: dict[str, object] = {n: rng.normal(size=rows).round(4) for n in NUMBERS}
    for name, values in STRINGS.items():
        columns[name] = rng.choice(values, rows).astype(object)
    return pd.DataFrame(columns)


def write_pipeline(root: Path) -> tuple[dict[str, Path], list[str]]:
    data = frame(5000, 0)
    label = (data["n0"] + (data["country"] == "PE") * 1.5 > 0.5).astype(int)
    pipeline = Pipeline(
        [
            (
                "prepare",
                ColumnTransformer(
                    [
                        ("numbers", StandardScaler(), NUMBERS),
                        ("strings", OneHotEncoder(handle_unknown="ignore"), list(STRINGS)),
                    ]
                ),
            ),
            ("classify", HistGradientBoostingClassifier(max_iter=100, random_state=0)),
        ]
    ).fit(data, label)
    root.mkdir()
    skops.io.dump(pipeline, root / "model.skops")
    joblib.dump(pipeline, root / "model.joblib")
    trusted = skops.io.get_untrusted_types(file=root / "model.skops")
    return {"skops": root / "model.skops", "joblib": root / "model.joblib", "dir": root}, trusted


def pandas_body(rows: int) -> str:
    """What MLServer's PandasCodec.encode_request sends for a DataFrame."""
    data = frame(rows, 7)
    inputs = []
    for name in data.columns:
        strings = name in STRINGS
        inputs.append(
            {
                "name": name,
                "datatype": "BYTES" if strings else "FP64",
                "shape": [rows, 1],
                "data": data[name].tolist(),
                **({"parameters": {"content_type": "str"}} if strings else {}),
            }
        )
    return json.dumps({"parameters": {"content_type": "pd"}, "inputs": inputs})


def configs() -> list[Config]:
    tuned = {"debug": False, "gzip_enabled": False}
    return [
        Config("ours, 1 worker", "ours", 1),
        Config("MLServer defaults", "mlserver", settings={}),
        Config("ours, 2 workers", "ours", 2),
        Config("MLServer tuned, in-process", "mlserver", settings={**tuned, "parallel_workers": 0}),
        Config("MLServer tuned, 2 parallel workers", "mlserver",
               settings={**tuned, "parallel_workers": 2}),
    ]  # fmt: skip


def measure(cfg: Config, ctx: dict[str, object], rows: int, seconds: float, warmup: float) -> Run:
    model: dict[str, Path] = ctx["model"]  # type: ignore[assignment]
    tmp: Path = ctx["tmp"]  # type: ignore[assignment]
    log = tmp / f"{cfg.kind}.log"
    if cfg.kind == "ours":
        port = free_port()
        trusted = [arg for t in ctx["trusted"] for arg in ("--trusted-type", t)]  # type: ignore[attr-defined]
        proc = launch(
            [
                str(OURS_BIN), "--name", NAME, "--uri", str(model["skops"]), *trusted,
                "--host", "127.0.0.1", "--port", str(port), "--workers", str(cfg.workers),
                "--version", "1", "--revision", "bench", "--log-level", "WARNING",
            ],
            log,
        )  # fmt: skip
    else:
        proc, port = start_mlserver(ctx["mlserver"], model, NAME, cfg.settings, tmp, log)  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{port}/v2/models/{NAME}"
    script: Path = ctx["scripts"][rows]  # type: ignore[index]
    return load(cfg, proc, f"{base}/ready", with_wrk(f"{base}/infer", script), seconds, warmup)


def report(results: dict[int, list[Config]], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"### {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Command: `{command}`  ",
        f"{machine(args)}, wrk {CONNECTIONS} connections, "
        f"{args.rounds} alternating rounds x {args.seconds:g} s per configuration (medians). "
        "Model: ColumnTransformer (StandardScaler on 6 numeric columns, OneHotEncoder on 2 "
        "string columns) + HistGradientBoostingClassifier (100 iterations); requests as "
        'MLServer\'s pandas codec sends a DataFrame (`content_type: "pd"`, FP64 and BYTES '
        "columns), the same body for both. Load average before/after: "
        f"{args.load_before:.1f}/{os.getloadavg()[0]:.1f}.",
        "",
        "| rows | configuration | req/s | rows/s | p50 ms | p99 ms | memory MB (PSS) | non-2xx |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for rows, cfgs in results.items():
        for c in cfgs:
            lines.append(
                f"| {rows} | {c.label} | {c.median('rps'):.0f} | {c.median('rps') * rows:.0f} | "
                f"{c.median('p50_ms'):.2f} | {c.median('p99_ms'):.2f} | {c.median('mem_mb'):.0f} | "
                f"{sum(r.errors for r in c.runs)} |"
            )
    lines += [
        "",
        "Ratios ours / MLServer (throughput: higher is better; latency: lower is better):",
        "",
        "| rows | comparison | throughput | p50 | p99 | memory |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for rows, cfgs in results.items():
        by = {c.label: c for c in cfgs}
        ours = [c for c in cfgs if c.kind == "ours"]
        theirs = [c for c in cfgs if c.kind == "mlserver"]
        ours_best = max(ours, key=lambda c: c.median("rps"))
        theirs_best = max(theirs, key=lambda c: c.median("rps"))
        for name, a, b in (
            ("1 worker vs MLServer defaults", by["ours, 1 worker"], by["MLServer defaults"]),
            ("1 worker vs MLServer tuned (in-process)", by["ours, 1 worker"],
             by["MLServer tuned, in-process"]),
            (f"best ({ours_best.label}) vs best MLServer ({theirs_best.label})", ours_best,
             theirs_best),
        ):  # fmt: skip
            lines.append(ratio_row(f"{rows} | {name}", a, b, RATIO_COLUMNS))
    return "\n".join(lines) + "\n"


def main() -> int:
    p = bench_arguments(__doc__)
    p.add_argument("--rows", default="1,100", help="rows per request")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: scripts/ensure-debian-tools.sh wrk:wrk", file=sys.stderr)
        return 2
    mlserver = ensure_mlserver(args.venv)
    args.load_before = os.getloadavg()[0]
    sizes = [int(r) for r in args.rows.split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmp_s:
        tmp = Path(tmp_s)
        model, trusted = write_pipeline(tmp / "pipeline")
        scripts = {}
        for rows in sizes:
            (tmp / str(rows)).mkdir()
            scripts[rows] = wrk_script(tmp / str(rows), pandas_body(rows))
        ctx: dict[str, object] = {
            "tmp": tmp,
            "model": model,
            "trusted": trusted,
            "scripts": scripts,
            "mlserver": mlserver,
        }
        results: dict[int, list[Config]] = {}
        for rows in sizes:
            cfgs = configs()
            results[rows] = cfgs
            print(f"{rows} rows", flush=True)
            alternate(
                cfgs,
                args.rounds,
                lambda cfg, r=rows: measure(cfg, ctx, r, args.seconds, args.warmup),
            )
    command = command_line()
    section = report(results, args, command)
    publish(section, args, HEADER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
