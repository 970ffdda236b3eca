"""Query texts and templating of custom PromQL."""

from __future__ import annotations

import pytest

from modelrollout.analysis.queries import (
    LabelScheme,
    TemplateError,
    distributions,
    duration,
    error_rate,
    latency_quantile,
    prediction_counts,
    render,
    template_variables,
)


def test_durations_are_whole_milliseconds() -> None:
    assert duration(5) == "5000ms"
    assert duration(0.25) == "250ms"


def test_builtins_are_split_by_rollout_labels() -> None:
    q = error_rate(30)
    assert q.count("sum by (namespace, name, revision)") == 6
    assert "model_infer_request_failure_total" in q and "[30000ms]" in q
    assert 'revision!=""' in q
    p99 = latency_quantile(2)  # a short window is widened: rate() needs two scrapes
    assert p99.startswith("histogram_quantile(0.99, sum by (namespace, name, revision, le)")
    assert "[4000ms]" in p99
    custom = error_rate(30, LabelScheme(namespace="ns", name="md", revision="rev"))
    assert "sum by (ns, md, rev)" in custom and 'rev!=""' in custom
    assert "model_prediction_class_total|model_prediction_value_bucket" in prediction_counts(30)


def test_render_all_placeholders() -> None:
    variables = template_variables("ml", "fraud", "c1", "s1", 30, revision="s1")
    text = render(
        '{ns="{{namespace}}",n="{{ name }}",r="{{revision}}",c="{{canary}}",s="{{stable}}"}'
        "[{{interval}}]",
        variables,
    )
    assert text == '{ns="ml",n="fraud",r="s1",c="c1",s="s1"}[30000ms]'
    assert render("{{revision}}", template_variables("a", "b", "c1", None, 1)) == "c1"


def test_render_rejects_unknown_or_missing() -> None:
    with pytest.raises(TemplateError, match="unknown placeholder"):
        render("{{pod}}", template_variables("a", "b", "c", "s", 1))
    with pytest.raises(TemplateError, match="no value"):
        render("{{stable}}", template_variables("a", "b", "c", None, 1))


def test_distributions_group_classes_and_buckets() -> None:
    labels = {"namespace": "ml", "name": "f", "revision": "r"}
    samples = [
        ({**labels, "class": "0"}, 3.0),
        ({**labels, "class": "1"}, 7.0),
        ({**labels, "le": "0.5"}, 2.0),
        ({**labels, "le": "+Inf"}, 10.0),
        ({**labels, "class": "2"}, float("nan")),
    ]
    d = distributions(samples)[("ml", "f", "r")]
    assert d.classes == {"0": 3.0, "1": 7.0}
    assert d.buckets == {0.5: 2.0, float("inf"): 10.0}
