"""Building a reference profile from a DataFrame (training or holdout data) and, optionally, the
model's predictions on it."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from modelrollout.profile.bins import Binner, text
from modelrollout.profile.schema import (
    MAX_BINS,
    MAX_FEATURES,
    BinKind,
    FeatureProfile,
    Profile,
)

DEFAULT_BINS = 10


class ProfileError(ValueError):
    """The data cannot be profiled; the message says why in one line."""


def build_profile(
    frame: pd.DataFrame,
    predictions: np.ndarray[Any, Any] | None = None,
    bins: int = DEFAULT_BINS,
    top: int = MAX_BINS - 1,
) -> Profile:
    if len(frame) == 0:
        raise ProfileError("the data has no rows")
    if len(frame.columns) > MAX_FEATURES:
        raise ProfileError(
            f"{len(frame.columns)} features; a profile holds at most {MAX_FEATURES} "
            "(choose the columns to watch)"
        )
    features = [feature_profile(str(c), frame[c].to_numpy(), bins, top) for c in frame.columns]
    prediction = None
    if predictions is not None:
        prediction = feature_profile("prediction", np.asarray(predictions).ravel(), bins, top)
    return Profile(features=features, prediction=prediction)


def feature_profile(name: str, values: np.ndarray[Any, Any], bins: int, top: int) -> FeatureProfile:
    if not 2 <= bins <= MAX_BINS - 1 or not 1 <= top <= MAX_BINS - 1:
        raise ProfileError(f"bins and top must be between 2 and {MAX_BINS - 1}")
    if values.dtype.kind in "fiu":
        numbers = values.astype(np.float64)
        numbers = numbers[np.isfinite(numbers)]
        if numbers.size == 0:
            raise ProfileError(f"feature {name!r} has no finite values")
        inner = np.quantile(numbers, np.linspace(0.0, 1.0, bins + 1)[1:-1])
        edges = [float(e) for e in np.unique(inner)]
        kind, categories = BinKind.NUMERIC, []
    else:
        common = Counter(text(v) for v in values.ravel()).most_common(top)
        kind, edges, categories = BinKind.CATEGORICAL, [], [c for c, _ in common]
    shape = FeatureProfile(
        name=name,
        kind=kind,
        edges=edges,
        categories=categories,
        counts=[0.0] * (len(edges or categories) + 1),
    )
    counts = Binner(shape).counts(values if kind is BinKind.CATEGORICAL else numbers)
    return shape.model_copy(update={"counts": [float(c) for c in counts]})
