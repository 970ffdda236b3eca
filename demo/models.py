"""The demo's two scikit-learn models, trained on the e2e harness' data and saved as skops.

The good one is what the harness serves; the worse one is the same kind of model trained with a
heavy weight on class 1: lower accuracy, and it predicts class 1 far more often, which the
operator sees as prediction drift against the stable revision (no labels needed at serving time).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import skops.io
from sklearn.linear_model import LogisticRegression

from tests.e2e.harness import X, Y, train_model


@dataclass(frozen=True)
class Trained:
    path: Path
    accuracy: float
    share_of_class_1: float


def _describe(path: Path) -> Trained:
    model = skops.io.load(path, trusted=[])
    predicted = model.predict(X)
    return Trained(path, float((predicted == Y).mean()), float(predicted.mean()))


def train_good(path: Path) -> Trained:
    return _describe(train_model(path))


def train_worse(path: Path) -> Trained:
    model = LogisticRegression(max_iter=1000, class_weight={0: 1, 1: 100}).fit(X, Y)
    skops.io.dump(model, path)
    return _describe(path)
