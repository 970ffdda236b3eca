"""Data checks (pure): rows, columns, missing values, dtypes and ranges."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from modelrollout.holdout.checks import CheckRules, ColumnRule, model_features, run_checks


def frame(n: int = 100) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "age": rng.integers(18, 90, n),
            "income": rng.normal(50_000, 10_000, n),
            "city": ["a", "b"] * (n // 2),
            "label": rng.integers(0, 2, n),
        }
    )


def test_clean_frame_passes() -> None:
    rules = CheckRules(
        target="label",
        min_rows=50,
        max_missing_fraction=0.05,
        columns=(ColumnRule("age", dtype="integer", min=0, max=120), ColumnRule("city", "string")),
        model_features=("age", "income"),
    )
    report = run_checks(frame(), rules)
    assert report.passed, report.failures


def test_thirty_percent_missing_fails_naming_the_column() -> None:
    df = frame()
    df.loc[:29, "income"] = np.nan
    report = run_checks(df, CheckRules(target="label", max_missing_fraction=0.1))
    assert not report.passed
    (failure,) = report.failures
    assert failure.name == "missing:income"
    assert "'income': 30.0% missing values (maximum 10.0%)" in failure.message


def test_missing_model_feature_fails_with_its_name() -> None:
    df = frame().drop(columns=["income"])
    report = run_checks(df, CheckRules(target="label", model_features=("age", "income")))
    assert [f.message for f in report.failures] == [
        "missing column 'income' (a feature of the model)"
    ]


def test_missing_target_and_expected_column() -> None:
    df = frame().drop(columns=["label"])
    rules = CheckRules(target="label", columns=(ColumnRule("zip"),))
    names = [f.name for f in run_checks(df, rules).failures]
    assert names == ["column:label", "column:zip"]


def test_too_few_rows() -> None:
    report = run_checks(frame(10), CheckRules(target="label", min_rows=50))
    assert [f.message for f in report.failures] == ["10 rows (minimum 50)"]


def test_empty_dataset_fails_even_without_min_rows() -> None:
    assert not run_checks(frame().iloc[:0], CheckRules(target="label")).passed


def test_value_range_and_dtype() -> None:
    df = frame()
    df.loc[3, "age"] = 200
    rules = CheckRules(
        target="label",
        columns=(ColumnRule("age", max=120), ColumnRule("city", dtype="float")),
    )
    messages = [f.message for f in run_checks(df, rules).failures]
    assert messages[0].startswith("column 'age': 1 values outside [-inf, 120]")
    assert messages[1].startswith("column 'city': dtype ")
    assert messages[1].endswith("(expected float)")


def test_model_features_come_from_feature_names_in() -> None:
    df = frame()
    fitted = LogisticRegression().fit(df[["age", "income"]], df["label"])
    unnamed = LogisticRegression().fit(df[["age", "income"]].to_numpy(), df["label"])
    assert model_features([fitted, unnamed]) == ("age", "income")
