"""Evaluate the candidate and the stable model on the same holdout rows (no I/O here)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from modelrollout.holdout.checks import CheckRules, model_features, run_checks
from modelrollout.holdout.metrics import MetricError, Predictions, compute, metric_def
from modelrollout.holdout.report import ModelRef, Report, decide
from modelrollout.holdout.thresholds import Threshold, Verdict, judge
from modelrollout.server.fetch import one_line


class EvaluationError(Exception):
    """The evaluation cannot be carried out (not a verdict on the model): one line."""


@dataclass(frozen=True)
class ModelUnderTest:
    role: str  # "candidate" | "stable"
    ref: ModelRef
    estimator: Any


def evaluate(
    df: pd.DataFrame,
    rules: CheckRules,
    thresholds: Sequence[Threshold],
    candidate: ModelUnderTest,
    stable: ModelUnderTest | None,
) -> Report:
    """Data checks first; only clean data reaches the models. Raises EvaluationError."""
    models = [m for m in (candidate, stable) if m is not None]
    rules = replace(rules, model_features=model_features([m.estimator for m in models]))
    checks = run_checks(df, rules)
    base = Report(
        result="failed",
        message="",
        rows=len(df),
        checks=checks.results,
        candidate=candidate.ref,
        stable=stable.ref if stable else None,
    )
    if not checks.passed:
        result, message = decide(checks.results, ())
        return replace(base, result=result, message=message)

    # Rows without a target cannot be scored; the missing-value check above bounds how many.
    rows = df[df[rules.target].notna()]
    y = rows[rules.target].to_numpy()
    needs_proba = any(metric_def(t.metric).needs_proba for t in thresholds)
    preds = {m.role: _predict(m, rows, rules.target, needs_proba) for m in models}

    verdicts: list[Verdict] = []
    for t in thresholds:
        values = {role: _compute(t.metric, y, p, role) for role, p in preds.items()}
        verdicts.append(judge(t, values["candidate"], values.get("stable")))
    result, message = decide(checks.results, tuple(verdicts))
    return replace(base, result=result, message=message, rows=len(rows), verdicts=tuple(verdicts))


def _features(model: Any, rows: pd.DataFrame, target: str) -> pd.DataFrame:
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return rows[[str(n) for n in names]]
    return rows.drop(columns=[target])


def _predict(m: ModelUnderTest, rows: pd.DataFrame, target: str, needs_proba: bool) -> Predictions:
    x = _features(m.estimator, rows, target)
    try:
        labels = np.asarray(m.estimator.predict(x))
        proba = None
        if needs_proba and hasattr(m.estimator, "predict_proba"):
            proba = np.asarray(m.estimator.predict_proba(x))
    except Exception as exc:  # any estimator error: report it, never crash the gate
        raise EvaluationError(f"{m.role} model failed to predict: {one_line(exc)}") from None
    classes = getattr(m.estimator, "classes_", None)
    class_list = None if classes is None else list(classes)
    return Predictions(labels=labels, proba=proba, classes=class_list)


def _compute(metric: str, y: Any, p: Predictions, role: str) -> float:
    try:
        return compute(metric, y, p)
    except MetricError as exc:
        raise EvaluationError(f"{role} model: {exc}") from None
