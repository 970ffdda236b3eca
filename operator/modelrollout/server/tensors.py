"""Open Inference Protocol v2 tensors in their JSON form: request decoding, output encoding.

Everything a client can send is checked here, so a bad request becomes a ``RequestError``
(HTTP 400 with the protocol's ``{"error": ...}`` body) and never reaches the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

MAX_DIMS = 8

_FLOAT = {"FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
_INT: dict[str, type[np.integer[Any]]] = {
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
}
_INT_RANGE = {k: (int(np.iinfo(t).min), int(np.iinfo(t).max)) for k, t in _INT.items()}
DATATYPES = frozenset({*_FLOAT, *_INT, "BOOL", "BYTES"})


class RequestError(Exception):
    """The client's fault: answered with ``status`` and ``{"error": message}``."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Tensor:
    name: str
    datatype: str
    array: np.ndarray[Any, Any]


@dataclass(frozen=True)
class InferRequest:
    id: str | None
    inputs: list[Tensor]
    outputs: list[str] | None  # names the client asked for; None means all
    content_type: str | None = None  # parameters.content_type of the request ("pd": a DataFrame)


def decode_request(body: bytes) -> InferRequest:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise RequestError(f"malformed JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise RequestError("the request body must be a JSON object")
    req_id = doc.get("id")
    if req_id is not None and not isinstance(req_id, str):
        raise RequestError("'id' must be a string")
    inputs = doc.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise RequestError("'inputs' must be a non-empty list of tensors")
    params = doc.get("parameters")
    if params is not None and not isinstance(params, dict):
        raise RequestError("'parameters' must be an object")
    content_type = (params or {}).get("content_type")
    if content_type is not None and not isinstance(content_type, str):
        raise RequestError("'parameters.content_type' must be a string")
    return InferRequest(
        id=req_id,
        inputs=[decode_tensor(t, i) for i, t in enumerate(inputs)],
        outputs=_requested_outputs(doc.get("outputs")),
        content_type=content_type,
    )


def _requested_outputs(outputs: Any) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list):
        raise RequestError("'outputs' must be a list")
    names: list[str] = []
    for out in outputs:
        name = out.get("name") if isinstance(out, dict) else None
        if not isinstance(name, str):
            raise RequestError("each requested output needs a string 'name'")
        names.append(name)
    return names


def decode_tensor(doc: Any, index: int) -> Tensor:
    if not isinstance(doc, dict):
        raise RequestError(f"input {index} must be an object")
    name = doc.get("name", f"input-{index}")
    datatype = doc.get("datatype")
    shape = doc.get("shape")
    data = doc.get("data")
    if not isinstance(name, str):
        raise RequestError(f"input {index}: 'name' must be a string")
    if datatype not in DATATYPES:
        raise RequestError(f"input {name!r}: unsupported datatype {datatype!r}")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= MAX_DIMS
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise RequestError(f"input {name!r}: 'shape' must be a list of 1 to {MAX_DIMS} sizes >= 0")
    if not isinstance(data, list):
        raise RequestError(f"input {name!r}: 'data' must be a list")
    array = _to_array(data, datatype, name)
    if array.size != math.prod(shape):
        raise RequestError(f"input {name!r}: {array.size} values do not fill shape {shape}")
    return Tensor(name, datatype, array.reshape(shape))


