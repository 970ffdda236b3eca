"""Gradient boosting as people ship it: scikit-learn's HistGradientBoosting, and LightGBM and
XGBoost through their scikit-learn wrappers, saved with skops and served only with the trust
list skops asks for (nothing of theirs is trusted by default)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pytest
import skops.io
import xgboost
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

from modelrollout.server.faults import FaultConfig, Faults
from modelrollout.server.inference import Predictor
from modelrollout.server.loading import ModelLoadError, ModelSource, load_model

X, Y = make_classification(n_samples=300, n_features=6, n_informative=4, random_state=0)
XR, YR = make_regression(n_samples=300, n_features=6, random_state=0)

CLASSIFIERS: dict[str, Callable[[], Any]] = {
    "HistGradientBoosting": lambda: HistGradientBoostingClassifier(max_iter=20),
    "LightGBM": lambda: lightgbm.LGBMClassifier(n_estimators=20, verbose=-1),
    "XGBoost": lambda: xgboost.XGBClassifier(n_estimators=20),
}
REGRESSORS: dict[str, Callable[[], Any]] = {
    "HistGradientBoosting": lambda: HistGradientBoostingRegressor(max_iter=20),
    "LightGBM": lambda: lightgbm.LGBMRegressor(n_estimators=20, verbose=-1),
    "XGBoost": lambda: xgboost.XGBRegressor(n_estimators=20),
}


def saved(tmp_path: Path, estimator: Any) -> tuple[Path, list[str]]:
    path = tmp_path / "model.skops"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skops warns about the boosters' private state
        skops.io.dump(estimator, path)
    return path, skops.io.get_untrusted_types(file=path)


@pytest.mark.parametrize("library", CLASSIFIERS)
def test_a_boosted_classifier_is_served_with_its_trust_list(tmp_path: Path, library: str) -> None:
    estimator = CLASSIFIERS[library]().fit(X, Y)
    path, untrusted = saved(tmp_path, estimator)
    assert untrusted, "nothing of a boosting library is trusted by default"
    with pytest.raises(ModelLoadError, match="not trusted"):
        load_model(ModelSource(uri=str(path)))
    model = load_model(ModelSource(uri=str(path), trusted_types=tuple(untrusted)))
    assert model.classes == [0, 1] and model.n_features == 6 and model.has_proba
    prediction = Predictor(model, Faults(FaultConfig()))(X[:50], None)
    outputs = dict(prediction.outputs)
    assert outputs["predict"].tolist() == estimator.predict(X[:50]).tolist()
    assert np.allclose(outputs["predict_proba"], estimator.predict_proba(X[:50]), atol=1e-7)


@pytest.mark.parametrize("library", REGRESSORS)
def test_a_boosted_regressor_is_served_with_its_trust_list(tmp_path: Path, library: str) -> None:
    estimator = REGRESSORS[library]().fit(XR, YR)
    path, untrusted = saved(tmp_path, estimator)
    model = load_model(ModelSource(uri=str(path), trusted_types=tuple(untrusted)))
    values = dict(Predictor(model, Faults(FaultConfig()))(XR[:50], None).outputs)["predict"]
    assert np.allclose(values, estimator.predict(XR[:50]), rtol=1e-6)
