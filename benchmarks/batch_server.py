"""Benchmark: a large batch as JSON and as binary tensors, modelrollout-server against MLServer.

Run with ``make bench-server`` (after the other server benchmarks) or
``.venv/bin/python benchmarks/batch_server.py``.

- Model: LogisticRegression on 50 features; each request is one 1,000 x 50 FP32 batch.
- Ours is sent the batch as JSON and as the binary tensor extension (the JSON head, then the
  50,000 floats; outputs requested in binary too), MLServer as JSON: its REST API has no binary
  extension.
- Load, configurations (one worker; MLServer tuned, in-process), memory and the alternating
  rounds as in benchmarks/model_server.py.

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
import skops.io
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

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

NAME = "batch"
ROWS, FEATURES = 1000, 50
HEADER = "## Model server, a 1,000 x 50 batch: JSON and binary tensors\n"


def write_model(root: Path) -> dict[str, Path]:
    x, y = make_classification(n_samples=4000, n_features=FEATURES, random_state=0)
    model = LogisticRegression(max_iter=1000).fit(x, y)
    root.mkdir()
    skops.io.dump(model, root / "model.skops")
    joblib.dump(model, root / "model.joblib")
    return {"skops": root / "model.skops", "joblib": root / "model.joblib", "dir": root}


def batch() -> np.ndarray:
    return np.random.default_rng(7).normal(size=(ROWS, FEATURES)).astype(np.float32)


def json_body() -> str:
    rows = batch()
    tensor = {"name": "input-0", "datatype": "FP32", "shape": list(rows.shape)}
    return json.dumps({"inputs": [{**tensor, "data": rows.ravel().round(5).tolist()}]})


def binary_script(tmp: Path) -> Path:
    """A wrk script that posts the batch in the binary extension, read from a file (Lua strings
    hold bytes)."""
    raw = batch().astype("<f4").tobytes()
    tensor = {"name": "input-0", "datatype": "FP32", "shape": [ROWS, FEATURES]}
    head = json.dumps(
        {
            "inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}],
            "parameters": {"binary_data_output": True},
        }
    ).encode()
    body = tmp / "binary.body"
    body.write_bytes(head + raw)
    script = tmp / "binary.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/octet-stream"\n'
        f'wrk.headers["Inference-Header-Content-Length"] = "{len(head)}"\n'
        f'local f = io.open("{body}", "rb")\n'
        'wrk.body = f:read("*all")\n'
        "f:close()\n"
    )
    return script


def configs() -> list[Config]:
    tuned = {"debug": False, "gzip_enabled": False, "parallel_workers": 0}
    return [
        Config("ours, JSON", "ours"),
        Config("ours, binary tensors", "ours"),
        Config("MLServer tuned, in-process, JSON", "mlserver", settings=tuned),
    ]


def measure(cfg: Config, ctx: dict[str, object], seconds: float, warmup: float) -> Run:
    model: dict[str, Path] = ctx["model"]  # type: ignore[assignment]
    tmp: Path = ctx["tmp"]  # type: ignore[assignment]
    log = tmp / f"{cfg.kind}.log"
    if cfg.kind == "ours":
        port = free_port()
        proc = launch(
            [
                str(OURS_BIN), "--name", NAME, "--uri", str(model["skops"]),
                "--host", "127.0.0.1", "--port", str(port), "--log-level", "WARNING",
                "--max-body-bytes", str(64 << 20),
            ],
            log,
        )  # fmt: skip
    else:
        proc, port = start_mlserver(ctx["mlserver"], model, NAME, cfg.settings, tmp, log)  # type: ignore[arg-type]
    script: Path = ctx["binary" if "binary" in cfg.label else "json"]  # type: ignore[assignment]
    base = f"http://127.0.0.1:{port}/v2/models/{NAME}"
    return load(cfg, proc, f"{base}/ready", with_wrk(f"{base}/infer", script), seconds, warmup)


def report(cfgs: list[Config], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"### {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Command: `{command}`  ",
        f"{machine(args)}, wrk {CONNECTIONS} connections, "
        f"{args.rounds} alternating rounds x {args.seconds:g} s per configuration (medians). "
        f"LogisticRegression, each request one {ROWS:,} x {FEATURES} FP32 batch; ours answers "
        "predict + predict_proba, MLServer predict. Load average before/after: "
        f"{args.load_before:.1f}/{os.getloadavg()[0]:.1f}.",
        "",
        "| configuration | req/s | rows/s | p50 ms | p99 ms | memory MB (PSS) | non-2xx |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for c in cfgs:
        lines.append(
            f"| {c.label} | {c.median('rps'):.1f} | {c.median('rps') * ROWS:.0f} | "
            f"{c.median('p50_ms'):.2f} | {c.median('p99_ms'):.2f} | {c.median('mem_mb'):.0f} | "
            f"{sum(r.errors for r in c.runs)} |"
        )
    json_ours, binary, theirs = cfgs
    lines += ["", "| comparison | throughput | p50 | p99 |", "|---|---:|---:|---:|"]
    for name, a, b in (
        ("ours binary vs ours JSON", binary, json_ours),
        ("ours JSON vs MLServer JSON", json_ours, theirs),
        ("ours binary vs MLServer JSON", binary, theirs),
    ):
        lines.append(ratio_row(name, a, b, RATIO_COLUMNS[:3]))
    return "\n".join(lines) + "\n"


def main() -> int:
    p = bench_arguments(__doc__)
    args = p.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: scripts/ensure-debian-tools.sh wrk:wrk", file=sys.stderr)
        return 2
    mlserver = ensure_mlserver(args.venv)
    args.load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp_s:
        tmp = Path(tmp_s)
        ctx: dict[str, object] = {
            "tmp": tmp,
            "model": write_model(tmp / "model"),
            "json": wrk_script(tmp, json_body()),
            "binary": binary_script(tmp),
            "mlserver": mlserver,
        }
        cfgs = configs()
        alternate(cfgs, args.rounds, lambda cfg: measure(cfg, ctx, args.seconds, args.warmup))
    section = report(cfgs, args, command_line())
    publish(section, args, HEADER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