def _to_array(data: list[Any], datatype: str, name: str) -> np.ndarray[Any, Any]:
    try:
        # No dtype here: numpy infers the kind, so "1.5" or true cannot sneak into a number.
        raw = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise RequestError(f"input {name!r}: 'data' is ragged or holds mixed values") from None
    kind = raw.dtype.kind
    if datatype in _FLOAT:
        if kind not in "fiu":
            raise RequestError(f"input {name!r}: {datatype} data must be numbers")
        with np.errstate(over="ignore"):
            out = raw.astype(_FLOAT[datatype], copy=False)
        if not np.isfinite(out).all():
            raise RequestError(f"input {name!r}: values out of range for {datatype}")
        return out
    if datatype in _INT:
        if kind not in "iu":
            raise RequestError(f"input {name!r}: {datatype} data must be integers")
        lo, hi = _INT_RANGE[datatype]
        if raw.size and (int(raw.min()) < lo or int(raw.max()) > hi):
            raise RequestError(f"input {name!r}: values out of range for {datatype}")
        return raw.astype(_INT[datatype], copy=False)
    if datatype == "BOOL":
        if kind != "b" and raw.size:
            raise RequestError(f"input {name!r}: BOOL data must be true/false")
        return raw.astype(np.bool_)
    if kind != "U" and raw.size:
        raise RequestError(f"input {name!r}: BYTES data must be strings")
    return raw.astype(object)


def features_matrix(
    inputs: list[Tensor], n_features: int | None, feature_names: list[str] | None
) -> np.ndarray[Any, Any]:
    """Turn the request's tensors into what ``estimator.predict`` takes.

    One input: ``[rows, features]`` as is, ``[features]`` as one row, or BYTES ``[rows]``
    (a text pipeline). Several inputs: one column each (``[rows]`` or ``[rows, 1]``),
    ordered by the model's feature names when they all match.
    """
    if len(inputs) == 1:
        x = inputs[0].array
        if x.ndim == 1:
            if x.dtype == object:
                matrix = x
            elif n_features is not None and (x.shape[0] == n_features != 1):
                matrix = x.reshape(1, -1)
            else:
                matrix = x.reshape(-1, 1)
        elif x.ndim == 2:
            matrix = x
        else:
            raise RequestError(f"input {inputs[0].name!r}: expected 1 or 2 dimensions")
    else:
        matrix = _stack_columns(inputs, feature_names)
    if matrix.shape[0] == 0:
        raise RequestError("the request holds no rows")
    if matrix.ndim == 2 and n_features is not None and matrix.shape[1] != n_features:
        raise RequestError(f"expected {n_features} features per row, got {matrix.shape[1]}")
    return matrix


def _stack_columns(inputs: list[Tensor], feature_names: list[str] | None) -> np.ndarray[Any, Any]:
    columns = []
    for t in inputs:
        if t.array.ndim == 2 and t.array.shape[1] == 1:
            columns.append(t.array[:, 0])
        elif t.array.ndim == 1:
            columns.append(t.array)
        else:
            raise RequestError(f"input {t.name!r}: with several inputs each must be one column")
    if len({c.shape[0] for c in columns}) != 1:
        raise RequestError("inputs have different numbers of rows")
    if feature_names is not None and sorted(t.name for t in inputs) == sorted(feature_names):
        by_name = {t.name: c for t, c in zip(inputs, columns, strict=True)}
        columns = [by_name[n] for n in feature_names]
    kinds = {c.dtype.kind for c in columns}
    if "O" in kinds and len(kinds) > 1:
        raise RequestError(
            "BYTES and numeric inputs together make a DataFrame: name the inputs as the model's "
            'columns or send parameters {"content_type": "pd"}'
        )
    return np.column_stack(columns)


def output_tensor(name: str, array: np.ndarray[Any, Any]) -> dict[str, Any]:
    """A result array as a protocol output tensor (row-major flat data)."""
    kind = array.dtype.kind
    if kind == "f":
        datatype, data = "FP64" if array.dtype.itemsize == 8 else "FP32", array.ravel().tolist()
    elif kind == "b":
        datatype, data = "BOOL", array.ravel().tolist()
    elif kind in "iu":
        datatype, data = "INT64", array.ravel().tolist()
    else:
        datatype, data = "BYTES", [str(v) for v in array.ravel().tolist()]
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def dtype_name(kind: str) -> str:
    """Protocol datatype for a numpy dtype kind (model metadata)."""
    return {"f": "FP64", "b": "BOOL", "i": "INT64", "u": "INT64"}.get(kind, "BYTES")
