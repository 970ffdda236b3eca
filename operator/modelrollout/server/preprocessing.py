"""A Pipeline's preprocessing run by ONNX Runtime, converted at load and verified.

A Pipeline fitted on a DataFrame spends most of a small request in its ColumnTransformer:
scikit-learn's per-call validation, column selection and pandas handling cost ~3-4 ms for one
row, while the arithmetic (scale, one-hot encode) is microseconds. skl2onnx converts the
transformers (every step but the final estimator) to an ONNX graph that ONNX Runtime runs in
~30 us, and the final estimator then runs on the resulting matrix as it was fitted to.

Only the preprocessing is converted: ONNX Runtime's tree ensembles compare and accumulate in
float32 (thresholds taken from float64 models move; probabilities near a split differ by up to
0.06, measured on a RandomForest), and its TreeEnsembleClassifier refuses float64 outputs, so a
converted forest or HistGradientBoosting model would not answer as scikit-learn does. The final
estimator keeps scikit-learn's own code or a numpy path from `fastpath`.

The conversion is used only after it reproduced scikit-learn on probe rows drawn from what the
transformers learnt (their categories, numbers at several scales): the transformed matrix and
the final predictions within 1e-9 relative, labels exactly, and the same refusal of an unseen
category. On any later error ONNX Runtime raises, the request falls back to scikit-learn.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelrollout.server.columns import learnt_categories
from modelrollout.server.frames import Columns, ModelInput, sklearn_input

log = logging.getLogger(__name__)

Matrix = np.ndarray[Any, Any]
Transform = Callable[[ModelInput], Matrix | None]

PROBE_ROWS = 64
RTOL = 1e-9
ATOL = 1e-12
UNSEEN = "\x00unseen"


@dataclass(frozen=True)
class Preprocessing:
    """The converted steps (`transform` gives None when ONNX Runtime refused the input) and the
    final estimator they feed."""

    transform: Transform
    final: Any
    n_outputs: int
    steps: str  # e.g. "ColumnTransformer", for the log


def compile_preprocessing(
    estimator: Any,
    n_features: int | None,
    feature_names: Sequence[str] | None,
    column_types: Mapping[str, str] | None,
) -> Preprocessing | None:
    """The estimator's preprocessing on ONNX Runtime, or None to run it in scikit-learn (not a
    Pipeline, a step skl2onnx cannot convert, or a disagreement on the probe rows)."""
    steps = getattr(estimator, "steps", None)
    if not isinstance(steps, list) or len(steps) < 2 or n_features is None:
        return None
    final = steps[-1][1]
    if getattr(final, "feature_names_in_", None) is not None:
        return None  # set_output(transform="pandas"): the final step wants a DataFrame
    prep = estimator[:-1]
    types = dict(column_types or {})
    try:
        transform = _convert(prep, n_features, feature_names, types)
        probes = _probes(estimator, n_features, feature_names, types)
        agrees = _agrees(transform, estimator, prep, final, probes)
    except Exception as exc:  # skl2onnx raises many types for what it cannot convert
        log.info("preprocessing stays in scikit-learn: %s", str(exc).splitlines()[0][:200])
        return None
    if not agrees:
        log.info("preprocessing stays in scikit-learn: ONNX Runtime disagreed on probe rows")
        return None
    n_outputs = int(np.asarray(transform(probes.known)).shape[1])
    names = "+".join(type(step).__name__ for _, step in steps[:-1])
    return Preprocessing(transform, final, n_outputs, names)


def _convert(
    prep: Any, n_features: int, feature_names: Sequence[str] | None, types: Mapping[str, str]
) -> Transform:
    # Imported here: skl2onnx takes ~1 s to import, and only pipelines need it.
    import onnxruntime as ort  # type: ignore[import-untyped]
    from skl2onnx import to_onnx  # type: ignore[import-untyped]
    from skl2onnx.common.data_types import (  # type: ignore[import-untyped]
        DoubleTensorType,
        StringTensorType,
    )

    if feature_names is None:
        initial = [("X", DoubleTensorType([None, n_features]))]
    else:
        column = {"BYTES": StringTensorType}
        initial = [
            (n, column.get(types.get(n, ""), DoubleTensorType)([None, 1])) for n in feature_names
        ]
    graph = to_onnx(prep, initial_types=initial, target_opset={"": 18, "ai.onnx.ml": 3})
    options = ort.SessionOptions()
    # One request is small and the server scales by processes: a thread pool only adds handoffs.
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 4  # a refused input falls back to scikit-learn: no error log
    session = ort.InferenceSession(
        graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    output = session.get_outputs()[0].name
    feeds = _feeds(feature_names, types)

    def transform(x: ModelInput) -> Matrix | None:
        try:
            result: Matrix = session.run([output], feeds(x))[0]
        except Exception:  # ONNX Runtime's own error types: scikit-learn answers instead
            return None
        return result

    return transform


def _feeds(
    feature_names: Sequence[str] | None, types: Mapping[str, str]
) -> Callable[[ModelInput], dict[str, Matrix]]:
    if feature_names is None:
        return lambda x: {"X": np.ascontiguousarray(_matrix(x), dtype=np.float64)}
    strings = [n for n in feature_names if types.get(n) == "BYTES"]
    numbers = [n for n in feature_names if types.get(n) != "BYTES"]

    def by_column(x: ModelInput) -> dict[str, Matrix]:
        if not isinstance(x, Columns):
            raise TypeError("a model fitted on a DataFrame takes named columns")
        feeds = {n: x.arrays[n].astype(np.float64, copy=False).reshape(-1, 1) for n in numbers}
        for n in strings:
            feeds[n] = x.arrays[n].astype(object, copy=False).reshape(-1, 1)
        return feeds

    return by_column


def _matrix(x: ModelInput) -> Matrix:
    return np.column_stack(list(x.arrays.values())) if isinstance(x, Columns) else x


@dataclass(frozen=True)
class _Probes:
    known: ModelInput  # values the transformers learnt: must transform the same
    unseen: ModelInput  # one row of unseen categories: same answer or same refusal


def _probes(
    estimator: Any, n_features: int, feature_names: Sequence[str] | None, types: Mapping[str, str]
) -> _Probes:
    rng = np.random.default_rng(0)
    scales = rng.choice([0.1, 1.0, 10.0, 1000.0], PROBE_ROWS)
    if feature_names is None:
        known = rng.normal(size=(PROBE_ROWS, n_features)) * scales[:, None]
        return _Probes(known, known[:1] * 1e6)
    categories = learnt_categories(estimator)
    known_columns: dict[str, Any] = {}
    unseen_columns: dict[str, Any] = {}
    for name in feature_names:
        learnt = categories.get(name)
        if types.get(name) == "BYTES":
            pool = learnt if learnt is not None else np.array(["a", "b"], dtype=object)
            known_columns[name] = rng.choice(pool, PROBE_ROWS).astype(object)
            unseen_columns[name] = np.array([UNSEEN], dtype=object)
        elif learnt is not None and learnt.dtype.kind in "fiub":
            known_columns[name] = rng.choice(learnt.astype(np.float64), PROBE_ROWS)
            unseen_columns[name] = np.array([float(learnt.max()) + 0.5])
        else:
            known_columns[name] = rng.normal(size=PROBE_ROWS) * scales
            unseen_columns[name] = np.array([1e6])
    return _Probes(Columns(known_columns), Columns(unseen_columns))


def _agrees(transform: Transform, pipeline: Any, prep: Any, final: Any, probes: _Probes) -> bool:
    fast = transform(probes.known)
    if fast is None:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        slow = _dense(prep.transform(sklearn_input(probes.known)))
        if fast.shape != slow.shape or not np.allclose(fast, slow, rtol=RTOL, atol=ATOL):
            return False
        if not _same_predictions(final, fast, pipeline, probes.known):
            return False
        try:
            unseen_slow = _dense(prep.transform(sklearn_input(probes.unseen)))
        except ValueError:
            unseen_slow = None  # e.g. OneHotEncoder(handle_unknown="error")
    unseen_fast = transform(probes.unseen)
    if unseen_slow is None or unseen_fast is None:
        return unseen_slow is None and unseen_fast is None
    return unseen_fast.shape == unseen_slow.shape and bool(
        np.allclose(unseen_fast, unseen_slow, rtol=RTOL, atol=ATOL, equal_nan=True)
    )


def _same_predictions(final: Any, fast: Matrix, pipeline: Any, probe: ModelInput) -> bool:
    rows = sklearn_input(probe)
    if callable(getattr(final, "predict_proba", None)):
        mine = np.asarray(final.predict_proba(fast), dtype=np.float64)
        theirs = np.asarray(pipeline.predict_proba(rows), dtype=np.float64)
        if mine.shape != theirs.shape or not np.allclose(mine, theirs, rtol=RTOL, atol=ATOL):
            return False
    mine, theirs = np.asarray(final.predict(fast)), np.asarray(pipeline.predict(rows))
    if mine.shape != theirs.shape:
        return False
    if theirs.dtype.kind == "f":  # a regressor's values: summed in another order
        return bool(np.allclose(mine, theirs, rtol=RTOL, atol=ATOL))
    return bool(np.array_equal(mine, theirs))  # labels: exactly


def _dense(matrix: Any) -> Matrix:
    dense = matrix.toarray() if hasattr(matrix, "toarray") else matrix
    return np.asarray(dense, dtype=np.float64)
