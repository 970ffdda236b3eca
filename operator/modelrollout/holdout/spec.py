"""The validator's input: spec.validation's fields plus the two models, in the API's own schema."""

from __future__ import annotations

from pydantic import Field

from modelrollout.api import ModelSpec, ValidationSpec
from modelrollout.holdout.checks import CheckRules, ColumnRule
from modelrollout.holdout.thresholds import Threshold


class ValidatorInput(ValidationSpec):
    """What `modelrollout-validate --spec FILE` reads (camelCase, unknown fields refused)."""

    candidate: ModelSpec = Field(description="The model under test, shaped like spec.model.")
    stable: ModelSpec | None = Field(
        default=None,
        description="The model serving now; absent on a first rollout (change thresholds skip).",
    )


def check_rules(spec: ValidationSpec) -> CheckRules:
    checks = spec.data_checks
    if checks is None:
        return CheckRules(target=spec.target)
    names = list(dict.fromkeys([*checks.expected_columns, *checks.dtypes, *checks.value_ranges]))
    columns = tuple(
        ColumnRule(
            name=name,
            dtype=checks.dtypes[name].value if name in checks.dtypes else None,
            min=checks.value_ranges[name].min if name in checks.value_ranges else None,
            max=checks.value_ranges[name].max if name in checks.value_ranges else None,
        )
        for name in names
    )
    return CheckRules(
        target=spec.target,
        min_rows=checks.min_rows,
        max_missing_fraction=checks.max_missing_fraction,
        columns=columns,
    )


def thresholds(spec: ValidationSpec) -> list[Threshold]:
    return [
        Threshold(
            metric=m.name.value,
            greater_is_better=m.higher_is_better(),
            min=m.min,
            max=m.max,
            min_absolute_change=m.min_absolute_change,
            min_relative_change=m.min_relative_change,
        )
        for m in spec.metrics
    ]
