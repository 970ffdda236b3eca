"""Running a loaded scikit-learn model on a decoded request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelrollout.server.datatypes import RequestError
from modelrollout.server.fastpath import Proba, accepts, compile_proba
from modelrollout.server.faults import Faults
from modelrollout.server.fetch import one_line
from modelrollout.server.frames import ModelInput, SklearnInput, sklearn_input
from modelrollout.server.loading import LoadedModel
from modelrollout.server.preprocessing import compile_preprocessing

PREDICT = "predict"
PREDICT_PROBA = "predict_proba"

# Estimators whose predict() is exactly the argmax of predict_proba(): for them one
# predict_proba call gives both outputs. Others (e.g. SVC, whose Platt-scaled
# probabilities can disagree with its decision function) get two calls.
_ARGMAX_CONSISTENT = (
    "LogisticRegression",
    "LogisticRegressionCV",
    "RandomForestClassifier",
    "ExtraTreesClassifier",
    "DecisionTreeClassifier",
    "ExtraTreeClassifier",
    "GradientBoostingClassifier",
    "HistGradientBoostingClassifier",
    "GaussianNB",
    "MultinomialNB",
    "BernoulliNB",
    "ComplementNB",
)


@dataclass(frozen=True)
class Prediction:
    outputs: list[tuple[str, np.ndarray[Any, Any]]]  # (output name, result), in order
    class_indices: np.ndarray[Any, Any] | None  # index into classes_, for class counts
    values: np.ndarray[Any, Any] | None  # regressor values or top probabilities


class Predictor:
    def __init__(self, model: LoadedModel, faults: Faults, fast_path: bool = True) -> None:
        self.model = model
        self.faults = faults
        self._est = est = model.estimator
        self._classes = np.asarray(model.classes) if model.classes is not None else None
        self._shift = bool(faults.config.prediction_shift)
        self._argmax_ok = model.has_proba and _final_step_name(self._est) in _ARGMAX_CONSISTENT
        self.output_names = [PREDICT, PREDICT_PROBA] if model.has_proba else [PREDICT]
        self._prep = (
            compile_preprocessing(est, model.n_features, model.feature_names, model.column_types)
            if fast_path
            else None
        )
        final = self._prep.final if self._prep else est
        width = self._prep.n_outputs if self._prep else model.n_features
        compiled = compile_proba(final, width) if fast_path else None
        self._fast: Proba | None = compiled[0] if compiled else None
        names = [f"{self._prep.steps} on ONNX Runtime"] if self._prep else []
        names += [compiled[1]] if compiled else []
        # What runs outside scikit-learn's own code (for the log), or None.
        self.fast_path = " + ".join(names) or None
        # A bare estimator with a numpy path takes a numeric DataFrame as its matrix.
        self.takes_matrix = self._prep is None and compiled is not None

    def _prepared(self, x: ModelInput) -> tuple[Any, SklearnInput, bool]:
        """(estimator, its input, whether the numpy path applies): the final estimator on the
        ONNX-transformed matrix, or the whole model on the request when that is refused."""
        if self._prep is not None:
            z = self._prep.transform(x)
            if z is not None:
                return self._prep.final, z, True
            return self._est, sklearn_input(x), False
        return self._est, sklearn_input(x), True

    def _proba(self, est: Any, x: SklearnInput, fast_ok: bool) -> np.ndarray[Any, Any]:
        if self._fast is not None and fast_ok and accepts(x):
            return self._fast(x)
        return np.asarray(est.predict_proba(x), dtype=np.float64)

    def __call__(self, x: ModelInput, wanted: list[str] | None) -> Prediction:
        names = self.output_names if wanted is None else wanted
        for name in names:
            if name not in self.output_names:
                raise RequestError(f"unknown output {name!r}; this model has {self.output_names}")
        try:
            est, x, fast_ok = self._prepared(x)
            if self._classes is None:
                return self._regress(est, x)
            return self._classify(est, x, fast_ok, names)
        except (ValueError, TypeError) as exc:
            # scikit-learn's own input validation raises these: the input's fault.
            raise RequestError(f"the model rejected the input: {one_line(exc)}") from exc

    def _regress(self, est: Any, x: SklearnInput) -> Prediction:
        values = np.asarray(est.predict(x))
        if self._shift and values.dtype.kind in "fiu":
            values = self.faults.shift_values(values)
        numeric = values if values.dtype.kind in "fiu" else None
        return Prediction([(PREDICT, values)], None, numeric)

    def _classify(self, est: Any, x: SklearnInput, fast_ok: bool, names: list[str]) -> Prediction:
        assert self._classes is not None
        want_proba = PREDICT_PROBA in names
        proba = None
        if self.model.has_proba and (want_proba or self._argmax_ok or self._shift):
            proba = self._proba(est, x, fast_ok)
            if self._shift:
                proba = self.faults.shift_probabilities(proba)
        if proba is not None and (self._argmax_ok or self._shift):
            idx = proba.argmax(axis=1)
        else:
            idx = self._indices(np.asarray(est.predict(x)))
            if self._shift and idx is not None:
                idx = self.faults.shift_classes(idx, len(self._classes))
        outputs = []
        if PREDICT in names:
            preds = self._classes[idx] if idx is not None else est.predict(x)
            outputs.append((PREDICT, np.asarray(preds)))
        if want_proba and proba is not None:
            outputs.append((PREDICT_PROBA, proba))
        top = proba.max(axis=1) if proba is not None else None
        return Prediction(outputs, idx, top)

    def _indices(self, preds: np.ndarray[Any, Any]) -> np.ndarray[Any, Any] | None:
        assert self._classes is not None
        if preds.ndim != 1:
            return None
        idx = np.searchsorted(self._classes, preds)
        idx = np.minimum(idx, len(self._classes) - 1)
        # classes_ is sorted for scikit-learn classifiers; anything else skips class counts.
        return idx if np.array_equal(self._classes[idx], preds) else None


def _final_step_name(estimator: Any) -> str:
    steps = getattr(estimator, "steps", None)
    if isinstance(steps, list) and steps:
        return _final_step_name(steps[-1][1])
    return type(estimator).__name__
