"""Evaluation end to end in process: real skops models, real files, the server's loading code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from modelrollout.holdout.evaluate import EvaluationError
from modelrollout.holdout.run import InputError, parse_input, run
from tests.unit import holdout_samples as samples


def validate(spec: dict[str, Any]) -> Any:
    import json

    return run(parse_input(json.dumps(spec), "test"))


def test_better_candidate_passes(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    report = validate(samples.classification_input(tmp_path, good, bad))
    assert report.result == "passed", report.message
    acc = report.verdicts[0]
    assert acc.metric == "accuracy"
    assert acc.candidate > 0.85 and acc.stable is not None and acc.stable < 0.6
    assert report.rows == 400


def test_worse_candidate_fails(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    report = validate(samples.classification_input(tmp_path, bad, good))
    assert report.result == "failed"
    assert [v.passed for v in report.verdicts] == [False, False]
    assert "accuracy 0.48 < min 0.7" in report.message


def test_thirty_percent_missing_fails_before_any_prediction(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    df = samples.classification_frame()
    df.loc[: int(len(df) * 0.3) - 1, "score"] = np.nan
    spec = samples.classification_input(tmp_path, good, bad)
    spec["dataset"]["uri"] = samples.write_csv(df, tmp_path / "holey.csv")
    report = validate(spec)
    assert report.result == "failed"
    assert report.verdicts == ()
    assert "column 'score': 30.0% missing values (maximum 10.0%)" in report.message


def test_missing_feature_column_is_named(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    df = samples.classification_frame().drop(columns=["income"])
    spec = samples.classification_input(tmp_path, good, bad)
    spec["dataset"]["uri"] = samples.write_csv(df, tmp_path / "narrow.csv")
    report = validate(spec)
    assert report.result == "failed"
    assert report.message == ("data check failed: missing column 'income' (a feature of the model)")


@pytest.mark.parametrize("metric", ["mean_absolute_error", "root_mean_squared_error"])
def test_regression_metric_lower_is_better(tmp_path: Path, metric: str) -> None:
    good, bad = samples.regressors(tmp_path)
    uri = samples.write_csv(samples.regression_frame(), tmp_path / "reg.csv")
    threshold = {"name": metric, "greaterIsBetter": False, "minRelativeChange": 0.05}

    def spec(candidate: dict[str, Any], stable: dict[str, Any]) -> dict[str, Any]:
        return {
            "dataset": {"uri": uri},
            "target": "price",
            "metrics": [threshold],
            "candidate": candidate,
            "stable": stable,
        }

    better = validate(spec(good, bad))
    assert better.result == "passed", better.message
    assert better.verdicts[0].candidate < better.verdicts[0].stable
    worse = validate(spec(bad, good))
    assert worse.result == "failed"
    assert "must be lower by at least 5%" in worse.message


def test_parquet_dataset_and_no_stable(tmp_path: Path) -> None:
    good, _ = samples.classifiers(tmp_path)
    path = tmp_path / "holdout.parquet"
    samples.classification_frame().to_parquet(path)
    spec = samples.classification_input(tmp_path, good, None)
    spec["dataset"] = {"uri": path.as_uri(), "format": "parquet"}
    report = validate(spec)
    assert report.result == "passed", report.message
    assert report.stable is None
    assert report.verdicts[0].notes == ("no stable model: relative thresholds not applied",)


def test_probability_metrics_use_predict_proba(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    spec = samples.classification_input(tmp_path, good, bad)
    spec["metrics"] = [
        {"name": "log_loss", "max": 0.5},
        {"name": "brier_score", "max": 0.2},
        {"name": "f1", "min": 0.8},
        {"name": "balanced_accuracy", "min": 0.8},
    ]
    report = validate(spec)
    assert report.result == "passed", report.message
    log_loss = report.verdicts[0]
    assert log_loss.stable is not None and log_loss.stable > 0.6  # the prior's log loss


def test_model_that_fails_the_sha256_pin_is_an_input_error(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    good["sha256"] = "0" * 64
    with pytest.raises(InputError, match="candidate model: sha256 mismatch"):
        validate(samples.classification_input(tmp_path, good, bad))


def test_dataset_sha256_pin(tmp_path: Path) -> None:
    good, bad = samples.classifiers(tmp_path)
    spec = samples.classification_input(tmp_path, good, bad)
    spec["dataset"]["sha256"] = "f" * 64
    with pytest.raises(InputError, match=r"dataset .*holdout\.csv: sha256 mismatch"):
        validate(spec)


def test_probability_metric_on_a_model_without_predict_proba_is_an_error(tmp_path: Path) -> None:
    good, _ = samples.regressors(tmp_path)
    uri = samples.write_csv(samples.regression_frame(), tmp_path / "reg.csv")
    spec = {
        "dataset": {"uri": uri},
        "target": "price",
        "metrics": [{"name": "roc_auc", "min": 0.5}],
        "candidate": good,
    }
    with pytest.raises(EvaluationError, match="candidate model: roc_auc needs predict_proba"):
        validate(spec)


def test_multiclass_metrics(tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    df = samples.classification_frame()
    df["label"] = np.digitize(df["age"] + 0.3 * df["income"], [-0.5, 0.5])  # classes 0, 1, 2
    model = samples.save(
        LogisticRegression().fit(df[samples.FEATURES], df["label"]), tmp_path / "multi.skops"
    )
    spec = {
        "dataset": {"uri": samples.write_csv(df, tmp_path / "multi.csv")},
        "target": "label",
        "metrics": [
            {"name": "roc_auc", "min": 0.9},
            {"name": "f1_weighted", "min": 0.8},
            {"name": "log_loss", "max": 0.5},
            {"name": "brier_score", "max": 0.3},
        ],
        "candidate": model,
    }
    report = validate(spec)
    assert report.result == "passed", report.message
