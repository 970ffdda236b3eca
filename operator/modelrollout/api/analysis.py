"""spec.analysis: how the candidate is judged from Prometheus metrics."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from modelrollout.api.common import (
    ApiModel,
    DnsLabel,
    Duration,
    ObjectName,
    PathError,
    WireBool,
    WireFloat,
    WireInt,
    cel,
    exactly_one,
)

MAX_METRICS = 16
MAX_QUERY_LENGTH = 4096


class DataPolicy(StrEnum):
    """What a measurement without data (or with an error) does to the rollout."""

    PAUSE = "pause"
    FAIL = "fail"
    IGNORE = "ignore"


class BuiltinMetric(StrEnum):
    """Metrics computed from the model server's metric contract."""

    ERROR_RATE = "errorRate"
    LATENCY_P99 = "latencyP99"
    PREDICTION_DRIFT = "predictionDrift"
    REQUEST_RATE = "requestRate"
    # From ground truth that clients reported later (the server's feedback endpoint).
    ACCURACY = "accuracy"
    MEAN_ABSOLUTE_ERROR = "meanAbsoluteError"
    # Live inputs against the reference profile shipped beside the model (--profile-uri).
    INPUT_DRIFT = "inputDrift"
    # The candidate's answers to mirrored requests against the stable's (a shadow step).
    SHADOW_AGREEMENT = "shadowAgreement"
    # The candidate's answer time to mirrored requests as the stable saw it (seconds, p99);
    # compared with the stable, its own p99.
    SHADOW_LATENCY_P99 = "shadowLatencyP99"


# What minSamples counts for the built-ins that are not judged on the candidate's requests.
SAMPLES_OF = {
    BuiltinMetric.ACCURACY: "labelled predictions",
    BuiltinMetric.MEAN_ABSOLUTE_ERROR: "labelled predictions",
    BuiltinMetric.SHADOW_AGREEMENT: "compared rows",
}


class DriftMethod(StrEnum):
    """Distance between the canary's and the stable's prediction distributions."""

    PSI = "psi"
    JENSEN_SHANNON = "jensenShannon"


class JudgeDirection(StrEnum):
    """Which change of the canary against the stable counts as a failure."""

    INCREASE = "increase"
    DECREASE = "decrease"
    EITHER = "either"


class SecretKeyRef(ApiModel):
    """A key of a Secret in the ModelDeployment's namespace."""

    name: ObjectName = Field(description="Name of the Secret.")
    key: str = Field(min_length=1, max_length=253, description="Key inside the Secret.")


class BasicAuth(ApiModel):
    """HTTP basic auth read from a Secret."""

    secret_name: ObjectName = Field(description="Name of the Secret holding the credentials.")
    username_key: str = Field(
        default="username", min_length=1, max_length=253, description="Key of the user name."
    )
    password_key: str = Field(
        default="password", min_length=1, max_length=253, description="Key of the password."
    )


class PrometheusAuth(ApiModel):
    """Credentials for Prometheus: at most one of bearerTokenSecret and basicAuth."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!(has(self.bearerTokenSecret) && has(self.basicAuth))",
                "set at most one of bearerTokenSecret and basicAuth",
            ),
        )
    )

    bearer_token_secret: SecretKeyRef | None = Field(
        default=None, description="Secret key holding a bearer token sent as Authorization."
    )
    basic_auth: BasicAuth | None = Field(default=None, description="HTTP basic auth.")

    @model_validator(mode="after")
    def _one_kind(self) -> PrometheusAuth:
        if self.bearer_token_secret is not None and self.basic_auth is not None:
            raise PathError(("basicAuth",), "set at most one of bearerTokenSecret and basicAuth")
        return self


class PrometheusTLS(ApiModel):
    """TLS settings for an https:// Prometheus address."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!(has(self.caSecret) && has(self.insecureSkipVerify) && self.insecureSkipVerify)",
                "insecureSkipVerify and caSecret exclude each other",
                ".insecureSkipVerify",
            ),
        )
    )

    insecure_skip_verify: WireBool = Field(
        default=False, description="Skip verification of the server certificate (tests only)."
    )
    ca_secret: SecretKeyRef | None = Field(
        default=None, description="Secret key holding the PEM CA bundle that signs the server."
    )

    @model_validator(mode="after")
    def _exclusive(self) -> PrometheusTLS:
        if self.insecure_skip_verify and self.ca_secret is not None:
            raise PathError(
                ("insecureSkipVerify",), "insecureSkipVerify and caSecret exclude each other"
            )
        return self


