"""DataFrame requests: one named input per column, the way MLServer's pandas codec and KServe's
clients send a pandas DataFrame.

The most common production scikit-learn model is a Pipeline fitted on a DataFrame: a
ColumnTransformer that picks columns by name (a scaler on numeric ones, a one-hot encoder on a
string one). It needs a DataFrame back, with the fitted column names and a string column kept as
strings, so such a request becomes one here instead of a numeric matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from modelrollout.server.datatypes import RequestError
from modelrollout.server.loading import LoadedModel
from modelrollout.server.tensors import InferRequest, Tensor, features_matrix

# The protocol's `parameters.content_type` that MLServer's PandasCodec puts on a request.
PANDAS = "pd"


class Columns:
    """A DataFrame request before pandas: named columns of equal length, in the model's order
    when known. Building the DataFrame costs more than a preprocessing step on ONNX Runtime
    (server.preprocessing) takes on the arrays, so it is built only when scikit-learn needs it."""

    def __init__(self, arrays: dict[str, np.ndarray[Any, Any]]) -> None:
        self.arrays = arrays
        self._frame: pd.DataFrame | None = None

    def frame(self) -> pd.DataFrame:
        if self._frame is None:
            self._frame = pd.DataFrame(self.arrays, copy=False)
        return self._frame


# What a request becomes for the model: a numeric or string matrix, or named columns.
ModelInput: TypeAlias = np.ndarray[Any, Any] | Columns
# What scikit-learn takes: a matrix, or the DataFrame of the named columns.
SklearnInput: TypeAlias = np.ndarray[Any, Any] | pd.DataFrame


def sklearn_input(x: ModelInput) -> SklearnInput:
    return x.frame() if isinstance(x, Columns) else x


def model_input(req: InferRequest, model: LoadedModel, numeric_fast_path: bool) -> ModelInput:
    """The request as the model takes it. With a fast path (a bare estimator, numbers only) a
    DataFrame of numeric columns in the fitted order is handed on as its matrix: same values."""
    if not wants_frame(req.inputs, req.content_type, model.feature_names):
        return features_matrix(req.inputs, model.n_features, model.feature_names)
    columns = to_columns(req.inputs, model.feature_names, model.column_types or {})
    arrays = list(columns.arrays.values())
    in_fitted_order = model.feature_names == list(columns.arrays)
    if numeric_fast_path and in_fitted_order and all(a.dtype.kind in "fiub" for a in arrays):
        return np.column_stack(arrays)
    return columns


def wants_frame(
    inputs: Sequence[Tensor], content_type: str | None, feature_names: Sequence[str] | None
) -> bool:
    """A DataFrame when the client says so, or when the inputs are exactly the columns the model
    was fitted on (a model fitted on a DataFrame has `feature_names_in_`)."""
    if content_type == PANDAS:
        return True
    names = [t.name for t in inputs]
    return feature_names is not None and sorted(names) == sorted(feature_names)


def to_columns(
    inputs: Sequence[Tensor],
    feature_names: Sequence[str] | None,
    column_types: Mapping[str, str],
) -> Columns:
    """One column per input (`[rows]` or `[rows, 1]`), in the model's column order when known;
    BYTES columns stay strings, numbers keep their protocol datatype. A column the model learnt
    as strings must come as BYTES."""
    names = [t.name for t in inputs]
    for t in inputs:
        if column_types.get(t.name) == "BYTES" and t.datatype != "BYTES":
            raise RequestError(
                f"input {t.name!r}: the model learnt strings in this column: send BYTES, "
                f"not {t.datatype}"
            )
    if len(set(names)) != len(names):
        duplicate = next(n for n in names if names.count(n) > 1)
        raise RequestError(f"input {duplicate!r} appears twice: each column needs its own name")
    columns = {t.name: _column(t) for t in inputs}
    if len({len(c) for c in columns.values()}) != 1:
        sizes = ", ".join(f"{n}: {len(c)}" for n, c in columns.items())
        raise RequestError(f"columns have different numbers of rows ({sizes})")
    if feature_names is not None and sorted(names) == sorted(feature_names):
        columns = {n: columns[n] for n in feature_names}
    if not columns or len(next(iter(columns.values()))) == 0:
        raise RequestError("the request holds no rows")
    return Columns(columns)


def _column(t: Tensor) -> np.ndarray[Any, Any]:
    if t.array.ndim == 1:
        return t.array
    if t.array.ndim == 2 and t.array.shape[1] == 1:
        return t.array[:, 0]
    raise RequestError(
        f"input {t.name!r}: a DataFrame column must have shape [rows] or [rows, 1], "
        f"not {list(t.array.shape)}"
    )
