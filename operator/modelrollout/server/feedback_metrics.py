"""Feedback counters, per revision that made the predictions, in a worker's shared metric row.

A replica counts the ground truth it receives under the revision named in the token, which is
often not its own (server.feedback_token), so the revision is a label taken from the token.
Its cardinality is bounded by `REVISION_SLOTS` slots per worker; when a ninth revision arrives
the least recently used slot is reused (a counter reset for that series, which Prometheus's
rate() takes in its stride). Stable, candidate and a few earlier revisions fit.

Slot layout (float64): [last use, labelled, correct, confusion CONFUSION_CAP^2,
absolute-error buckets.., absolute-error sum, version and revision as bytes].
Confusion counts exist for classifiers with at most CONFUSION_CAP classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from modelrollout.server.buckets import cumulative
from modelrollout.server.feedback_token import MAX_LABEL_BYTES

REVISION_SLOTS = 8
CONFUSION_CAP = 10
ERROR_BUCKETS: tuple[float, ...] = (
    0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 1000.0, 10000.0,
)  # fmt: skip
_ERROR_BOUNDS = np.asarray(ERROR_BUCKETS)
FEEDBACK_LABELS = ("model", "version", "revision")

_USE, _LABELLED, _CORRECT, _CONF = 0, 1, 2, 3
_ERR = _CONF + CONFUSION_CAP * CONFUSION_CAP
_ERR_SUM = _ERR + len(ERROR_BUCKETS) + 1
_NAME = _ERR_SUM + 1
_NAME_FLOATS = 2 * (MAX_LABEL_BYTES + 1) // 8  # version and revision, each 1 + 63 bytes
SLOT_LEN = _NAME + _NAME_FLOATS
# The worker's use clock, then the slots.
FEEDBACK_LEN = 1 + REVISION_SLOTS * SLOT_LEN

Label = tuple[str, str]  # (version, revision)


class FeedbackCounts:
    """One worker's feedback counters, in `row` (a view into its shared metric row)."""

    def __init__(self, row: np.ndarray[Any, Any]) -> None:
        self._row = row
        self._slots = row[1:].reshape(REVISION_SLOTS, SLOT_LEN)

    def observe_classes(
        self, label: Label, predicted: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]
    ) -> None:
        slot = self._slot(label)
        slot[_LABELLED] += len(truth)
        slot[_CORRECT] += int(np.count_nonzero(predicted == truth))
        inside = (predicted < CONFUSION_CAP) & (truth < CONFUSION_CAP)
        cells = predicted[inside].astype(np.intp) * CONFUSION_CAP + truth[inside].astype(np.intp)
        slot[_CONF:_ERR] += np.bincount(cells, minlength=CONFUSION_CAP * CONFUSION_CAP)

    def observe_values(
        self, label: Label, predicted: np.ndarray[Any, Any], truth: np.ndarray[Any, Any]
    ) -> None:
        slot = self._slot(label)
        errors = np.abs(predicted - truth)
        slot[_LABELLED] += len(truth)
        idx = np.searchsorted(_ERROR_BOUNDS, errors)
        slot[_ERR:_ERR_SUM] += np.bincount(idx, minlength=len(ERROR_BUCKETS) + 1)
        slot[_ERR_SUM] += float(errors.sum())

    def _slot(self, label: Label) -> np.ndarray[Any, Any]:
        self._row[0] += 1
        used = [i for i in range(REVISION_SLOTS) if self._slots[i, _USE] > 0]
        index = next((i for i in used if _label(self._slots[i]) == label), None)
        if index is None:
            free = [i for i in range(REVISION_SLOTS) if i not in used]
            index = free[0] if free else int(np.argmin(self._slots[:, _USE]))
            self._slots[index] = 0.0
            _write_label(self._slots[index], label)
        self._slots[index, _USE] = self._row[0]
        slot: np.ndarray[Any, Any] = self._slots[index]
        return slot


def feedback_families(
    rows: Sequence[np.ndarray[Any, Any]], model: str, classes: Sequence[str]
) -> Iterator[Metric]:
    """The feedback metrics, summed over the workers' rows by (version, revision)."""
    totals: dict[Label, np.ndarray[Any, Any]] = {}
    for row in rows:
        for slot in row[1:].reshape(REVISION_SLOTS, SLOT_LEN):
            if slot[_USE] > 0:
                label = _label(slot)
                totals[label] = totals.get(label, 0.0) + slot
    if not totals:
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
    for (version, revision), slot in sorted(totals.items()):
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


def _label(slot: np.ndarray[Any, Any]) -> Label:
    raw = slot[_NAME:].view(np.uint8).tobytes()
    half = MAX_LABEL_BYTES + 1
    return _unpack(raw[:half]), _unpack(raw[half:])


def _write_label(slot: np.ndarray[Any, Any], label: Label) -> None:
    raw = b"".join(_pack(text) for text in label)
    slot[_NAME:].view(np.uint8)[: len(raw)] = np.frombuffer(raw, dtype=np.uint8)


def _pack(text: str) -> bytes:
    data = text.encode()[:MAX_LABEL_BYTES]
    return bytes([len(data)]) + data.ljust(MAX_LABEL_BYTES, b"\0")


def _unpack(raw: bytes) -> str:
    return raw[1 : 1 + raw[0]].decode(errors="replace")
