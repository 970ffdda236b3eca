"""Live inputs and predictions counted on the reference profile's bins, in a worker's shared
metric row; exported next to the reference's own fractions so that one query holds both.

Bounded: at most MAX_FEATURES features plus the prediction, MAX_BINS bins each (profile.schema).
Families: `model_input_bin_total{feature, bin}` (live counts) and
`model_input_reference_ratio{feature, bin}` (the profile's fraction of each bin); the prediction
is the feature `__prediction__`. `bin` is the bin's index in the profile.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from modelrollout.profile.bins import Binner
from modelrollout.profile.schema import MAX_BINS, MAX_FEATURES, PREDICTION, Profile
from modelrollout.server.frames import Columns, ModelInput

PROFILE_LEN = (MAX_FEATURES + 1) * MAX_BINS
PROFILE_LABELS = ("model", "version", "revision", "feature", "bin")


class ProfileCounts:
    """One worker's counts for a profile (`row`: its view of the shared metric row)."""

    def __init__(
        self,
        row: np.ndarray[Any, Any],
        profile: Profile,
        feature_names: Sequence[str] | None,
        classes: Sequence[Any] | None,
    ) -> None:
        self.profile = profile
        self._cells = row.reshape(MAX_FEATURES + 1, MAX_BINS)
        self._cells[:] = 0.0
        names = list(feature_names) if feature_names is not None else None
        # (slot, binner, where the feature is in a request: its name, or a column index)
        self._features: list[tuple[int, Binner, str, int | None]] = []
        for slot, feature in enumerate(profile.features):
            index = names.index(feature.name) if names and feature.name in names else None
            if names is None:
                index = slot  # a model fitted on a matrix: the profile's columns in order
            self._features.append((slot, Binner(feature), feature.name, index))
        self._prediction: Binner | None = None
        self._class_bins: np.ndarray[Any, Any] | None = None
        if profile.prediction is not None:
            self._prediction = Binner(profile.prediction)
            if classes is not None:  # class index -> bin, computed once
                self._class_bins = self._prediction(np.asarray(classes))

    def observe(
        self,
        x: ModelInput,
        class_indices: np.ndarray[Any, Any] | None,
        values: np.ndarray[Any, Any] | None,
    ) -> None:
        for slot, binner, name, index in self._features:
            column = _column(x, name, index)
            if column is not None:
                self._cells[slot, : binner.feature.bins] += binner.counts(column)
        if self._prediction is None:
            return
        last = MAX_FEATURES
        bins = self._prediction.feature.bins
        if self._class_bins is not None and class_indices is not None:
            picked = self._class_bins[class_indices.ravel()]
            self._cells[last, :bins] += np.bincount(picked, minlength=bins)
        elif self._class_bins is None and values is not None and values.ndim == 1:
            self._cells[last, :bins] += self._prediction.counts(values)


def _column(x: ModelInput, name: str, index: int | None) -> np.ndarray[Any, Any] | None:
    if isinstance(x, Columns):
        return x.arrays.get(name)
    if index is not None and x.ndim == 2 and index < x.shape[1]:
        column: np.ndarray[Any, Any] = x[:, index]
        return column
    return None


def profile_families(
    rows: Sequence[np.ndarray[Any, Any]], labels: Sequence[str], profile: Profile
) -> Iterator[Metric]:
    live = CounterMetricFamily(
        "model_input_bin",
        "Inputs (and predictions, feature __prediction__) per bin of the reference profile.",
        labels=PROFILE_LABELS,
    )
    reference = GaugeMetricFamily(
        "model_input_reference_ratio",
        "The reference profile's fraction of each bin (training or holdout data).",
        labels=PROFILE_LABELS,
    )
    total = np.sum([np.asarray(r).reshape(MAX_FEATURES + 1, MAX_BINS) for r in rows], axis=0)
    tracked = list(enumerate(profile.features))
    if profile.prediction is not None:
        tracked.append((MAX_FEATURES, profile.prediction))
    for slot, feature in tracked:
        name = PREDICTION if slot == MAX_FEATURES else feature.name
        for b, fraction in enumerate(feature.fractions()):
            names = [*labels, name, str(b)]
            live.add_metric(names, float(total[slot, b]))
            reference.add_metric(names, fraction)
    yield live
    yield reference