class PrometheusSpec(ApiModel):
    """Where the metrics are read from."""

    address: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^https?://[^\s]+$",
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090.",
    )
    auth: PrometheusAuth | None = Field(default=None, description="Credentials, if required.")
    tls: PrometheusTLS | None = Field(default=None, description="TLS settings for https.")
    timeout: Duration = Field(default="10s", description="Timeout of one query.")


class CompareToStable(ApiModel):
    """A bound relative to the stable revision: canary value / stable value."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.maxRatio) || has(self.minRatio)",
                "set maxRatio, minRatio or both",
            ),
            (
                "!has(self.maxRatio) || !has(self.minRatio) || self.minRatio <= self.maxRatio",
                "minRatio must not exceed maxRatio",
                ".minRatio",
            ),
        )
    )

    max_ratio: WireFloat | None = Field(
        default=None, ge=0, description="Fail when canary / stable is above this ratio, e.g. 1.5."
    )
    min_ratio: WireFloat | None = Field(
        default=None, ge=0, description="Fail when canary / stable is below this ratio, e.g. 0.8."
    )

    @model_validator(mode="after")
    def _bounds(self) -> CompareToStable:
        if self.max_ratio is None and self.min_ratio is None:
            raise PathError((), "set maxRatio, minRatio or both")
        if (
            self.max_ratio is not None
            and self.min_ratio is not None
            and self.min_ratio > self.max_ratio
        ):
            raise PathError(("minRatio",), "minRatio must not exceed maxRatio")
        return self


class JudgeSpec(ApiModel):
    """A statistical comparison of canary samples with stable samples (Kayenta-style).

    Mann-Whitney U with the Hodges-Lehmann estimate of the shift and its confidence interval;
    the effect size is mean(canary) / mean(stable).
    """

    type: Literal["mannWhitney"] = Field(default="mannWhitney", description="The test used.")
    direction: JudgeDirection = Field(
        default=JudgeDirection.INCREASE,
        description="Which change fails the canary: increase (e.g. latency), decrease, either.",
    )
    confidence: WireFloat = Field(
        default=0.98, gt=0.5, lt=1.0, description="Confidence level of the interval, e.g. 0.98."
    )
    allowed_increase: WireFloat = Field(
        default=1.0, ge=1.0, le=100.0, description="Tolerated effect size upwards (>= 1), e.g. 1.1."
    )
    allowed_decrease: WireFloat = Field(
        default=1.0, ge=0.0, le=1.0, description="Tolerated effect size downwards (<= 1), e.g. 0.9."
    )
    min_samples: WireInt = Field(
        default=20,
        ge=3,
        le=100000,
        description="Fewer samples on either side make the measurement Inconclusive.",
    )


class DriftSpec(ApiModel):
    """Options of the predictionDrift builtin."""

    method: DriftMethod = Field(
        default=DriftMethod.PSI,
        description="psi (population stability index) or jensenShannon (distance, 0..1).",
    )
    bins: WireInt = Field(
        default=10, ge=2, le=100, description="Histogram bins for numeric predictions."
    )


class MetricSpec(ApiModel):
    """One metric: what to measure (builtin or query) and the criteria it must meet."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "has(self.builtin) != has(self.query)",
                "set exactly one of builtin and query",
            ),
            (
                "!has(self.min) || !has(self.max) || self.min <= self.max",
                "min must not exceed max",
                ".min",
            ),
            (
                "has(self.min) || has(self.max) || has(self.compareToStable) || has(self.judge)",
                "set at least one criterion: min, max, compareToStable or judge",
            ),
            (
                "!has(self.drift) || (has(self.builtin) && "
                "(self.builtin == 'predictionDrift' || self.builtin == 'inputDrift'))",
                "drift options apply only to builtin: predictionDrift or inputDrift",
                ".drift",
            ),
        )
    )

    name: DnsLabel = Field(description="Unique name of the metric (a DNS label).")
    builtin: BuiltinMetric | None = Field(
        default=None,
        description=(
            "A builtin computed from the server's metric contract: errorRate, latencyP99 "
            "(seconds), predictionDrift (canary vs stable prediction distribution), requestRate; "
            "from ground truth reported to the feedback endpoint: accuracy (classifiers, 0..1) "
            "and meanAbsoluteError (regressors), over the labels that arrived in the window for "
            "predictions each revision made, with minSamples counting labelled predictions; "
            "inputDrift: the largest PSI (or Jensen-Shannon distance) of a feature's live inputs "
            "against the reference profile the server was given (--profile-uri); "
            "shadowAgreement: the share of mirrored rows the candidate labelled as the stable did "
            "(0..1), minSamples counting compared rows; shadowLatencyP99: the candidate's p99 "
            "answer time to mirrored requests as the stable saw it (seconds; the stable's own "
            "p99 when compared)."
        ),
    )
    query: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_QUERY_LENGTH,
        description=(
            "A PromQL query returning one number. Placeholders: {{revision}} (the revision "
            "measured: the canary, or the stable when comparing), {{canary}}, {{stable}}, "
            "{{name}}, {{namespace}}, {{interval}}."
        ),
    )
    min: WireFloat | None = Field(default=None, description="Fail when the value is below this.")
    max: WireFloat | None = Field(default=None, description="Fail when the value is above this.")
    compare_to_stable: CompareToStable | None = Field(
        default=None, description="Fail when the canary/stable ratio leaves these bounds."
    )
    judge: JudgeSpec | None = Field(
        default=None, description="Statistical comparison of canary and stable samples."
    )
    drift: DriftSpec | None = Field(
        default=None, description="Options of predictionDrift and inputDrift."
    )
    window: Duration | None = Field(
        default=None, description="Range of rate()/histogram windows; default: the interval."
    )
    on_no_data: DataPolicy | None = Field(
        default=None, description="This metric's onNoData; default: spec.analysis.onNoData."
    )
    on_error: DataPolicy | None = Field(
        default=None, description="This metric's onError; default: spec.analysis.onError."
    )

    @model_validator(mode="after")
    def _rules(self) -> MetricSpec:
        exactly_one(self, ("builtin", "query"), "metric")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise PathError(("min",), "min must not exceed max")
        if (
            self.min is None
            and self.max is None
            and self.compare_to_stable is None
            and self.judge is None
        ):
            raise PathError((), "set at least one criterion: min, max, compareToStable or judge")
        drifts = (BuiltinMetric.PREDICTION_DRIFT, BuiltinMetric.INPUT_DRIFT)
        if self.drift is not None and self.builtin not in drifts:
            raise PathError(
                ("drift",), "drift options apply only to builtin: predictionDrift or inputDrift"
            )
        return self


