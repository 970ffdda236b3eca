"""The model server's metric contract (docs/architecture.md), kept in one float64 array per worker.

Why not prometheus_client's Counter/Histogram: with ``--workers N`` every worker must
count into memory that any worker's ``/metrics`` can read, and a scrape must see the sum.
Each worker owns one row of a shared array (an anonymous shared mmap made before fork),
writes only its row, and a scrape adds the rows up. Exposition still goes through
prometheus_client with a dedicated CollectorRegistry.

Buckets:
- ``model_infer_request_duration_seconds``: 0.5 ms .. 10 s, dense below 100 ms, where
  scikit-learn models live.
- ``model_prediction_value``: 0.05 steps from 0 to 1 (class probabilities, scores), then
  coarse steps up to 10,000 for regressor outputs. No negative bounds: Prometheus client
  libraries drop ``_sum``/``_count`` from histograms that have them, and the mean
  (sum/count) is the most useful drift signal for a regressor; negative values all land
  in the ``le="0.0"`` bucket.
"""

from __future__ import annotations

import math
import mmap
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from modelrollout.profile.schema import Profile
from modelrollout.server.buckets import DURATION_BUCKETS, cumulative
from modelrollout.server.feedback_metrics import FEEDBACK_LEN, FeedbackCounts, feedback_families
from modelrollout.server.profile_metrics import PROFILE_LEN, ProfileCounts, profile_families
from modelrollout.server.shadow_metrics import SHADOW_LEN, ShadowCounts, shadow_families

VALUE_BUCKETS: tuple[float, ...] = (
    0.0,
    *(round(0.05 * i, 2) for i in range(1, 21)),
    2.5,
    5.0,
    10.0,
    100.0,
    1000.0,
    10000.0,
)
CLASS_CAP = 50  # distinct class labels exported; the rest count as "__other__"
OTHER_CLASS = "__other__"
LABELS = ("model", "version", "revision")

# Row layout: [success, failure, ready, duration buckets.., duration sum,
#              value buckets.., value sum, class slots.., feedback (server.feedback_metrics),
#              reference-profile bins (server.profile_metrics), shadow traffic
#              (server.shadow_metrics)]
_SUCCESS, _FAILURE, _READY = 0, 1, 2
_DUR = 3
_DUR_SUM = _DUR + len(DURATION_BUCKETS) + 1
_VAL = _DUR_SUM + 1
_VAL_SUM = _VAL + len(VALUE_BUCKETS) + 1
_CLS = _VAL_SUM + 1
_FEEDBACK = _CLS + CLASS_CAP + 1
_PROFILE = _FEEDBACK + FEEDBACK_LEN
_SHADOW = _PROFILE + PROFILE_LEN
ROW_LEN = _SHADOW + SHADOW_LEN


def shared_buffer(workers: int) -> mmap.mmap:
    """Zeroed memory shared with processes forked later (MAP_SHARED | MAP_ANONYMOUS)."""
    return mmap.mmap(-1, max(1, workers) * ROW_LEN * 8)


