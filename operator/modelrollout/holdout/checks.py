"""Pure data checks on the holdout rows, run before any model sees them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pandas as pd
from pandas.api import types as ptypes

# The kinds of api.ColumnType.
DType = Literal["integer", "float", "number", "boolean", "string", "datetime"]


@dataclass(frozen=True)
class ColumnRule:
    name: str
    dtype: DType | None = None
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True)
class CheckRules:
    target: str
    min_rows: int | None = None
    max_missing_fraction: float | None = None  # bound on the share of missing cells, per column
    columns: tuple[ColumnRule, ...] = ()
    model_features: tuple[str, ...] = ()  # feature_names_in_ of the models, when they have it


@dataclass(frozen=True)
class CheckResult:
    name: str  # e.g. "rows", "column:age", "missing:age", "range:age", "dtype:age"
    passed: bool
    message: str


@dataclass(frozen=True)
class CheckReport:
    results: tuple[CheckResult, ...] = field(default_factory=tuple)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)


_DTYPE_TESTS: dict[str, Callable[[pd.Series], bool]] = {
    "integer": ptypes.is_integer_dtype,
    "float": ptypes.is_float_dtype,
    "number": lambda s: ptypes.is_numeric_dtype(s) and not ptypes.is_bool_dtype(s),
    "boolean": ptypes.is_bool_dtype,
    "string": lambda s: ptypes.is_string_dtype(s) or ptypes.is_object_dtype(s),
    "datetime": ptypes.is_datetime64_any_dtype,
}


def _unique(names: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(names))


def run_checks(df: pd.DataFrame, rules: CheckRules) -> CheckReport:
    """Every check, in a stable order; a failure's message names the column and the numbers."""
    results: list[CheckResult] = []
    n = len(df)
    if rules.min_rows is not None:
        ok = n >= rules.min_rows
        results.append(CheckResult("rows", ok, f"{n} rows (minimum {rules.min_rows})"))
    elif n == 0:
        results.append(CheckResult("rows", False, "the dataset has no rows"))

    by_name = {c.name: c for c in rules.columns}
    expected = _unique([rules.target, *rules.model_features, *(c.name for c in rules.columns)])
    missing = [c for c in expected if c not in df.columns]
    for name in missing:
        source = _why_expected(name, rules)
        results.append(CheckResult(f"column:{name}", False, f"missing column {name!r} ({source})"))
    if not missing:
        present = f"all {len(expected)} expected columns present"
        results.append(CheckResult("columns", True, present))

    # Without feature_names_in_ the models take every column but the target: check them all.
    checked = expected if rules.model_features else _unique([*expected, *map(str, df.columns)])
    for name in checked:
        if name not in df.columns:
            continue
        rule = by_name.get(name)
        results.extend(_column_checks(df[name], rule, rules.max_missing_fraction, n))
    return CheckReport(tuple(results))


def _why_expected(name: str, rules: CheckRules) -> str:
    if name == rules.target:
        return "the target"
    if name in rules.model_features:
        return "a feature of the model"
    return "named in dataChecks"


def _column_checks(
    col: pd.Series, rule: ColumnRule | None, default_missing: float | None, n: int
) -> list[CheckResult]:
    name = str(col.name)
    out: list[CheckResult] = []
    limit = default_missing
    if limit is not None and n > 0:
        share = float(col.isna().mean())
        ok = share <= limit
        out.append(
            CheckResult(
                f"missing:{name}",
                ok,
                f"column {name!r}: {share:.1%} missing values (maximum {limit:.1%})",
            )
        )
    if rule is None:
        return out
    if rule.dtype is not None:
        ok = bool(_DTYPE_TESTS[rule.dtype](col))
        out.append(
            CheckResult(
                f"dtype:{name}",
                ok,
                f"column {name!r}: dtype {col.dtype} (expected {rule.dtype})",
            )
        )
        if not ok:
            return out  # a range on the wrong type means nothing
    if rule.min is not None or rule.max is not None:
        out.append(_range_check(col, rule))
    return out


def _range_check(col: pd.Series, rule: ColumnRule) -> CheckResult:
    name = str(col.name)
    values = pd.to_numeric(col.dropna(), errors="coerce")
    if values.isna().any():
        return CheckResult(f"range:{name}", False, f"column {name!r}: non-numeric values")
    below = int((values < rule.min).sum()) if rule.min is not None else 0
    above = int((values > rule.max).sum()) if rule.max is not None else 0
    bounds = f"[{_b(rule.min, '-inf')}, {_b(rule.max, 'inf')}]"
    if below or above:
        seen = f"observed [{values.min():.6g}, {values.max():.6g}]"
        msg = f"column {name!r}: {below + above} values outside {bounds}, {seen}"
        return CheckResult(f"range:{name}", False, msg)
    return CheckResult(f"range:{name}", True, f"column {name!r}: all values within {bounds}")


def _b(x: float | None, unbounded: str) -> str:
    return unbounded if x is None else f"{x:.6g}"


def model_features(models: Sequence[Any]) -> tuple[str, ...]:
    """The union of feature_names_in_ of the models that record them (fitted on DataFrames)."""
    names: list[str] = []
    for m in models:
        feats = getattr(m, "feature_names_in_", None)
        if feats is not None:
            names.extend(str(f) for f in feats)
    return tuple(_unique(names))
