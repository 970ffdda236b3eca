"""PromQL for the built-in metrics and the templating of custom queries (Prometheus provider).

Built-ins read the model server's metric contract (server/metrics.py). They are written once for
ALL rollouts: `sum by (namespace, name, revision) (...)` over every series that has a revision,
so one query per built-in per interval serves 10 or 100 rollouts alike (see analysis/batch.py).
The provider picks each rollout's series out of the result by (namespace, name, revision).

The label names are those Prometheus attaches (scrape target labels for namespace and name; the
server's own `revision` label); `LabelScheme` lets an installation rename them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass

from modelrollout.api import BuiltinMetric

SUCCESS = "model_infer_request_success_total"
FAILURE = "model_infer_request_failure_total"
DURATION_BUCKET = "model_infer_request_duration_seconds_bucket"
PREDICTION_CLASS = "model_prediction_class_total"
PREDICTION_VALUE_BUCKET = "model_prediction_value_bucket"
# Ground truth reported later; `revision` is the revision that made the prediction.
FEEDBACK_LABELLED = "model_feedback_labelled_total"
FEEDBACK_CORRECT = "model_feedback_correct_total"
FEEDBACK_ERROR_SUM = "model_feedback_absolute_error_sum"
FEEDBACK_ERROR_COUNT = "model_feedback_absolute_error_count"
# The stable's comparison of a candidate's answers to mirrored requests; `revision` is the
# candidate's.
SHADOW_ROWS = "model_shadow_rows_total"
SHADOW_AGREED = "model_shadow_agreed_rows_total"
SHADOW_LATENCY_BUCKET = "model_shadow_latency_seconds_bucket"
# Live inputs on the bins of the reference profile, and the profile's own fractions.
INPUT_BIN = "model_input_bin_total"
INPUT_REFERENCE = "model_input_reference_ratio"

# rate() needs at least two scrapes inside its window.
MIN_RATE_WINDOW = 4.0


@dataclass(frozen=True)
class LabelScheme:
    namespace: str = "namespace"
    name: str = "name"
    revision: str = "revision"

    @property
    def by(self) -> str:
        return f"{self.namespace}, {self.name}, {self.revision}"

    @property
    def selector(self) -> str:
        """Every series that belongs to some rollout."""
        return f'{self.revision}!=""'


DEFAULT_LABELS = LabelScheme()

SeriesKey = tuple[str, str, str]  # (namespace, name, revision)


def duration(seconds: float) -> str:
    """A PromQL duration: whole milliseconds (PromQL has no fractional seconds)."""
    return f"{max(1, round(seconds * 1000))}ms"


def rate_window(window: float) -> float:
    return max(window, MIN_RATE_WINDOW)


def _counter_rate(metric: str, labels: LabelScheme, window: str) -> str:
    return f"sum by ({labels.by}) (rate({metric}{{{labels.selector}}}[{window}]))"


def request_rate(window: float, labels: LabelScheme = DEFAULT_LABELS) -> str:
    """Requests per second (answered + failed) per revision."""
    w = duration(rate_window(window))
    ok = _counter_rate(SUCCESS, labels, w)
    failed = _counter_rate(FAILURE, labels, w)
    # `or ... * 0`: a revision without a failure series still gets a number.
    return f"({ok} or {failed} * 0) + ({failed} or {ok} * 0)"


def error_rate(window: float, labels: LabelScheme = DEFAULT_LABELS) -> str:
    """failures / all requests per revision; NaN (no data) when there were no requests."""
    w = duration(rate_window(window))
    ok = _counter_rate(SUCCESS, labels, w)
    failed = _counter_rate(FAILURE, labels, w)
    failed_or_zero = f"({failed} or {ok} * 0)"
    return f"{failed_or_zero} / (({ok} or {failed} * 0) + {failed_or_zero})"


def _increase(metric: str, labels: LabelScheme, window: str) -> str:
    return f"sum by ({labels.by}) (increase({metric}{{{labels.selector}}}[{window}]))"


def labelled_counts(window: float, labels: LabelScheme = DEFAULT_LABELS) -> str:
    """Predictions whose ground truth arrived in the window, per revision that made them."""
    return _increase(FEEDBACK_LABELLED, labels, duration(rate_window(window)))


def shadow_rows(window: float, labels: LabelScheme = DEFAULT_LABELS) -> str:
    """Rows of mirrored requests whose answers were compared, per candidate revision."""
    return _increase(SHADOW_ROWS, labels, duration(rate_window(window)))


def shadow_agreement(window: float, labels: LabelScheme = DEFAULT_LABELS) -> str:
    """Share of compared rows the candidate labelled as the stable did."""
    w = duration(rate_window(window))
    return f"{_increase(SHADOW_AGREED, labels, w)} / {_increase(SHADOW_ROWS, labels, w)}"


def shadow_latency_quantile(
    window: float, quantile: float = 0.99, labels: LabelScheme = DEFAULT_LABELS
) -> str:
    """The candidate's answer time to mirrored requests (as the stable saw it) per candidate
    revision, or else a revision's own request duration: the stable's, to compare with."""
    w = duration(rate_window(window))
    mirrored = (
        f"histogram_quantile({quantile}, sum by ({labels.by}, le) "
        f"(rate({SHADOW_LATENCY_BUCKET}{{{labels.selector}}}[{w}])))"
    )
    return f"{mirrored} or {latency_quantile(window, quantile, labels)}"


def sample_counts(
    builtin: BuiltinMetric, window: float, labels: LabelScheme = DEFAULT_LABELS
) -> str:
    """What minSamples counts for a built-in of SAMPLES_OF."""
    if builtin is BuiltinMetric.SHADOW_AGREEMENT:
        return shadow_rows(window, labels)
    return labelled_counts(window, labels)


def accuracy(window: float, labels: LabelScheme = DEFAULT_LABELS) -> str:
    """correct / labelled among the labels that arrived in the window; NaN when none did."""
    w = duration(rate_window(window))
    return f"{_increase(FEEDBACK_CORRECT, labels, w)} / {_increase(FEEDBACK_LABELLED, labels, w)}"


def mean_absolute_error(window: float, labels: LabelScheme = DEFAULT_LABELS) -> str:
    """Mean |prediction - truth| among the labels that arrived in the window."""
    w = duration(rate_window(window))
    total = _increase(FEEDBACK_ERROR_SUM, labels, w)
    return f"{total} / {_increase(FEEDBACK_ERROR_COUNT, labels, w)}"


def input_bins(window: float, labels: LabelScheme = DEFAULT_LABELS) -> str:
    """Live inputs per feature and bin of the reference profile, per revision."""
    w = duration(rate_window(window))
    return f"sum by ({labels.by}, feature, bin) (increase({INPUT_BIN}{{{labels.selector}}}[{w}]))"


def input_reference(labels: LabelScheme = DEFAULT_LABELS) -> str:
    """The reference profile's fraction per feature and bin (the same on every replica)."""
    return f"max by ({labels.by}, feature, bin) ({INPUT_REFERENCE}{{{labels.selector}}})"


