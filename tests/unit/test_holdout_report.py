"""The report's decision and its compact termination-message form."""

from __future__ import annotations

import json
import math

from modelrollout.holdout.checks import CheckResult
from modelrollout.holdout.report import (
    TERMINATION_LIMIT,
    Report,
    decide,
    format_table,
    termination_summary,
)
from modelrollout.holdout.thresholds import Verdict


def verdict(name: str, passed: bool, candidate: float = 0.9) -> Verdict:
    reasons = () if passed else (f"{name} {candidate} < min 0.95",)
    return Verdict(name, candidate, 0.8, passed, reasons)


def test_decide_data_checks_come_first() -> None:
    checks = (CheckResult("missing:x", False, "column 'x': 30.0% missing values"),)
    result, message = decide(checks, (verdict("accuracy", False),))
    assert result == "failed"
    assert message == "data check failed: column 'x': 30.0% missing values"


def test_decide_pass_and_fail() -> None:
    assert decide((), (verdict("f1", True),)) == ("passed", "all thresholds met (f1)")
    assert decide((), (verdict("f1", True), verdict("r2", False))) == (
        "failed",
        "r2 0.9 < min 0.95",
    )


def test_termination_summary_stays_under_the_kubelet_limit() -> None:
    many = tuple(verdict(f"metric_{i}_" + "x" * 40, False) for i in range(200))
    report = Report("failed", "; ".join(r for v in many for r in v.reasons), 10, (), many)
    text = termination_summary(report)
    assert len(text.encode()) <= TERMINATION_LIMIT
    body = json.loads(text)
    assert body["result"] == "failed"
    assert body["message"].endswith("...")
    assert 0 < len(body["metrics"]) < 200


def test_nan_becomes_null_and_table_shows_it() -> None:
    v = Verdict("roc_auc", math.nan, None, False, ("roc_auc of the candidate is undefined",))
    report = Report("failed", "roc_auc of the candidate is undefined", 5, (), (v,))
    assert json.loads(termination_summary(report))["metrics"] == [["roc_auc", None, None, False]]
    assert "roc_auc" in format_table(report)
