"""Benchmark: modelrollout-server against MLServer on the same scikit-learn models.

Run with ``make bench-server`` (or ``.venv/bin/python benchmarks/model_server.py``).

- Models: a LogisticRegression and a RandomForestClassifier (100 trees) fitted on
  ``make_classification(n_features=20)``; ours loads the skops file, MLServer the same
  estimator as joblib (what mlserver-sklearn reads).
- MLServer 1.7.1 + mlserver-sklearn come from PyPI into their own venv
  (~/.cache/modelrollout/bench-venv, override with MODELROLLOUT_BENCH_VENV): MLServer pins
  many packages, so it stays out of the project's .venv. uvloop is held below 0.22 there
  (0.22 breaks MLServer 1.7.1's worker start-up).
- Load: wrk (Debian package) with 8 connections, one V2 request body (1 row, FP64)
  posted to /v2/models/<name>/infer, after a warm-up. Runs alternate A/B per round.
  Ours answers with predict + predict_proba and updates its metrics; MLServer answers
  with predict only (its default), so ours does at least as much work per request.
- Configurations: ours with 1 and 2 worker processes; MLServer at its defaults
  (parallel_workers=1, access log on) and tuned (debug/access log off, gzip off,
  parallel_workers=0 i.e. inference in the server process, or parallel_workers=2).
- Memory: PSS summed over the server's process tree after the run (shared pages of
  forked workers count once).

Results are appended to benchmarks/RESULTS.md with the command line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import joblib
import numpy as np
import skops.io
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "RESULTS.md"
MLSERVER_VERSION = "1.7.1"
DEFAULT_VENV = Path.home() / ".cache" / "modelrollout" / "bench-venv"
OURS_BIN = Path(sys.executable).with_name("modelrollout-server")
TREE = "sklearn.tree._tree.Tree"
CONNECTIONS = 8
# Compared in the ratio tables: throughput, p50, p99, memory.
RATIO_COLUMNS = ("rps", "p50_ms", "p99_ms", "mem_mb")


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    mem_mb: float
    errors: int


@dataclass
class Config:
    label: str
    kind: str  # "ours" | "mlserver"
    workers: int = 1
    settings: dict[str, object] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    runs: list[Run] = field(default_factory=list)

    def median(self, attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in self.runs))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_mlserver(venv: Path) -> Path:
    mlserver = venv / "bin" / "mlserver"
    if mlserver.exists():
        return mlserver
    print(f"installing MLServer {MLSERVER_VERSION} into {venv} ...", flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(
        # uvloop 0.22 made get_event_loop() raise without a running loop, which kills
        # MLServer 1.7.1's inference workers at start; 0.21 is what it was released with.
        [
            *pip,
            f"mlserver=={MLSERVER_VERSION}",
            f"mlserver-sklearn=={MLSERVER_VERSION}",
            "uvloop<0.22",
        ],
        check=True,
    )
    return mlserver


def write_models(root: Path) -> dict[str, dict[str, Path]]:
    x, y = make_classification(n_samples=2000, n_features=20, random_state=0)
    estimators = {
        "lr": LogisticRegression(max_iter=1000).fit(x, y),
        "rf": RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y),
    }
    out: dict[str, dict[str, Path]] = {}
    for name, est in estimators.items():
        d = root / name
        d.mkdir()
        skops.io.dump(est, d / "model.skops")
        joblib.dump(est, d / "model.joblib")
        out[name] = {"skops": d / "model.skops", "joblib": d / "model.joblib", "dir": d}
    return out


def request_body(n_features: int = 20) -> str:
    row = np.random.default_rng(7).normal(size=n_features).round(6).tolist()
    tensor = {"name": "input-0", "shape": [1, n_features], "datatype": "FP64", "data": row}
    return json.dumps({"inputs": [tensor]})


def wrk_script(tmp: Path, body: str) -> Path:
    path = tmp / "post.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = [[{body}]]\n"
    )
    return path


def start_ours(
    model: dict[str, Path], name: str, cfg: Config, log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    cmd = [
        str(OURS_BIN), "--name", name, "--uri", str(model["skops"]), "--trusted-type", TREE,
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(cfg.workers), *cfg.extra_args,
        "--version", "1", "--revision", "bench", "--log-level", "WARNING",
    ]  # fmt: skip
    with open(log, "ab") as f:
        proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)
    return proc, port


def start_mlserver(
    mlserver: Path,
    model: dict[str, Path],
    name: str,
    settings: dict[str, object],
    tmp: Path,
    log: Path,
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    d = tmp / f"mlserver-{name}-{port}"
    d.mkdir()
    shutil.copy(model["joblib"], d / "model.joblib")
    (d / "model-settings.json").write_text(
        json.dumps(
            {
                "name": name,
                "implementation": "mlserver_sklearn.SKLearnModel",
                "parameters": {"uri": "./model.joblib", "version": "1"},
            }
        )
    )
    full = {
        "host": "127.0.0.1",
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        **settings,
    }
    (d / "settings.json").write_text(json.dumps(full))
    with open(log, "ab") as f:
        proc = subprocess.Popen(
            [str(mlserver), "start", str(d)], stdout=f, stderr=subprocess.STDOUT, cwd=d
        )
    return proc, port


def wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def tree_memory_mb(pid: int) -> float:
    """Memory of a process and all its descendants: the sum of their PSS (proportional set
    size), so pages that forked workers share are counted once, not once per worker."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total_kb, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total_kb += int(line.split()[1])
        except OSError:
            pass
    return total_kb / 1024


