"""Evaluation metrics by their scikit-learn names (api.ValidationMetricName): one table."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn import metrics as skm


class MetricError(ValueError):
    """A metric cannot be computed (unknown name, or the model lacks predict_proba)."""


@dataclass(frozen=True)
class Predictions:
    """What one model produced on the holdout rows."""

    labels: Any
    proba: Any | None  # shape (n, n_classes), columns in the order of `classes`
    classes: Sequence[Any] | None


def _average(p: Predictions, y_true: Any, average: str | None) -> dict[str, Any]:
    if average is not None:
        return {"average": average, "zero_division": 0}
    # The plain names (f1, precision, recall): binary problems score the positive class the way
    # scikit-learn orders it (classes_[1], the same column roc_auc reads); else macro.
    labels = list(p.classes) if p.classes is not None else sorted(np.unique(y_true).tolist())
    if len(labels) == 2:
        return {"average": "binary", "pos_label": labels[1], "zero_division": 0}
    return {"average": "macro", "zero_division": 0}


def _proba(p: Predictions, metric: str) -> tuple[np.ndarray, list[Any]]:
    if p.proba is None or p.classes is None:
        raise MetricError(f"{metric} needs predict_proba, which the model lacks")
    return np.asarray(p.proba, dtype=float), list(p.classes)


def _roc_auc(y: Any, p: Predictions) -> float:
    proba, classes = _proba(p, "roc_auc")
    if proba.shape[1] == 2:
        return float(skm.roc_auc_score(np.asarray(y) == classes[1], proba[:, 1]))
    return float(skm.roc_auc_score(y, proba, multi_class="ovr", labels=classes))


def _log_loss(y: Any, p: Predictions) -> float:
    proba, classes = _proba(p, "log_loss")
    return float(skm.log_loss(y, proba, labels=classes))


def _brier(y: Any, p: Predictions) -> float:
    proba, classes = _proba(p, "brier_score")
    onehot = (np.asarray(y)[:, None] == np.asarray(classes)[None, :]).astype(float)
    if proba.shape[1] == 2:
        return float(np.mean((onehot[:, 1] - proba[:, 1]) ** 2))
    # Multiclass: mean over rows of the summed squared error over classes (Brier's original form).
    return float(np.mean(np.sum((onehot - proba) ** 2, axis=1)))


def _classifier(fn: Callable[..., Any], average: str | None) -> Callable[[Any, Predictions], float]:
    return lambda y, p: float(fn(y, p.labels, **_average(p, y, average)))


def _plain(fn: Callable[..., Any]) -> Callable[[Any, Predictions], float]:
    return lambda y, p: float(fn(y, p.labels))


@dataclass(frozen=True)
class MetricDef:
    needs_proba: bool
    fn: Callable[[Any, Predictions], float]


METRICS: dict[str, MetricDef] = {
    "accuracy": MetricDef(False, _plain(skm.accuracy_score)),
    "balanced_accuracy": MetricDef(False, _plain(skm.balanced_accuracy_score)),
    "precision": MetricDef(False, _classifier(skm.precision_score, None)),
    "precision_macro": MetricDef(False, _classifier(skm.precision_score, "macro")),
    "precision_weighted": MetricDef(False, _classifier(skm.precision_score, "weighted")),
    "recall": MetricDef(False, _classifier(skm.recall_score, None)),
    "recall_macro": MetricDef(False, _classifier(skm.recall_score, "macro")),
    "recall_weighted": MetricDef(False, _classifier(skm.recall_score, "weighted")),
    "f1": MetricDef(False, _classifier(skm.f1_score, None)),
    "f1_macro": MetricDef(False, _classifier(skm.f1_score, "macro")),
    "f1_weighted": MetricDef(False, _classifier(skm.f1_score, "weighted")),
    "roc_auc": MetricDef(True, _roc_auc),
    "log_loss": MetricDef(True, _log_loss),
    "brier_score": MetricDef(True, _brier),
    "r2": MetricDef(False, _plain(skm.r2_score)),
    "explained_variance": MetricDef(False, _plain(skm.explained_variance_score)),
    "mean_absolute_error": MetricDef(False, _plain(skm.mean_absolute_error)),
    "mean_squared_error": MetricDef(False, _plain(skm.mean_squared_error)),
    "root_mean_squared_error": MetricDef(False, _plain(skm.root_mean_squared_error)),
    "median_absolute_error": MetricDef(False, _plain(skm.median_absolute_error)),
    "mean_absolute_percentage_error": MetricDef(False, _plain(skm.mean_absolute_percentage_error)),
}


def metric_def(name: str) -> MetricDef:
    try:
        return METRICS[name]
    except KeyError:
        raise MetricError(f"unknown metric {name!r} (known: {', '.join(METRICS)})") from None


def compute(name: str, y_true: Any, predictions: Predictions) -> float:
    """The value of metric `name`; NaN when it is undefined on these rows (e.g. one class only)."""
    fn = metric_def(name).fn
    try:
        return fn(y_true, predictions)
    except MetricError:
        raise
    except ValueError:
        # scikit-learn refuses e.g. roc_auc with a single class present: no value, not a crash.
        return float("nan")
