"""Shadow-traffic counters of the stable's server, per candidate revision (the `revision` label
is the candidate's: the revision being judged; `stable_revision` the mirroring server's own), in
bounded slots (server.revision_slots).

Families: `model_shadow_requests_total{result}` (compared, dropped: the queue was full, failed:
the candidate did not answer 200), `model_shadow_rows_total` (rows compared),
`model_shadow_agreed_rows_total` (identical predicted labels), `model_shadow_proba_rows_total`
and `model_shadow_proba_abs_diff_total` (sum over rows of the mean |p_stable - p_candidate|),
`model_shadow_value_rows_total`, `model_shadow_abs_diff_total` and `model_shadow_rel_diff_total`
(regressors), and `model_shadow_latency_seconds` (the candidate's answer time, as seen by the
stable, on the request-duration buckets of server.buckets).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric

from modelrollout.server.buckets import DURATION_BUCKETS, cumulative
from modelrollout.server.revision_slots import RevisionSlots, row_length, totals

if TYPE_CHECKING:
    from modelrollout.server.shadow import Agreement

SHADOW_SLOTS = 2  # the candidate being shadowed, and the one before it
RESULTS = ("compared", "dropped", "failed")
# `revision`: the candidate (the revision judged); `stable_revision`: the mirroring server's own.
LABELS = ("model", "stable_revision", "revision")

_RESULT = {name: i for i, name in enumerate(RESULTS)}
_ROWS, _AGREED, _PROBA_ROWS, _PROBA_DIFF, _VALUE_ROWS, _ABS, _REL = range(3, 10)
_LAT = 10
_LAT_SUM = _LAT + len(DURATION_BUCKETS) + 1
_COUNTERS = _LAT_SUM + 1
SHADOW_LEN = row_length(SHADOW_SLOTS, _COUNTERS)


class ShadowCounts:
    """One worker's shadow counters, in `row` (a view into its shared metric row)."""

    def __init__(self, row: np.ndarray[Any, Any], stable_revision: str) -> None:
        self._slots = RevisionSlots(row, SHADOW_SLOTS, _COUNTERS)
        self._bounds = list(DURATION_BUCKETS)
        self._stable = stable_revision

    def count(self, revision: str, result: str) -> None:
        self._slots.counters((self._stable, revision))[_RESULT[result]] += 1

    def observe_latency(self, revision: str, seconds: float) -> None:
        counters = self._slots.counters((self._stable, revision))
        counters[_LAT + bisect_left(self._bounds, seconds)] += 1
        counters[_LAT_SUM] += seconds

    def observe(self, revision: str, agreement: Agreement) -> None:
        counters = self._slots.counters((self._stable, revision))
        counters[_ROWS] += agreement.rows
        counters[_AGREED] += agreement.agreed
        counters[_PROBA_ROWS] += agreement.proba_rows
        counters[_PROBA_DIFF] += agreement.proba_abs_diff
        counters[_VALUE_ROWS] += agreement.value_rows
        counters[_ABS] += agreement.abs_diff
        counters[_REL] += agreement.rel_diff


def shadow_families(rows: Sequence[np.ndarray[Any, Any]], model: str) -> Iterator[Metric]:
    summed = totals(rows, SHADOW_SLOTS, _COUNTERS)
    if not summed:
        return
    requests = CounterMetricFamily(
        "model_shadow_requests",
        "Mirrored requests by result: compared, dropped (queue full), failed (no 200).",
        labels=(*LABELS, "result"),
    )
    counters = {
        index: CounterMetricFamily(name, doc, labels=LABELS)
        for index, name, doc in (
            (_ROWS, "model_shadow_rows", "Rows whose answers were compared."),
            (_AGREED, "model_shadow_agreed_rows", "Compared rows with the same predicted label."),
            (_PROBA_ROWS, "model_shadow_proba_rows", "Compared rows with probabilities."),
            (_PROBA_DIFF, "model_shadow_proba_abs_diff", "Sum of mean |p_stable - p_candidate|."),
            (_VALUE_ROWS, "model_shadow_value_rows", "Compared rows of numeric predictions."),
            (_ABS, "model_shadow_abs_diff", "Sum of |stable - candidate| (regressors)."),
            (_REL, "model_shadow_rel_diff", "Sum of |stable - candidate| / |stable|."),
        )
    }
    latency = HistogramMetricFamily(
        "model_shadow_latency_seconds",
        "The candidate's answer time to mirrored requests, as the stable saw it.",
        labels=LABELS,
    )
    for (stable, revision), c in sorted(summed.items()):
        names = [model, stable, revision]
        for result in RESULTS:
            requests.add_metric([*names, result], float(c[_RESULT[result]]))
        for index, family in counters.items():
            family.add_metric(names, float(c[index]))
        latency.add_metric(
            names, cumulative(DURATION_BUCKETS, c[_LAT:_LAT_SUM]), float(c[_LAT_SUM])
        )
    yield requests
    yield from counters.values()
    yield latency
