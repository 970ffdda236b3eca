"""MLflow model directories as MLflow itself writes them (mlflow-skinny from PyPI): the sklearn
flavor (skops by default in MLflow 3, cloudpickle on request), a pyfunc flavor that only wraps
scikit-learn, and a custom pyfunc model, which is someone's code and is refused."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import pytest
import yaml
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from modelrollout.server.digest import path_sha256
from modelrollout.server.loading import Format, ModelLoadError, ModelSource, load_model

X, Y = make_classification(n_samples=120, n_features=5, random_state=3)
MODEL = LogisticRegression().fit(X, Y)


def saved(path: Path, **options: Any) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Named requirements: MLflow would otherwise infer them (seconds per model).
        mlflow.sklearn.save_model(MODEL, str(path), pip_requirements=["scikit-learn"], **options)
    return path


def mlflow_source(path: Path, **fields: Any) -> ModelSource:
    return ModelSource(uri=str(path), format=Format.MLFLOW, **fields)


def test_mlflow_s_default_sklearn_model_loads_pinned_by_its_digest(tmp_path: Path) -> None:
    path = saved(tmp_path / "model")
    meta = yaml.safe_load((path / "MLmodel").read_text())
    assert meta["flavors"]["sklearn"]["serialization_format"] == "skops"
    model = load_model(mlflow_source(path, sha256=path_sha256(path)))
    assert model.n_features == 5
    assert np.array_equal(model.estimator.predict(X), MODEL.predict(X))
    with pytest.raises(ModelLoadError, match="sha256 mismatch"):
        load_model(mlflow_source(path, sha256="0" * 64))


def test_a_cloudpickled_mlflow_model_needs_allow_pickle(tmp_path: Path) -> None:
    path = saved(tmp_path / "model", serialization_format="cloudpickle")
    with pytest.raises(ModelLoadError, match="allowPickle"):
        load_model(mlflow_source(path))
    model = load_model(mlflow_source(path, allow_pickle=True))
    assert np.array_equal(model.estimator.predict(X), MODEL.predict(X))


def test_a_pyfunc_flavor_that_wraps_scikit_learn_loads_as_it(tmp_path: Path) -> None:
    path = saved(tmp_path / "model")
    meta = yaml.safe_load((path / "MLmodel").read_text())
    del meta["flavors"]["sklearn"]  # as tools that write only the pyfunc flavor leave it
    (path / "MLmodel").write_text(yaml.safe_dump(meta))
    model = load_model(mlflow_source(path))
    assert np.array_equal(model.estimator.predict(X), MODEL.predict(X))


class Echo(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    def predict(self, context, model_input):  # type: ignore[no-untyped-def]  # MLflow reads hints
        return model_input


def test_a_custom_pyfunc_model_is_refused_before_any_of_it_runs(tmp_path: Path) -> None:
    path = tmp_path / "custom"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.pyfunc.save_model(str(path), python_model=Echo(), pip_requirements=["mlflow"])
    with pytest.raises(ModelLoadError, match="arbitrary Python code"):
        load_model(mlflow_source(path, allow_pickle=True))
