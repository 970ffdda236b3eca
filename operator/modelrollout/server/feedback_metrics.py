"""Feedback counters, per revision that made the predictions, in a worker's shared metric row.

A replica counts the ground truth it receives under the revision named in the token, which is
often not its own (server.feedback_token), so the revision is a label taken from the token.
Its cardinality is bounded by `REVISION_SLOTS` slots per worker; when a ninth revision arrives
the least recently used slot is reused (a counter reset for that series, which Prometheus's
rate() takes in its stride). Stable, candidate and a few earlier revisions fit.

Counters per slot (server.revision_slots): labelled, correct, confusion CONFUSION_CAP^2,
absolute-error buckets and sum. Confusion counts exist for classifiers with at most
CONFUSION_CAP classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from modelrollout.server.buckets import cumulative
from modelrollout.server.revision_slots import Label, RevisionSlots, row_length, totals

REVISION_SLOTS = 8
CONFUSION_CAP = 10
ERROR_BUCKETS: tuple[float, ...] = (
    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 1000.0, 10000.0,
)  # fmt: skip
_ERROR_BOUNDS = np.asarray(ERROR_BUCKETS)
FEEDBACK_LABELS = ("model", "version", "revision")

# A slot's counters: [labelled, correct, confusion CONFUSION_CAP^2, error buckets.., error sum]
_LABELLED, _CORRECT, _CONF = 0, 1, 2
_ERR = _CONF + CONFUSION_CAP * CONFUSION_CAP
_ERR_SUM = _ERR + len(ERROR_BUCKETS) + 1
_COUNTERS = _ERR_SUM + 1
FEEDBACK_LEN = row_length(REVISION_SLOTS, _COUNTERS)


class FeedbackCounts:
    """One worker's feedback counters, in `row` (a view into its shared metric row)."""

    def __init__(self, row: np.ndarray[Any, Any]) -> None:
        self._slots = RevisionSlots(row, REVISION_SLOTS, _COUNTERS)

    def observe_classes(
        self, label: Label, predicted: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]
    ) -> None:
        slot = self._slots.counters(label)
        slot[_LABELLED] += len(truth)
        slot[_CORRECT] += int(np.count_nonzero(predicted == truth))
        inside = (predicted < CONFUSION_CAP) & (truth < CONFUSION_CAP)
        cells = predicted[inside].astype(np.intp) * CONFUSION_CAP + truth[inside].astype(np.intp)
        slot[_CONF:_ERR] += np.bincount(cells, minlength=CONFUSION_CAP * CONFUSION_CAP)

    def observe_values(
        self, label: Label, predicted: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]
    ) -> None:
        slot = self._slots.counters(label)
        errors = np.abs(predicted - truth)
        slot[_LABELLED] += len(truth)
        idx = np.searchsorted(_ERROR_BOUNDS, errors)
        slot[_ERR:_ERR_SUM] += np.bincount(idx, minlength=len(ERROR_BUCKETS) + 1)
        slot[_ERR_SUM] += float(errors.sum())


def feedback_families(
    rows: Sequence[np.ndarray[Any, Any]], model: str, classes: Sequence[str]
) -> Iterator[Metric]:
    """The feedback metrics, summed over the workers' rows by (version, revision)."""
    summed = totals(rows, REVISION_SLOTS, _COUNTERS)
    if not summed:
        return
    labelled = CounterMetricFamily(
        "model_feedback_labelled",
        "Predictions whose ground truth was reported, by the revision that made them.",
        labels=FEEDBACK_LABELS,
    )
    correct = CounterMetricFamily(
        "model_feedback_correct",
        "Classifier predictions that matched the reported ground truth.",
        labels=FEEDBACK_LABELS,
    )
    confusion = CounterMetricFamily(
        "model_feedback_confusion",
        f"Labelled predictions by predicted and actual class (up to {CONFUSION_CAP} classes).",
        labels=(*FEEDBACK_LABELS, "predicted", "actual"),
    )
    error = HistogramMetricFamily(
        "model_feedback_absolute_error",
        "|prediction - truth| of labelled regressor predictions (the mean: _sum / _count).",
        labels=FEEDBACK_LABELS,
    )
    for (version, revision), slot in sorted(summed.items()):
        names = [model, version, revision]
        labelled.add_metric(names, float(slot[_LABELLED]))
        if classes:
            correct.add_metric(names, float(slot[_CORRECT]))
            for cell in np.flatnonzero(slot[_CONF:_ERR]):
                p, a = divmod(int(cell), CONFUSION_CAP)
                confusion.add_metric([*names, classes[p], classes[a]], float(slot[_CONF + cell]))
        else:
            buckets = cumulative(ERROR_BUCKETS, slot[_ERR:_ERR_SUM])
            error.add_metric(names, buckets, float(slot[_ERR_SUM]))
    yield labelled
    yield from ([correct, confusion] if classes else [error])
