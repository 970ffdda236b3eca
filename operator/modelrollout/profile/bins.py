"""Putting values into a profile's bins: the same code builds a profile and counts live inputs."""

from __future__ import annotations

from typing import Any

import numpy as np

from modelrollout.profile.schema import BinKind, FeatureProfile


class Binner:
    """Bin indices of one feature's values (0 .. bins-1)."""

    def __init__(self, feature: FeatureProfile) -> None:
        self.feature = feature
        self._edges = np.asarray(feature.edges, dtype=np.float64)
        self._index = {c: i for i, c in enumerate(feature.categories)}
        self._other = len(feature.categories)

    def __call__(self, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        if self.feature.kind is BinKind.NUMERIC:
            numbers = np.asarray(values, dtype=np.float64).ravel()
            # (e[i-1], e[i]]: a value equal to an edge belongs to the bin it closes.
            out: np.ndarray[Any, Any] = np.searchsorted(self._edges, numbers, side="left")
            return out
        return np.fromiter(
            (self._index.get(text(v), self._other) for v in np.asarray(values).ravel()),
            dtype=np.intp,
        )

    def counts(self, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        return np.bincount(self(values), minlength=self.feature.bins)


def text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return str(value.item())
    return str(value)
