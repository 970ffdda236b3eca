"""Benchmark: the protocol's gRPC form, modelrollout-server against MLServer, gRPC against gRPC.

Run with ``make bench-server`` (after the other server benchmarks) or
``.venv/bin/python benchmarks/grpc_server.py``.

- Model: LogisticRegression on 50 features (the batch benchmark's).
- Requests: one row in typed contents (`fp32_contents`), and a 1,000 x 50 FP32 batch in
  `raw_input_contents`; the same messages to both servers.
- Load: ghz, built from the Go module proxy into ~/.cache/modelrollout/tools/bin (about 2 min
  the first time), 8 concurrent calls on 8 connections, after a warm-up; it reads the messages'
  description from a protoset written from the server's own (no .proto file exists).
- Configurations: ours with one worker; MLServer tuned (debug off, inference in-process).

Results are appended to benchmarks/RESULTS.md with the command line.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from google.protobuf import descriptor_pb2

from batch_server import FEATURES, ROWS, batch, write_model
from model_server import (
    OURS_BIN,
    RATIO_COLUMNS,
    Config,
    Generate,
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
)
from modelrollout.server.grpc_messages import MESSAGES, SERVICE

NAME = "batch"
GHZ_VERSION = "v0.120.0"
TOOLS = Path.home() / ".cache" / "modelrollout" / "tools" / "bin"
HEADER = "## Model server, gRPC against gRPC\n"
CONCURRENCY = 8


def ensure_ghz() -> Path:
    ghz = TOOLS / "ghz"
    if not ghz.exists():
        print(f"building ghz {GHZ_VERSION} from the Go module proxy ...", flush=True)
        env = dict(os.environ, GOBIN=str(TOOLS))
        subprocess.run(
            ["go", "install", f"github.com/bojand/ghz/cmd/ghz@{GHZ_VERSION}"], check=True, env=env
        )
    return ghz


def write_protoset(path: Path) -> Path:
    """The server's message descriptions as a FileDescriptorSet, which ghz reads."""
    proto = descriptor_pb2.FileDescriptorProto()
    MESSAGES["ModelInferRequest"].DESCRIPTOR.file.CopyToProto(proto)
    # The server registers its calls by name only; ghz needs them described.
    service = proto.service.add(name=SERVICE.rsplit(".", 1)[1])
    for call in ("ServerLive", "ServerReady", "ServerMetadata", "ModelReady", "ModelMetadata",
                 "ModelInfer"):  # fmt: skip
        package = SERVICE.rsplit(".", 1)[0]
        service.method.add(
            name=call,
            input_type=f".{package}.{call}Request",
            output_type=f".{package}.{call}Response",
        )
    path.write_bytes(descriptor_pb2.FileDescriptorSet(file=[proto]).SerializeToString())
    return path


def one_row() -> dict[str, object]:
    row = batch()[:1]
    tensor = {"name": "input-0", "datatype": "FP32", "shape": [1, FEATURES]}
    return {
        "model_name": NAME,
        "inputs": [{**tensor, "contents": {"fp32_contents": row.ravel().tolist()}}],
    }


def raw_batch() -> dict[str, object]:
    raw = base64.b64encode(batch().astype("<f4").tobytes()).decode()
    tensor = {"name": "input-0", "datatype": "FP32", "shape": [ROWS, FEATURES]}
    return {"model_name": NAME, "inputs": [tensor], "raw_input_contents": [raw]}


def start_ours(model: dict[str, Path], log: Path) -> tuple[subprocess.Popen[bytes], int, int]:
    port, grpc_port = free_port(), free_port()
    cmd = [
        str(OURS_BIN), "--name", NAME, "--uri", str(model["skops"]), "--host", "127.0.0.1",
        "--port", str(port), "--grpc-port", str(grpc_port), "--log-level", "WARNING",
        "--max-body-bytes", str(64 << 20),
    ]  # fmt: skip
    return launch(cmd, log), port, grpc_port