class AnalysisSpec(ApiModel):
    """How measurements are taken and how their verdicts add up."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))",
                "metric names must be unique",
                ".metrics",
            ),
        )
    )

    interval: Duration = Field(default="30s", description="Time between two measurements.")
    count: WireInt = Field(
        default=3,
        ge=1,
        le=100,
        description="Measurements per analysis run (analysis step, blue/green pre/post run).",
    )
    prometheus: PrometheusSpec = Field(description="The Prometheus to query.")
    metrics: list[MetricSpec] = Field(
        min_length=1, max_length=MAX_METRICS, description="The metrics judged at each measurement."
    )
    failure_limit: WireInt = Field(
        default=0,
        ge=0,
        le=100,
        description="Failed measurements tolerated; one more fails the analysis (rollback).",
    )
    inconclusive_limit: WireInt = Field(
        default=0,
        ge=0,
        le=100,
        description="Inconclusive measurements tolerated; one more pauses for a person.",
    )
    consecutive_error_limit: WireInt = Field(
        default=4,
        ge=0,
        le=100,
        description="Consecutive Error measurements (query failed) tolerated before onError.",
    )
    on_no_data: DataPolicy = Field(
        default=DataPolicy.PAUSE,
        description="No data or too few samples: pause (wait for a person), fail, or ignore.",
    )
    on_error: DataPolicy = Field(
        default=DataPolicy.PAUSE,
        description="Prometheus unreachable or query error past the limit: pause, fail, ignore.",
    )
    min_samples: WireInt = Field(
        default=10,
        ge=0,
        le=1000000,
        description=(
            "Requests needed in a window for a builtin measurement to count (for accuracy and "
            "meanAbsoluteError: labelled predictions)."
        ),
    )

    @model_validator(mode="after")
    def _unique_names(self) -> AnalysisSpec:
        refuse_duplicate_names(self.metrics)
        return self


def refuse_duplicate_names(metrics: list[MetricSpec]) -> None:
    """PathError naming the first metric whose name an earlier one has."""
    seen: set[str] = set()
    for i, metric in enumerate(metrics):
        if metric.name in seen:
            raise PathError(("metrics", i, "name"), f"duplicate metric name {metric.name!r}")
        seen.add(metric.name)
