"""spec.validation: the offline gate run on holdout data before any live traffic."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from modelrollout.api.common import ApiModel, PathError, WireBool, WireFloat, WireInt, cel

MAX_COLUMNS = 256
Column = Annotated[str, Field(min_length=1, max_length=256)]


class DatasetFormat(StrEnum):
    """File format of the holdout dataset."""

    CSV = "csv"
    PARQUET = "parquet"


class ValidationMetricName(StrEnum):
    """scikit-learn metric names (scorer names without the neg_ prefix)."""

    ACCURACY = "accuracy"
    BALANCED_ACCURACY = "balanced_accuracy"
    PRECISION = "precision"
    PRECISION_MACRO = "precision_macro"
    PRECISION_WEIGHTED = "precision_weighted"
    RECALL = "recall"
    RECALL_MACRO = "recall_macro"
    RECALL_WEIGHTED = "recall_weighted"
    F1 = "f1"
    F1_MACRO = "f1_macro"
    F1_WEIGHTED = "f1_weighted"
    ROC_AUC = "roc_auc"
    LOG_LOSS = "log_loss"
    BRIER_SCORE = "brier_score"
    R2 = "r2"
    EXPLAINED_VARIANCE = "explained_variance"
    MEAN_ABSOLUTE_ERROR = "mean_absolute_error"
    MEAN_SQUARED_ERROR = "mean_squared_error"
    ROOT_MEAN_SQUARED_ERROR = "root_mean_squared_error"
    MEDIAN_ABSOLUTE_ERROR = "median_absolute_error"
    MEAN_ABSOLUTE_PERCENTAGE_ERROR = "mean_absolute_percentage_error"


# Metrics where a smaller value is better: the default of greaterIsBetter.
LOWER_IS_BETTER = frozenset(
    {
        ValidationMetricName.LOG_LOSS,
        ValidationMetricName.BRIER_SCORE,
        ValidationMetricName.MEAN_ABSOLUTE_ERROR,
        ValidationMetricName.MEAN_SQUARED_ERROR,
        ValidationMetricName.ROOT_MEAN_SQUARED_ERROR,
        ValidationMetricName.MEDIAN_ABSOLUTE_ERROR,
        ValidationMetricName.MEAN_ABSOLUTE_PERCENTAGE_ERROR,
    }
)


class ColumnType(StrEnum):
    """Expected kind of a column's values."""

    INTEGER = "integer"
    FLOAT = "float"
    NUMBER = "number"
    BOOLEAN = "boolean"
    STRING = "string"
    DATETIME = "datetime"


_MIN_MAX_RULE = (
    "!has(self.min) || !has(self.max) || self.min <= self.max",
    "min must not exceed max",
    ".min",
)


def _check_min_max(low: float | None, high: float | None) -> None:
    if low is not None and high is not None and low > high:
        raise PathError(("min",), "min must not exceed max")


class DatasetSpec(ApiModel):
    """The holdout dataset: features plus the target column."""

    uri: str = Field(
        min_length=1,
        max_length=2048,
        pattern=r"^[a-z][a-z0-9+.-]*://.+$",
        description="fsspec URI of the file (s3://, gs://, http(s)://, file://, pvc://).",
    )
    format: DatasetFormat = Field(default=DatasetFormat.CSV, description="csv or parquet.")
    sha256: str | None = Field(
        default=None,
        max_length=64,
        pattern=r"^[a-f0-9]{64}$",
        description="Hex SHA-256 pin of the file.",
    )


class ValidationMetric(ApiModel):
    """A threshold on a holdout metric: absolute (min/max) and/or change versus the stable."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            _MIN_MAX_RULE,
            (
                "has(self.min) || has(self.max) || has(self.minAbsoluteChange)"
                " || has(self.minRelativeChange)",
                "set at least one threshold: min, max, minAbsoluteChange or minRelativeChange",
            ),
        )
    )

    name: ValidationMetricName = Field(description="scikit-learn metric name, e.g. f1, roc_auc.")
    min: WireFloat | None = Field(default=None, description="Fail below this value.")
    max: WireFloat | None = Field(default=None, description="Fail above this value.")
    min_absolute_change: WireFloat | None = Field(
        default=None,
        description="Against the stable model: the candidate must be better by at least this "
        "(negative: tolerated worsening).",
    )
    min_relative_change: WireFloat | None = Field(
        default=None,
        description="Like minAbsoluteChange, relative to the stable's value (0.01 = 1%).",
    )
    greater_is_better: WireBool | None = Field(
        default=None,
        description="Direction of 'better' for change thresholds; default from the metric name.",
    )

    @model_validator(mode="after")
    def _rules(self) -> ValidationMetric:
        _check_min_max(self.min, self.max)
        if (
            self.min is None
            and self.max is None
            and self.min_absolute_change is None
            and self.min_relative_change is None
        ):
            raise PathError(
                (), "set at least one threshold: min, max, minAbsoluteChange or minRelativeChange"
            )
        return self

    def higher_is_better(self) -> bool:
        """The effective direction: the explicit setting, else derived from the name."""
        if self.greater_is_better is not None:
            return self.greater_is_better
        return self.name not in LOWER_IS_BETTER


class ValueRange(ApiModel):
    """Allowed range of a numeric column's values."""

    model_config = ConfigDict(json_schema_extra=cel(_MIN_MAX_RULE))

    min: WireFloat | None = Field(default=None, description="Smallest allowed value.")
    max: WireFloat | None = Field(default=None, description="Largest allowed value.")

    @model_validator(mode="after")
    def _rules(self) -> ValueRange:
        _check_min_max(self.min, self.max)
        return self


class DataChecks(ApiModel):
    """Checks of the dataset itself, before any model runs on it."""

    expected_columns: list[Column] = Field(
        default_factory=list,
        max_length=MAX_COLUMNS,
        description="Columns that must be present (features and target).",
    )
    dtypes: dict[str, ColumnType] = Field(
        default_factory=dict,
        max_length=MAX_COLUMNS,
        description="Expected kind of values per column.",
    )
    max_missing_fraction: WireFloat | None = Field(
        default=None, ge=0.0, le=1.0, description="Largest tolerated fraction of missing cells."
    )
    value_ranges: dict[str, ValueRange] = Field(
        default_factory=dict,
        max_length=MAX_COLUMNS,
        description="Allowed value range per numeric column.",
    )
    min_rows: WireInt | None = Field(
        default=None, ge=1, le=1_000_000_000, description="Fewest rows the dataset must have."
    )


class ValidationSpec(ApiModel):
    """Evaluate the candidate (and the stable) on holdout data; fail before any traffic."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.metrics.all(m, self.metrics.exists_one(n, n.name == m.name))",
                "validation metric names must be unique",
                ".metrics",
            ),
        )
    )

    dataset: DatasetSpec = Field(description="The holdout dataset.")
    target: str = Field(min_length=1, max_length=256, description="Name of the target column.")
    metrics: list[ValidationMetric] = Field(
        default_factory=list, max_length=16, description="Thresholds the candidate must meet."
    )
    data_checks: DataChecks | None = Field(default=None, description="Checks of the dataset.")
    timeout_seconds: WireInt = Field(
        default=300, ge=1, le=86400, description="Time allowed for the whole validation."
    )

    @model_validator(mode="after")
    def _unique(self) -> ValidationSpec:
        seen: set[str] = set()
        for i, metric in enumerate(self.metrics):
            if metric.name in seen:
                raise PathError(("metrics", i, "name"), f"duplicate metric {metric.name.value!r}")
            seen.add(metric.name)
        return self
