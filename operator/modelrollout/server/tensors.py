"""Open Inference Protocol v2 tensors: request decoding (JSON, and the binary extension through
``server.binary``), output encoding.

Everything a client can send is checked here, so a bad request becomes a ``RequestError``
(HTTP 400 with the protocol's ``{"error": ...}`` body) and never reaches the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from modelrollout.server.binary import SIZE, BinaryInputs, decode_binary, encode_binary, split_body
from modelrollout.server.datatypes import (
    DATATYPES,
    FLOAT_TYPES,
    INT_RANGE,
    INT_TYPES,
    RequestError,
)

MAX_DIMS = 8


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
    binary_data_output: bool = False  # every output in binary (the request's parameter)
    binary_outputs: frozenset[str] = frozenset()  # requested outputs marked binary_data

    def wants_binary(self, output: str) -> bool:
        return self.binary_data_output or output in self.binary_outputs


def decode_request(body: bytes, header_length: str | None = None) -> InferRequest:
    """A request body; `header_length` is the Inference-Header-Content-Length header, which
    says that binary tensor data follows the JSON."""
    json_part, binary_part = split_body(body, header_length)
    try:
        doc = orjson.loads(json_part)
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
    binary = BinaryInputs(binary_part)
    tensors = [decode_tensor(t, i, binary) for i, t in enumerate(inputs)]
    binary.finish()
    names, binary_outputs = _requested_outputs(doc.get("outputs"))
    return InferRequest(
        id=req_id,
        inputs=tensors,
        outputs=names,
        content_type=content_type,
        binary_data_output=_flag(params, "binary_data_output", "parameters"),
        binary_outputs=binary_outputs,
    )


def _flag(params: dict[str, Any] | None, key: str, where: str) -> bool:
    value = (params or {}).get(key, False)
    if not isinstance(value, bool):
        raise RequestError(f"'{where}.{key}' must be true or false")
    return value


def _requested_outputs(outputs: Any) -> tuple[list[str] | None, frozenset[str]]:
    """The names asked for (None: all) and those of them wanted in binary."""
    if outputs is None:
        return None, frozenset()
    if not isinstance(outputs, list):
        raise RequestError("'outputs' must be a list")
    names: list[str] = []
    binary: set[str] = set()
    for out in outputs:
        name = out.get("name") if isinstance(out, dict) else None
        if not isinstance(name, str):
            raise RequestError("each requested output needs a string 'name'")
        params = out.get("parameters")
        if params is not None and not isinstance(params, dict):
            raise RequestError(f"output {name!r}: 'parameters' must be an object")
        if _flag(params, "binary_data", f"outputs[{name!r}].parameters"):
            binary.add(name)
        names.append(name)
    return names, frozenset(binary)


def decode_tensor(doc: Any, index: int, binary: BinaryInputs) -> Tensor:
    if not isinstance(doc, dict):
        raise RequestError(f"input {index} must be an object")
    name = doc.get("name", f"input-{index}")
    datatype = doc.get("datatype")
    shape = doc.get("shape")
    data = doc.get("data")
    if not isinstance(name, str):
        raise RequestError(f"input {index}: 'name' must be a string")
    datatype, shape = check_header(name, datatype, shape)
    params = doc.get("parameters")
    if isinstance(params, dict) and SIZE in params:
        if "data" in doc:
            raise RequestError(f"input {name!r}: both 'data' and '{SIZE}'")
        return Tensor(
            name, datatype, decode_binary(binary.take(name, params[SIZE]), datatype, shape, name)
        )
    if not isinstance(data, list):
        raise RequestError(f"input {name!r}: 'data' must be a list")
    return values_tensor(name, datatype, shape, data)


def check_header(name: str, datatype: Any, shape: Any) -> tuple[str, list[int]]:
    """An input's datatype and shape, checked, whichever form carries its data."""
    if datatype not in DATATYPES:
        raise RequestError(f"input {name!r}: unsupported datatype {datatype!r}")
    if (
        not isinstance(shape, list)
        or not 1 <= len(shape) <= MAX_DIMS
        or not all(type(d) is int and d >= 0 for d in shape)
    ):
        raise RequestError(f"input {name!r}: 'shape' must be a list of 1 to {MAX_DIMS} sizes >= 0")
    return str(datatype), shape


def values_tensor(name: str, datatype: str, shape: list[int], data: list[Any]) -> Tensor:
    """An input from a list of values (JSON's `data`, gRPC's typed contents)."""
    array = to_array(data, datatype, name)
    if array.size != math.prod(shape):
        raise RequestError(f"input {name!r}: {array.size} values do not fill shape {shape}")
    return Tensor(name, datatype, array.reshape(shape))


def to_array(data: list[Any], datatype: str, name: str) -> np.ndarray[Any, Any]:
    try:
        # No dtype here: numpy infers the kind, so "1.5" or true cannot sneak into a number.
        raw = np.asarray(data)
    except (ValueError, TypeError, OverflowError, RecursionError):
        raise RequestError(f"input {name!r}: 'data' is ragged or holds mixed values") from None
    kind = raw.dtype.kind
    if datatype in FLOAT_TYPES:
        if kind not in "fiu":
            raise RequestError(f"input {name!r}: {datatype} data must be numbers")
        with np.errstate(over="ignore"):
            out = raw.astype(FLOAT_TYPES[datatype], copy=False)
        if not np.isfinite(out).all():
            raise RequestError(f"input {name!r}: values out of range for {datatype}")
        return out
    if datatype in INT_TYPES:
        if kind not in "iu":
            raise RequestError(f"input {name!r}: {datatype} data must be integers")
        lo, hi = INT_RANGE[datatype]
        if raw.size and (int(raw.min()) < lo or int(raw.max()) > hi):
            raise RequestError(f"input {name!r}: values out of range for {datatype}")
        return raw.astype(INT_TYPES[datatype], copy=False)
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


def output_datatype(array: np.ndarray[Any, Any]) -> str:
    """The protocol datatype a result array is sent as."""
    kind = array.dtype.kind
    if kind == "f":
        return "FP64" if array.dtype.itemsize == 8 else "FP32"
    return {"b": "BOOL", "i": "INT64", "u": "INT64"}.get(kind, "BYTES")


def output_tensor(name: str, array: np.ndarray[Any, Any]) -> dict[str, Any]:
    """A result array as a protocol output tensor (row-major flat data)."""
    datatype = output_datatype(array)
    data = array.ravel().tolist()
    if datatype == "BYTES":
        data = [str(v) for v in data]
    return {"name": name, "datatype": datatype, "shape": list(array.shape), "data": data}


def encode_outputs(
    outputs: list[tuple[str, np.ndarray[Any, Any]]], req: InferRequest
) -> tuple[list[dict[str, Any]], bytes]:
    """The response's output tensors, and the bytes that follow the JSON for those the request
    wants in binary (in the same order)."""
    tensors: list[dict[str, Any]] = []
    parts: list[bytes] = []
    for name, array in outputs:
        if not req.wants_binary(name):
            tensors.append(output_tensor(name, array))
            continue
        datatype = output_datatype(array)
        raw = encode_binary(datatype, array)
        parts.append(raw)
        tensors.append(
            {
                "name": name,
                "datatype": datatype,
                "shape": list(array.shape),
                "parameters": {SIZE: len(raw)},
            }
        )
    return tensors, b"".join(parts)


def dtype_name(kind: str) -> str:
    """Protocol datatype for a numpy dtype kind (model metadata)."""
    return {"f": "FP64", "b": "BOOL", "i": "INT64", "u": "INT64"}.get(kind, "BYTES")
