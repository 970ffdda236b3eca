"""Small real models and holdout files for the validation tests (unit and integration)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import skops.io
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.linear_model import LinearRegression, LogisticRegression

FEATURES = ["age", "income", "score"]


def classification_frame(n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    logits = 2.0 * x[:, 0] - 1.5 * x[:, 1] + 0.5 * x[:, 2]
    y = (logits + rng.normal(scale=0.5, size=n) > 0).astype(int)
    df = pd.DataFrame(x, columns=FEATURES)
    df["label"] = y
    return df


def regression_frame(n: int = 400, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    y = 3.0 * x[:, 0] - 2.0 * x[:, 1] + rng.normal(scale=0.3, size=n)
    df = pd.DataFrame(x, columns=FEATURES)
    df["price"] = y
    return df


def save(model: Any, path: Path) -> dict[str, Any]:
    """Dump as skops; return the wire form of a ModelSpec pointing at it (sha256 pinned)."""
    skops.io.dump(model, path)
    return {
        "name": path.stem,
        "version": "1",
        "uri": path.as_uri(),
        "format": "skops",
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }


def classifiers(tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(good, bad): a logistic regression and a majority-class dummy, both fitted on DataFrames."""
    train = classification_frame(seed=10)
    good = LogisticRegression().fit(train[FEATURES], train["label"])
    bad = DummyClassifier(strategy="prior").fit(train[FEATURES], train["label"])
    return save(good, tmp / "good.skops"), save(bad, tmp / "bad.skops")


def regressors(tmp: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    train = regression_frame(seed=11)
    good = LinearRegression().fit(train[FEATURES], train["price"])
    bad = DummyRegressor().fit(train[FEATURES], train["price"])
    return save(good, tmp / "good-reg.skops"), save(bad, tmp / "bad-reg.skops")


def write_csv(df: pd.DataFrame, path: Path) -> str:
    df.to_csv(path, index=False)
    return path.as_uri()


def classification_input(
    tmp: Path, candidate: dict[str, Any], stable: dict[str, Any] | None, **extra: Any
) -> dict[str, Any]:
    """A validator input (wire form): accuracy and roc_auc must not be worse than stable's."""
    uri = write_csv(classification_frame(), tmp / "holdout.csv")
    spec: dict[str, Any] = {
        "dataset": {"uri": uri},
        "target": "label",
        "metrics": [
            {"name": "accuracy", "min": 0.7, "minAbsoluteChange": 0.0},
            {"name": "roc_auc", "minRelativeChange": -0.01},
        ],
        "dataChecks": {"minRows": 100, "maxMissingFraction": 0.1},
        "candidate": candidate,
    }
    if stable is not None:
        spec["stable"] = stable
    spec.update(extra)
    return spec
