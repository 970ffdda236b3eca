"""`make demo-kwok` (the quick variant on fake nodes) run non-interactively: both outcomes read
from the ModelDeployments' status, and no process of the demo left behind once it has exited.
tests/node_teardown/test_demo_on_node.py runs `make demo` itself, on the real node."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SUMMARY = "DEMO-SUMMARY "


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes naming `text` (the demo's workdir is in every server's,
    Prometheus' and the control plane's arguments)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in args:
            found.append(args)
    return found


def run_demo(workdir: Path, *variant: str) -> dict[str, Any]:
    """`python -m demo.run` with `variant`'s options; its DEMO-SUMMARY."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo.run",
            *variant,
            "--non-interactive",
            "--workdir",
            str(workdir),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    print(proc.stdout[-10000:], proc.stderr[-5000:])  # shown when the test fails
    assert proc.returncode == 0
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith(SUMMARY))
    summary: dict[str, Any] = json.loads(line.removeprefix(SUMMARY))
    return summary


def assert_one_promoted_one_rolled_back(summary: dict[str, Any]) -> None:
    by_ns = {md["namespace"]: md for md in summary["modelDeployments"]}
    promoted, rolled_back = by_ns["demo-promote"], by_ns["demo-rollback"]

    assert promoted["phase"] == "Healthy"
    assert promoted["stableRevision"] == promoted["candidateRevision"]
    assert promoted["lastOutcome"] == "Promoted"

    assert rolled_back["phase"] == "Degraded"
    assert rolled_back["degradedReason"] == "AnalysisFailed"
    assert rolled_back["stableRevision"] != rolled_back["candidateRevision"]
    assert rolled_back["lastOutcome"] == "RolledBack"
    assert "metric drift value" in rolled_back["message"]


def test_demo_promotes_one_canary_and_rolls_back_the_other(tmp_path: Path) -> None:
    workdir = tmp_path / "demo"
    assert_one_promoted_one_rolled_back(run_demo(workdir, "--kwok"))
    assert processes_mentioning(str(workdir)) == []
