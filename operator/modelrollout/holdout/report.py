"""The validation report: overall decision, JSON forms (full and compact) and a readable table."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from modelrollout.holdout.checks import CheckResult
from modelrollout.holdout.thresholds import Verdict

Result = Literal["passed", "failed", "error"]

# The kubelet keeps at most 4096 bytes of a termination message.
TERMINATION_LIMIT = 4096
SUMMARY_VERSION = 1


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: str | None
    uri: str


@dataclass(frozen=True)
class Report:
    result: Result
    message: str
    rows: int = 0
    checks: tuple[CheckResult, ...] = ()
    verdicts: tuple[Verdict, ...] = ()
    candidate: ModelRef | None = None
    stable: ModelRef | None = None

    @property
    def exit_code(self) -> int:
        return {"passed": 0, "failed": 1, "error": 2}[self.result]


def decide(checks: tuple[CheckResult, ...], verdicts: tuple[Verdict, ...]) -> tuple[Result, str]:
    """Pure: the overall result and a one-line message naming what failed."""
    failed_checks = [c.message for c in checks if not c.passed]
    if failed_checks:
        return "failed", "data check failed: " + "; ".join(failed_checks)
    reasons = [r for v in verdicts for r in v.reasons]
    if reasons:
        return "failed", "; ".join(reasons)
    names = ", ".join(v.metric for v in verdicts)
    return "passed", f"all thresholds met ({names})" if names else "data checks passed"


def _num(x: float | None) -> float | None:
    # JSON has no NaN: an undefined value is null.
    return None if x is None or math.isnan(x) else x


def to_dict(report: Report) -> dict[str, Any]:
    def ref(m: ModelRef | None) -> dict[str, Any] | None:
        return None if m is None else {"name": m.name, "version": m.version, "uri": m.uri}

    return {
        "result": report.result,
        "message": report.message,
        "rows": report.rows,
        "candidate": ref(report.candidate),
        "stable": ref(report.stable),
        "checks": [
            {"name": c.name, "passed": c.passed, "message": c.message} for c in report.checks
        ],
        "metrics": [
            {
                "name": v.metric,
                "candidate": _num(v.candidate),
                "stable": _num(v.stable),
                "passed": v.passed,
                "reasons": list(v.reasons),
                "notes": list(v.notes),
            }
            for v in report.verdicts
        ],
    }


def termination_summary(report: Report, limit: int = TERMINATION_LIMIT) -> str:
    """Compact JSON for the pod's termination message, never over `limit` bytes.

    Keys: v (format version), result, message, rows, metrics [[name, candidate, stable, passed]].
    The message is shortened first, then metrics are dropped from the end.
    """
    metrics = [[v.metric, _num(v.candidate), _num(v.stable), v.passed] for v in report.verdicts]
    body: dict[str, Any] = {
        "v": SUMMARY_VERSION,
        "result": report.result,
        "message": report.message,
        "rows": report.rows,
        "metrics": metrics,
    }

    def dump() -> str:
        return json.dumps(body, separators=(",", ":"), ensure_ascii=True)

    text = dump()
    if len(text) > limit:
        overflow = len(text) - limit
        keep = max(80, len(report.message) - overflow - 3)
        body["message"] = report.message[:keep] + "..."
        text = dump()
    while len(text) > limit and body["metrics"]:
        body["metrics"].pop()
        text = dump()
    if len(text) > limit:  # only a pathological message is left: keep the result
        body["message"] = body["message"][:80] + "..."
        text = dump()
    return text


def format_table(report: Report) -> str:
    """What a person reads in the Job's log or a terminal."""
    lines: list[str] = []
    if report.candidate:
        lines.append(f"candidate: {_model_line(report.candidate)}")
    if report.stable:
        lines.append(f"stable:    {_model_line(report.stable)}")
    if report.rows:
        lines.append(f"rows:      {report.rows}")
    if report.checks:
        lines.append("")
        lines.append("data checks")
        for c in report.checks:
            lines.append(f"  {'ok  ' if c.passed else 'FAIL'}  {c.message}")
    if report.verdicts:
        lines.append("")
        header = f"  {'metric':<26}{'candidate':>12}{'stable':>12}{'delta':>12}  verdict"
        lines.append(header)
        for v in report.verdicts:
            stable = "-" if v.stable is None else f"{v.stable:.4f}"
            delta = "-" if v.stable is None else f"{v.candidate - v.stable:+.4f}"
            verdict = "pass" if v.passed else "FAIL"
            lines.append(f"  {v.metric:<26}{v.candidate:>12.4f}{stable:>12}{delta:>12}  {verdict}")
            lines.extend(f"      {r}" for r in (*v.reasons, *v.notes))
    lines.append("")
    lines.append(f"result: {report.result.upper()}: {report.message}")
    return "\n".join(lines)


def _model_line(m: ModelRef) -> str:
    version = f" version {m.version}" if m.version else ""
    return f"{m.name}{version} ({m.uri})"
