"""The metric contract: names, labels, buckets, class cap, workers summed."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families

from modelrollout.server.metrics import (
    CLASS_CAP,
    OTHER_CLASS,
    VALUE_BUCKETS,
    ServerMetrics,
    shared_buffer,
)

LABELS = {"model": "m", "version": "2", "revision": "r1"}


def _samples(metrics: ServerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _key(name: str, **extra: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted({**LABELS, **extra}.items())))


def test_request_counters_and_duration_histogram() -> None:
    m = ServerMetrics("m", "2", "r1")
    m.observe_request(True, 0.0007)
    m.observe_request(True, 0.003)
    m.observe_request(False, 0.2)
    s = _samples(m)
    assert s[_key("model_infer_request_success_total")] == 2
    assert s[_key("model_infer_request_failure_total")] == 1
    h = "model_infer_request_duration_seconds"
    assert s[_key(h + "_bucket", le="0.0005")] == 0
    assert s[_key(h + "_bucket", le="0.001")] == 1
    assert s[_key(h + "_bucket", le="0.005")] == 2
    assert s[_key(h + "_bucket", le="+Inf")] == 3
    assert s[_key(h + "_count")] == 3
    assert abs(s[_key(h + "_sum")] - 0.2037) < 1e-9


def test_prediction_value_buckets_cover_probabilities_and_regression() -> None:
    assert [b for b in VALUE_BUCKETS if 0 < b <= 1] == [round(0.05 * i, 2) for i in range(1, 21)]
    m = ServerMetrics("m", "2", "r1")
    m.observe_values(np.array([0.97]))
    m.observe_values(np.array([0.51, 0.52, -3.0, 1e9, np.nan]))
    s = _samples(m)
    v = "model_prediction_value"
    assert s[_key(v + "_bucket", le="0.0")] == 1
    assert s[_key(v + "_bucket", le="0.5")] == 1
    assert s[_key(v + "_bucket", le="0.55")] == 3
    assert s[_key(v + "_bucket", le="1.0")] == 4
    assert s[_key(v + "_bucket", le="+Inf")] == 5
    assert s[_key(v + "_count")] == 5
    assert s[_key(v + "_sum")] == pytest.approx(0.97 + 0.51 + 0.52 - 3.0 + 1e9)


def test_class_counts_are_capped_with_an_overflow_label() -> None:
    m = ServerMetrics("m", "2", "r1")
    m.set_classes([f"c{i}" for i in range(CLASS_CAP + 10)])
    m.observe_classes(np.array([0, 0, 1, CLASS_CAP + 3, CLASS_CAP + 9]))
    s = _samples(m)
    c = "model_prediction_class_total"
    assert s[_key(c, **{"class": "c0"})] == 2
    assert s[_key(c, **{"class": "c1"})] == 1
    assert s[_key(c, **{"class": OTHER_CLASS})] == 2
    assert len([k for k in s if k[0] == c]) == CLASS_CAP + 1


def test_regressors_export_no_class_series() -> None:
    s = _samples(ServerMetrics("m", "2", "r1"))
    assert not [k for k in s if k[0] == "model_prediction_class_total"]


def test_workers_share_one_buffer_and_scrapes_see_the_sum() -> None:
    buf = shared_buffer(2)
    w0 = ServerMetrics("m", "2", "r1", buf, worker=0)
    w1 = ServerMetrics("m", "2", "r1", buf, worker=1)
    w0.observe_request(True, 0.001)
    w1.observe_request(True, 0.001)
    w1.observe_request(False, 0.001)
    for w in (w0, w1):
        s = _samples(w)
        assert s[_key("model_infer_request_success_total")] == 2
        assert s[_key("model_infer_request_failure_total")] == 1