class ServerMetrics(Collector):
    def __init__(
        self,
        model: str,
        version: str,
        revision: str,
        buffer: Any = None,
        worker: int = 0,
    ) -> None:
        self.labels = [model, version, revision]
        self.revision = revision
        if buffer is None:
            self._all = np.zeros((1, ROW_LEN))
        else:
            self._all = np.frombuffer(buffer, dtype=np.float64).reshape(-1, ROW_LEN)
        self._row = self._all[worker]
        self.feedback = FeedbackCounts(self._row[_FEEDBACK:_PROFILE])
        self.profile: ProfileCounts | None = None
        self.shadow = ShadowCounts(self._row[_SHADOW:], revision)
        self._classes: list[str] = []
        self._dur_bounds = list(DURATION_BUCKETS)
        self._val_bounds = np.asarray(VALUE_BUCKETS)
        self._val_list = list(VALUE_BUCKETS)
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def set_classes(self, classes: Sequence[Any] | None) -> None:
        """Class labels, in the order of the model's ``classes_`` (slot i = class i)."""
        labels = [str(c) for c in (classes or [])]
        self._classes = labels[:CLASS_CAP] + ([OTHER_CLASS] if len(labels) > CLASS_CAP else [])

    def set_profile(
        self,
        profile: Profile | None,
        feature_names: Sequence[str] | None,
        classes: Sequence[Any] | None,
    ) -> None:
        """Count inputs on a reference profile's bins (None: no profile, nothing counted)."""
        self.profile = None
        if profile is not None:
            row = self._row[_PROFILE:_SHADOW]
            self.profile = ProfileCounts(row, profile, feature_names, classes)

    def set_ready(self, ready: bool) -> None:
        self._row[_READY] = 1.0 if ready else 0.0

    def observe_request(self, ok: bool, seconds: float) -> None:
        row = self._row
        row[_SUCCESS if ok else _FAILURE] += 1
        row[_DUR + bisect_left(self._dur_bounds, seconds)] += 1
        row[_DUR_SUM] += seconds

    def observe_classes(self, class_indices: np.ndarray[Any, Any]) -> None:
        """Count predictions by their index in ``classes_``."""
        if class_indices.size == 1:  # one row: plain indexing beats bincount
            self._row[_CLS + min(int(class_indices.flat[0]), CLASS_CAP)] += 1
            return
        slots = np.minimum(class_indices.ravel(), CLASS_CAP)
        counts = np.bincount(slots, minlength=CLASS_CAP + 1)
        self._row[_CLS : _CLS + CLASS_CAP + 1] += counts

    def observe_values(self, values: np.ndarray[Any, Any]) -> None:
        if values.size == 1:  # one row: plain indexing beats searchsorted + bincount
            v = float(values.flat[0])
            if math.isfinite(v):
                self._row[_VAL + bisect_left(self._val_list, v)] += 1
                self._row[_VAL_SUM] += v
            return
        flat = values.ravel().astype(np.float64)
        flat = flat[np.isfinite(flat)]
        idx = np.searchsorted(self._val_bounds, flat)
        self._row[_VAL:_VAL_SUM] += np.bincount(idx, minlength=len(VALUE_BUCKETS) + 1)
        self._row[_VAL_SUM] += float(flat.sum())

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterable[Metric]:
        return list(self._families())

    def _families(self) -> Iterator[Metric]:
        total = self._all.sum(axis=0)
        ready = float(self._row[_READY])  # this worker's view
        lbl = self.labels
        for name, idx, doc in (
            ("model_infer_request_success", _SUCCESS, "Inference requests answered."),
            ("model_infer_request_failure", _FAILURE, "Inference requests that failed."),
        ):
            c = CounterMetricFamily(name, doc, labels=LABELS)
            c.add_metric(lbl, float(total[idx]))
            yield c
        yield _histogram(
            "model_infer_request_duration_seconds",
            "Time to answer an inference request.",
            lbl,
            DURATION_BUCKETS,
            total[_DUR:_DUR_SUM],
            float(total[_DUR_SUM]),
        )
        yield _histogram(
            "model_prediction_value",
            "Predicted value (regressors) or top class probability (classifiers).",
            lbl,
            VALUE_BUCKETS,
            total[_VAL:_VAL_SUM],
            float(total[_VAL_SUM]),
        )
        if self._classes:
            c = CounterMetricFamily(
                "model_prediction_class",
                "Predictions per class label.",
                labels=(*LABELS, "class"),
            )
            for i, cls in enumerate(self._classes):
                c.add_metric([*lbl, cls], float(total[_CLS + i]))
            yield c
        g = GaugeMetricFamily(
            "model_ready", "1 when the model is loaded and served.", labels=LABELS
        )
        g.add_metric(lbl, ready)
        yield g
        yield from feedback_families(
            [r[_FEEDBACK:_PROFILE] for r in self._all], lbl[0], self._classes
        )
        if self.profile is not None:
            rows = [r[_PROFILE:_SHADOW] for r in self._all]
            yield from profile_families(rows, lbl, self.profile.profile)
        yield from shadow_families([r[_SHADOW:] for r in self._all], lbl[0])


def _histogram(
    name: str,
    doc: str,
    labels: list[str],
    bounds: Sequence[float],
    counts: np.ndarray[Any, Any],
    total: float,
) -> HistogramMetricFamily:
    h = HistogramMetricFamily(name, doc, labels=LABELS)
    h.add_metric(labels, cumulative(bounds, counts), total)
    return h