def latency_quantile(
    window: float, quantile: float = 0.99, labels: LabelScheme = DEFAULT_LABELS
) -> str:
    """The quantile of request duration (seconds) per revision, from the histogram."""
    w = duration(rate_window(window))
    return (
        f"histogram_quantile({quantile}, sum by ({labels.by}, le) "
        f"(rate({DURATION_BUCKET}{{{labels.selector}}}[{w}])))"
    )


def prediction_counts(window: float, labels: LabelScheme = DEFAULT_LABELS) -> str:
    """Predictions per class and per value bucket per revision, in ONE query.

    Series with a `class` label are class counts; series with `le` are cumulative buckets.
    """
    w = duration(rate_window(window))
    names = f"{PREDICTION_CLASS}|{PREDICTION_VALUE_BUCKET}"
    return (
        f"sum by ({labels.by}, class, le) "
        f'(increase({{__name__=~"{names}", {labels.selector}}}[{w}]))'
    )


def builtin_query(
    builtin: BuiltinMetric, window: float, labels: LabelScheme = DEFAULT_LABELS
) -> str:
    if builtin is BuiltinMetric.ERROR_RATE:
        return error_rate(window, labels)
    if builtin is BuiltinMetric.LATENCY_P99:
        return latency_quantile(window, 0.99, labels)
    if builtin is BuiltinMetric.REQUEST_RATE:
        return request_rate(window, labels)
    if builtin is BuiltinMetric.ACCURACY:
        return accuracy(window, labels)
    if builtin is BuiltinMetric.MEAN_ABSOLUTE_ERROR:
        return mean_absolute_error(window, labels)
    if builtin is BuiltinMetric.SHADOW_AGREEMENT:
        return shadow_agreement(window, labels)
    if builtin is BuiltinMetric.SHADOW_LATENCY_P99:
        return shadow_latency_quantile(window, 0.99, labels)
    return prediction_counts(window, labels)


def key_of(series_labels: Mapping[str, str], labels: LabelScheme = DEFAULT_LABELS) -> SeriesKey:
    return (
        series_labels.get(labels.namespace, ""),
        series_labels.get(labels.name, ""),
        series_labels.get(labels.revision, ""),
    )


@dataclass(frozen=True)
class Distribution:
    """Prediction counts of one revision: per class, or per cumulative `le` bucket."""

    classes: Mapping[str, float]
    buckets: Mapping[float, float]


def distributions(
    samples: list[tuple[Mapping[str, str], float]], labels: LabelScheme = DEFAULT_LABELS
) -> dict[SeriesKey, Distribution]:
    """Group the result of `prediction_counts` by revision."""
    classes: dict[SeriesKey, dict[str, float]] = {}
    buckets: dict[SeriesKey, dict[float, float]] = {}
    for series, value in samples:
        if math.isnan(value):
            continue
        key = key_of(series, labels)
        if "class" in series:
            classes.setdefault(key, {})[series["class"]] = value
        elif "le" in series:
            buckets.setdefault(key, {})[float(series["le"])] = value
    return {
        k: Distribution(classes.get(k, {}), buckets.get(k, {})) for k in set(classes) | set(buckets)
    }


_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
TEMPLATE_VARIABLES = ("namespace", "name", "canary", "stable", "revision", "interval")


class TemplateError(ValueError):
    """A custom query names a placeholder that does not exist or has no value."""


def render(template: str, variables: Mapping[str, str | None]) -> str:
    """Replace {{namespace}}, {{name}}, {{canary}}, {{stable}}, {{revision}}, {{interval}}."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in TEMPLATE_VARIABLES:
            raise TemplateError(f"unknown placeholder {{{{{name}}}}}")
        value = variables.get(name)
        if value is None:
            raise TemplateError(f"placeholder {{{{{name}}}}} has no value here")
        return value

    return _PLACEHOLDER.sub(substitute, template)


def template_variables(
    namespace: str,
    name: str,
    canary: str,
    stable: str | None,
    window: float,
    revision: str | None = None,
) -> dict[str, str | None]:
    return {
        "namespace": namespace,
        "name": name,
        "canary": canary,
        "stable": stable,
        "revision": revision or canary,
        "interval": duration(window),
    }