def _ms(text: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise ValueError(text)
    return float(m.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]


def run_wrk(url: str, script: Path, seconds: float) -> tuple[float, float, float, int]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{max(1, round(seconds))}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errs = re.search(r"Socket errors:.*", out)
    return rps, p50, p99, (int(bad.group(1)) if bad else 0) + (1 if errs else 0)


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


# A load generator run for `seconds`: (requests/s, p50 ms, p99 ms, errors).
Generate = Callable[[float], tuple[float, float, float, int]]


def load(
    cfg: Config,
    proc: subprocess.Popen[bytes],
    ready_url: str,
    generate: Generate,
    seconds: float,
    warmup: float,
) -> Run:
    """Wait for the server, warm it up, measure, take its memory, stop it; record the run."""
    try:
        wait_ready(proc, ready_url)
        generate(warmup)
        rps, p50, p99, errors = generate(seconds)
        mem = tree_memory_mb(proc.pid)
    finally:
        stop(proc)
    run = Run(rps, p50, p99, mem, errors)
    cfg.runs.append(run)
    print(
        f"  {cfg.label:44} {rps:8.1f}/s  p50 {p50:7.2f} ms  p99 {p99:7.2f} ms  "
        f"mem {mem:6.0f} MB  errors {errors}",
        flush=True,
    )
    return run


def with_wrk(url: str, script: Path) -> Generate:
    return lambda seconds: run_wrk(url, script, seconds)


def launch(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as f:
        return subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT)


def alternate(cfgs: list[Config], rounds: int, measure_one: Callable[[Config], Run]) -> None:
    """Each configuration once per round, in reverse order every other round, so that neither
    side always runs first."""
    for rnd in range(rounds):
        print(f"round {rnd + 1}/{rounds}", flush=True)
        for cfg in cfgs if rnd % 2 == 0 else list(reversed(cfgs)):
            measure_one(cfg)


def ratio_row(first: str, a: Config, b: Config, columns: tuple[str, ...]) -> str:
    """A table row of a / b medians for the named Run fields."""
    cells = [ratio(a.median(c), b.median(c)) for c in columns]
    return f"| {first} | " + " | ".join(cells) + " |"


def bench_arguments(doc: str) -> argparse.ArgumentParser:
    """The options every server benchmark takes."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--rounds", type=int, default=2, help="alternating A/B rounds")
    p.add_argument(
        "--venv", type=Path, default=Path(os.environ.get("MODELROLLOUT_BENCH_VENV", DEFAULT_VENV))
    )
    p.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    return p


def machine(args: argparse.Namespace) -> str:
    return (
        f"Machine: {os.cpu_count()} cores ({platform.processor() or platform.machine()}), "
        f"Python {platform.python_version()}"
    )


def measure(
    cfg: Config, ctx: dict[str, object], model_name: str, seconds: float, warmup: float
) -> Run:
    model = ctx["models"][model_name]  # type: ignore[index]
    tmp: Path = ctx["tmp"]  # type: ignore[assignment]
    log = tmp / f"{cfg.kind}.log"
    if cfg.kind == "ours":
        proc, port = start_ours(model, model_name, cfg, log)
    else:
        proc, port = start_mlserver(ctx["mlserver"], model, model_name, cfg.settings, tmp, log)  # type: ignore[arg-type]
    base = f"http://127.0.0.1:{port}/v2/models/{model_name}"
    script: Path = ctx["script"]  # type: ignore[assignment]
    return load(cfg, proc, f"{base}/ready", with_wrk(f"{base}/infer", script), seconds, warmup)


def configs() -> list[Config]:
    tuned = {"debug": False, "gzip_enabled": False}
    return [
        Config("ours, 1 worker", "ours", 1),
        Config("ours, 1 worker, --no-fast-path", "ours", 1, extra_args=("--no-fast-path",)),
        Config("MLServer defaults", "mlserver", settings={}),
        Config("ours, 2 workers", "ours", 2),
        Config("MLServer tuned, in-process", "mlserver", settings={**tuned, "parallel_workers": 0}),
        Config("MLServer tuned, 2 parallel workers", "mlserver",
               settings={**tuned, "parallel_workers": 2}),
    ]  # fmt: skip


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "n/a"


def report(results: dict[str, list[Config]], args: argparse.Namespace, command: str) -> str:
    lines = [
        f"### {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        "",
        f"Command: `{command}`  ",
        f"{machine(args)}, wrk {CONNECTIONS} connections, "
        f"{args.rounds} alternating rounds x {args.seconds:g} s per configuration "
        f"(medians), 1-row FP64 request, 20 features. Load average before/after: "
        f"{args.load_before:.1f}/{os.getloadavg()[0]:.1f} (other jobs share the machine; "
        "tail latencies suffer most).",
        "",
        "Ours runs LogisticRegression and forests through verified fast paths for "
        "`predict_proba` (`modelrollout.server.fastpath`: checked against scikit-learn at "
        "load); the `--no-fast-path` row calls the estimator's own `predict_proba` on every "
        "request, as MLServer calls `predict`.",
        "",
        "| model | configuration | req/s | p50 ms | p99 ms | memory MB (PSS) | non-2xx |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for model, cfgs in results.items():
        for c in cfgs:
            lines.append(
                f"| {model} | {c.label} | {c.median('rps'):.0f} | {c.median('p50_ms'):.2f} | "
                f"{c.median('p99_ms'):.2f} | {c.median('mem_mb'):.0f} | "
                f"{sum(r.errors for r in c.runs)} |"
            )
    lines += [
        "",
        "Ratios ours / MLServer (throughput: higher is better; latency: lower is better):",
        "",
        "| model | comparison | throughput | p50 | p99 | memory |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for model, cfgs in results.items():
        by = {c.label: c for c in cfgs}
        ours1, ours2 = by["ours, 1 worker"], by["ours, 2 workers"]
        plain = by["ours, 1 worker, --no-fast-path"]
        ml_default = by["MLServer defaults"]
        ml_tuned = by["MLServer tuned, in-process"]
        ml_cfgs = [c for c in cfgs if c.kind == "mlserver"]
        ours_best = max((ours1, ours2), key=lambda c: c.median("rps"))
        ml_best = max(ml_cfgs, key=lambda c: c.median("rps"))
        for name, a, b in (
            ("1 worker vs MLServer defaults", ours1, ml_default),
            ("1 worker vs MLServer tuned (in-process)", ours1, ml_tuned),
            ("1 worker --no-fast-path vs MLServer tuned (in-process)", plain, ml_tuned),
            (f"best ({ours_best.label}) vs best MLServer ({ml_best.label})", ours_best, ml_best),
        ):
            lines.append(ratio_row(f"{model} | {name}", a, b, RATIO_COLUMNS))
    return "\n".join(lines) + "\n"


HEADER = "## Model server: modelrollout-server vs MLServer\n"


def append_results(section: str, header: str = HEADER) -> None:
    """Put a run into its section of RESULTS.md, right after the section's header, so the
    newest run comes first."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\n"
    if header not in text:
        text = text.rstrip("\n") + "\n\n" + header + "\n"
    head, tail = text.split(header, 1)
    RESULTS.write_text(head + header + "\n" + section + "\n" + tail.lstrip("\n"))


def publish(section: str, args: argparse.Namespace, header: str = HEADER) -> None:
    """Print a run's section and, unless --no-write, put it into RESULTS.md."""
    print(section)
    if not args.no_write:
        append_results(section, header)
        print(f"appended to {RESULTS.relative_to(REPO)}")


def command_line() -> str:
    """How this run was started, for the results (make's target when make started it)."""
    if os.environ.get("MAKELEVEL"):
        return "make bench-server"
    python = (
        Path(sys.executable).relative_to(REPO).as_posix()
        if sys.executable.startswith(str(REPO))
        else "python"
    )
    return " ".join([python, *sys.argv])


def main() -> int:
    p = bench_arguments(__doc__)
    p.add_argument("--models", default="lr,rf")
    args = p.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is missing: scripts/ensure-debian-tools.sh wrk:wrk", file=sys.stderr)
        return 2
    mlserver = ensure_mlserver(args.venv)
    args.load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-server-") as tmp_s:
        tmp = Path(tmp_s)
        ctx: dict[str, object] = {
            "tmp": tmp,
            "models": write_models(tmp),
            "script": wrk_script(tmp, request_body()),
            "mlserver": mlserver,
        }
        results: dict[str, list[Config]] = {}
        for model in args.models.split(","):
            cfgs = configs()
            results[model] = cfgs
            print(f"model {model}", flush=True)
            alternate(
                cfgs,
                args.rounds,
                lambda cfg, m=model: measure(cfg, ctx, m, args.seconds, args.warmup),
            )
    command = command_line()
    section = report(results, args, command)
    publish(section, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