def start_mlserver(
    mlserver: Path, model: dict[str, Path], tmp: Path, log: Path
) -> tuple[subprocess.Popen[bytes], int, int]:
    port, grpc_port = free_port(), free_port()
    d = tmp / f"mlserver-{port}"
    d.mkdir()
    (d / "model.joblib").write_bytes(model["joblib"].read_bytes())
    settings = {"name": NAME, "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "1"}}  # fmt: skip
    (d / "model-settings.json").write_text(json.dumps(settings))
    server = {
        "host": "127.0.0.1", "http_port": port, "grpc_port": grpc_port,
        "metrics_port": free_port(), "debug": False, "parallel_workers": 0,
        "grpc_max_message_length": 64 << 20,
    }  # fmt: skip
    (d / "settings.json").write_text(json.dumps(server))
    with open(log, "ab") as f:
        proc = subprocess.Popen(
            [str(mlserver), "start", str(d)], stdout=f, stderr=subprocess.STDOUT, cwd=d
        )
    return proc, port, grpc_port


def run_ghz(
    ghz: Path, protoset: Path, data: Path, grpc_port: int, seconds: float
) -> tuple[float, float, float, int]:
    cmd = [
        str(ghz), "--insecure", "--protoset", str(protoset),
        "--call", f"{SERVICE}.ModelInfer", "--data-file", str(data),
        "-c", str(CONCURRENCY), "--connections", str(CONCURRENCY),
        "-z", f"{max(1, round(seconds))}s", "-O", "json", f"127.0.0.1:{grpc_port}",
    ]  # fmt: skip
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    report = json.loads(out)
    percentiles = {p["percentage"]: p["latency"] / 1e6 for p in report["latencyDistribution"]}
    # ghz closes its connections when the time is up: the calls then in flight (one per
    # connection) fail on its side with "use of closed network connection"; not the server's.
    errors = sum(
        n
        for message, n in (report.get("errorDistribution") or {}).items()
        if "use of closed network connection" not in message
    )
    return float(report["rps"]), percentiles[50], percentiles[99], errors


def measure(cfg: Config, ctx: dict[str, object], seconds: float, warmup: float) -> Run:
    tmp: Path = ctx["tmp"]  # type: ignore[assignment]
    model: dict[str, Path] = ctx["model"]  # type: ignore[assignment]
    log = tmp / f"{cfg.kind}.log"
    if cfg.kind == "ours":
        proc, port, grpc_port = start_ours(model, log)
    else:
        proc, port, grpc_port = start_mlserver(ctx["mlserver"], model, tmp, log)  # type: ignore[arg-type]
    data: Path = ctx["data"][cfg.settings["request"]]  # type: ignore[index]
    ghz: Path = ctx["ghz"]  # type: ignore[assignment]
    protoset: Path = ctx["protoset"]  # type: ignore[assignment]
    ready = f"http://127.0.0.1:{port}/v2/models/{NAME}/ready"
    generate: Generate = lambda s: run_ghz(ghz, protoset, data, grpc_port, s)  # noqa: E731
    return load(cfg, proc, ready, generate, seconds, warmup)


def configs() -> list[Config]:
    return [
        Config(f"{who}, {request}", kind, settings={"request": request})
        for request in ("1 row, typed contents", "1,000 x 50, raw contents")
        for who, kind in (("ours", "ours"), ("MLServer tuned, in-process", "mlserver"))
    ]


def report(cfgs: list[Config], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"### {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Command: `{command}`  ",
        f"{machine(args)}, ghz {GHZ_VERSION} {CONCURRENCY} concurrent calls on "
        f"{CONCURRENCY} connections, {args.rounds} alternating rounds x {args.seconds:g} s "
        "(medians). LogisticRegression on 50 features; ours answers predict + predict_proba, "
        f"MLServer predict. Load average before/after: {args.load_before:.1f}/"
        f"{os.getloadavg()[0]:.1f}.",
        "",
        "| configuration | calls/s | p50 ms | p99 ms | memory MB (PSS) | not OK |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c in cfgs:
        lines.append(
            f"| {c.label} | {c.median('rps'):.1f} | {c.median('p50_ms'):.2f} | "
            f"{c.median('p99_ms'):.2f} | {c.median('mem_mb'):.0f} | "
            f"{sum(r.errors for r in c.runs)} |"
        )
    lines += ["", "| request | throughput ours / MLServer | p50 | p99 |", "|---|---:|---:|---:|"]
    for ours, theirs in zip(cfgs[::2], cfgs[1::2], strict=True):
        lines.append(ratio_row(str(ours.settings["request"]), ours, theirs, RATIO_COLUMNS[:3]))
    return "\n".join(lines) + "\n"


def main() -> int:
    p = bench_arguments(__doc__)
    args = p.parse_args()
    ghz = ensure_ghz()
    mlserver = ensure_mlserver(args.venv)
    args.load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-grpc-") as tmp_s:
        tmp = Path(tmp_s)
        data = {}
        for name, message in (("1 row, typed contents", one_row()),
                              ("1,000 x 50, raw contents", raw_batch())):  # fmt: skip
            data[name] = tmp / f"{len(data)}.json"
            data[name].write_text(json.dumps(message))
        ctx: dict[str, object] = {
            "tmp": tmp,
            "model": write_model(tmp / "model"),
            "data": data,
            "ghz": ghz,
            "protoset": write_protoset(tmp / "inference.protoset"),
            "mlserver": mlserver,
        }
        cfgs = configs()
        alternate(cfgs, args.rounds, lambda cfg: measure(cfg, ctx, args.seconds, args.warmup))
    section = report(cfgs, args, command_line())
    publish(section, args, HEADER)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
