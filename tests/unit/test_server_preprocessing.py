"""A Pipeline's preprocessing on ONNX Runtime: converted at load, used only where it answers as
scikit-learn does, and scikit-learn again for whatever it cannot convert or refuses."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from modelrollout.server.datatypes import RequestError
from modelrollout.server.faults import FaultConfig, Faults
from modelrollout.server.frames import Columns
from modelrollout.server.inference import Predictor
from modelrollout.server.preprocessing import compile_preprocessing
from tests.unit.test_server_frames import CHURN, FRAME, SPEND, through_skops

FRESH = pd.DataFrame(
    {
        "age": np.random.default_rng(9).uniform(10, 99, 200),
        "income": np.random.default_rng(10).integers(500, 12_000, 200),
        "city": np.random.default_rng(11).choice(["Lyon", "Oslo", "Lima"], 200).astype(object),
    }
)


def columns(unknown: str = "ignore") -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["age", "income"]),
            ("city", OneHotEncoder(handle_unknown=unknown), ["city"]),  # type: ignore[arg-type]
        ]
    )


def predictor(estimator: Any, fast_path: bool = True) -> Predictor:
    return Predictor(through_skops(estimator), Faults(FaultConfig()), fast_path)


def outputs(p: Predictor, x: Any) -> dict[str, np.ndarray[Any, Any]]:
    return dict(p(as_request(x), None).outputs)


def as_request(x: Any) -> Any:
    """A DataFrame as a request's named columns reach the predictor."""
    if isinstance(x, pd.DataFrame):
        return Columns({str(n): x[n].to_numpy() for n in x.columns})
    return x


@pytest.mark.parametrize(
    ("final", "numpy_path"),
    [
        (LogisticRegression(), "LogisticRegression"),
        (RandomForestClassifier(n_estimators=10, random_state=0), "RandomForestClassifier"),
        (HistGradientBoostingClassifier(max_iter=20), None),
    ],
)
def test_a_classifier_pipeline_answers_as_scikit_learn_does(final: Any, numpy_path: str) -> None:
    pipeline = Pipeline([("prep", columns()), ("model", final)]).fit(FRAME, CHURN)
    p = predictor(pipeline)
    expected = " + ".join(
        ["ColumnTransformer on ONNX Runtime", *([numpy_path] if numpy_path else [])]
    )
    assert p.fast_path == expected
    assert not p.takes_matrix  # the ColumnTransformer picks columns by name
    got = outputs(p, FRESH)
    assert got["predict"].tolist() == pipeline.predict(FRESH).tolist()  # labels exactly
    np.testing.assert_allclose(got["predict_proba"], pipeline.predict_proba(FRESH), rtol=1e-9)


def test_a_regressor_pipeline_answers_as_scikit_learn_does() -> None:
    pipeline = Pipeline([("prep", columns()), ("model", Ridge())]).fit(FRAME, SPEND)
    p = predictor(pipeline)
    assert p.fast_path == "ColumnTransformer on ONNX Runtime"
    np.testing.assert_allclose(outputs(p, FRESH)["predict"], pipeline.predict(FRESH), rtol=1e-9)


def test_a_pipeline_fitted_on_a_matrix_is_converted_with_one_input() -> None:
    x = FRAME[["age", "income"]].to_numpy(dtype=np.float64)
    pipeline = Pipeline([("scale", StandardScaler()), ("model", LogisticRegression())])
    pipeline.fit(x, CHURN)
    p = predictor(pipeline)
    assert p.fast_path == "StandardScaler on ONNX Runtime + LogisticRegression"
    fresh = FRESH[["age", "income"]].to_numpy(dtype=np.float64)
    np.testing.assert_allclose(outputs(p, fresh)["predict_proba"], pipeline.predict_proba(fresh))


def test_an_unseen_category_is_answered_or_refused_as_scikit_learn_does() -> None:
    unseen = FRESH.iloc[:3].assign(city=["Lyon", "Quito", "Oslo"])
    tolerant = Pipeline([("prep", columns("ignore")), ("model", LogisticRegression())])
    tolerant.fit(FRAME, CHURN)
    np.testing.assert_allclose(
        outputs(predictor(tolerant), unseen)["predict_proba"], tolerant.predict_proba(unseen)
    )
    strict = Pipeline([("prep", columns("error")), ("model", LogisticRegression())])
    strict.fit(FRAME, CHURN)
    p = predictor(strict)
    assert p.fast_path is not None  # ONNX Runtime refuses it too: the conversion is kept
    with pytest.raises(RequestError, match="Quito"):  # scikit-learn's message, as a 400
        p(as_request(unseen), None)
    assert outputs(p, FRESH)["predict"].tolist() == strict.predict(FRESH).tolist()


def test_a_step_skl2onnx_cannot_convert_keeps_the_whole_pipeline_in_scikit_learn() -> None:
    pipeline = Pipeline(
        [("log", FunctionTransformer(np.log1p)), ("model", LogisticRegression())]
    ).fit(FRAME[["age", "income"]].to_numpy(), CHURN)
    assert compile_preprocessing(pipeline, 2, None, None) is None
    p = predictor(pipeline)
    assert p.fast_path is None
    fresh = FRESH[["age", "income"]].to_numpy()
    assert outputs(p, fresh)["predict"].tolist() == pipeline.predict(fresh).tolist()


def test_no_conversion_without_the_fast_path_or_when_the_final_step_wants_a_dataframe() -> None:
    pipeline = Pipeline([("prep", columns()), ("model", LogisticRegression())]).fit(FRAME, CHURN)
    assert predictor(pipeline, fast_path=False).fast_path is None
    frames_out = Pipeline([("prep", columns()), ("model", LogisticRegression())])
    frames_out.set_output(transform="pandas")
    frames_out.named_steps["prep"].set_params(
        transformers=[
            ("numbers", StandardScaler(), ["age", "income"]),
            ("city", OneHotEncoder(sparse_output=False), ["city"]),
        ]
    )
    frames_out.fit(FRAME, CHURN)
    names = list(FRAME.columns)
    assert compile_preprocessing(frames_out, 3, names, {"city": "BYTES"}) is None


@pytest.mark.parametrize(
    "skew",
    [
        lambda z: z + 1e-6,  # numbers off by a little more than the tolerance
        lambda z: z[:, ::-1],  # columns in another order
        lambda z: None,  # ONNX Runtime refuses what scikit-learn takes
    ],
)
def test_a_conversion_that_answers_otherwise_is_not_used(
    monkeypatch: pytest.MonkeyPatch, skew: Any
) -> None:
    import modelrollout.server.preprocessing as preprocessing

    convert = preprocessing._convert

    def skewed(*args: Any) -> Any:
        transform = convert(*args)
        return lambda x: (lambda z: None if z is None else skew(z))(transform(x))

    monkeypatch.setattr(preprocessing, "_convert", skewed)
    pipeline = Pipeline([("prep", columns()), ("model", LogisticRegression())]).fit(FRAME, CHURN)
    assert predictor(pipeline).fast_path is None
