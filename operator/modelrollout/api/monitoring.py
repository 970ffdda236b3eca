"""spec.monitoring: the serving revision checked after promotion, for as long as it serves."""

from __future__ import annotations

from enum import StrEnum

from pydantic import ConfigDict, Field, model_validator

from modelrollout.api.analysis import (
    DataPolicy,
    MetricSpec,
    PrometheusSpec,
    refuse_duplicate_names,
)
from modelrollout.api.common import ApiModel, Duration, PathError, WireInt, cel

MAX_MONITORING_METRICS = 16


class MonitoringPolicy(StrEnum):
    """What a breach does besides the condition, the event and the operator metric."""

    ALERT = "alert"
    ROLLBACK = "rollback"


class MonitoringState(StrEnum):
    """status.monitoring.state."""

    PENDING = "Pending"  # not measured yet
    HEALTHY = "Healthy"
    BREACHED = "Breached"
    NO_DATA = "NoData"  # no data, too few samples or an unreachable Prometheus: never healthy


class MonitoringSpec(ApiModel):
    """Checks of the serving revision after promotion: live accuracy, error rate, input drift
    against the reference profile... Each interval, every metric against its bounds."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.metrics.all(m, !has(m.compareToStable) && !has(m.judge))",
                "monitoring has no stable to compare with: use min and max",
                ".metrics",
            ),
            (
                "self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))",
                "metric names must be unique",
                ".metrics",
            ),
        )
    )

    interval: Duration = Field(default="1m", description="Time between two checks.")
    metrics: list[MetricSpec] = Field(
        min_length=1,
        max_length=MAX_MONITORING_METRICS,
        description="Metrics with min/max bounds (builtins: accuracy, errorRate, inputDrift...).",
    )
    policy: MonitoringPolicy = Field(
        default=MonitoringPolicy.ALERT,
        description=(
            "alert: condition ModelHealthy=False, a Warning event and the operator metric; "
            "rollback: the same, and traffic back to the previous revision while it is within "
            "spec.rollbackWindow (and its pods are ready)."
        ),
    )
    failure_limit: WireInt = Field(
        default=0, ge=0, le=100, description="Failed checks in a row tolerated before a breach."
    )
    on_no_data: DataPolicy = Field(
        default=DataPolicy.PAUSE,
        description=(
            "A check without data: pause or ignore (state NoData, condition Unknown: never "
            "healthy), or fail (counts as a failed check)."
        ),
    )
    min_samples: WireInt = Field(
        default=10,
        ge=0,
        le=1000000,
        description="Requests (labelled predictions for accuracy) needed in a window.",
    )
    prometheus: PrometheusSpec | None = Field(
        default=None, description="The Prometheus to query; default: spec.analysis.prometheus."
    )

    @model_validator(mode="after")
    def _absolute(self) -> MonitoringSpec:
        for i, metric in enumerate(self.metrics):
            if metric.compare_to_stable is not None or metric.judge is not None:
                field = "compareToStable" if metric.compare_to_stable is not None else "judge"
                why = "monitoring has no stable to compare with: use min and max"
                raise PathError(("metrics", i, field), why)
        refuse_duplicate_names(self.metrics)
        return self
