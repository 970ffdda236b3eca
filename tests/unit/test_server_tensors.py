"""Decoding Open Inference Protocol v2 JSON tensors."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from modelrollout.server.datatypes import RequestError
from modelrollout.server.tensors import (
    Tensor,
    decode_request,
    features_matrix,
    output_tensor,
)


def _body(*inputs: dict[str, object], **extra: object) -> bytes:
    return orjson.dumps({"inputs": list(inputs), **extra})


def _t(datatype: str, shape: list[int], data: object, name: str = "input-0") -> dict[str, object]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


@pytest.mark.parametrize(
    ("datatype", "data", "dtype"),
    [
        ("FP32", [1.5, 2], np.float32),
        ("FP64", [1.5, 2], np.float64),
        ("INT32", [1, -2], np.int32),
        ("INT64", [1, 2], np.int64),
        ("BOOL", [True, False], np.bool_),
        ("BYTES", ["a", "b"], object),
    ],
)
def test_datatypes(datatype: str, data: list[object], dtype: type) -> None:
    req = decode_request(_body(_t(datatype, [2], data)))
    assert req.inputs[0].array.dtype == np.dtype(dtype)
    assert req.inputs[0].array.tolist() == data


def test_flat_and_nested_data_give_the_same_matrix() -> None:
    flat = decode_request(_body(_t("FP64", [2, 3], [1, 2, 3, 4, 5, 6])))
    nested = decode_request(_body(_t("FP64", [2, 3], [[1, 2, 3], [4, 5, 6]])))
    assert np.array_equal(flat.inputs[0].array, nested.inputs[0].array)
    assert flat.inputs[0].array.shape == (2, 3)


def test_id_and_requested_outputs() -> None:
    req = decode_request(_body(_t("FP64", [1], [1]), id="r1", outputs=[{"name": "predict"}]))
    assert req.id == "r1" and req.outputs == ["predict"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"inputs": []}',
        b'{"inputs": [1]}',
        _body(_t("FP99", [1], [1])),
        _body(_t("FP64", [2], [1])),
        _body(_t("FP64", [-1], [1])),
        _body(_t("FP64", [True], [1])),
        _body(_t("FP64", [], [1])),
        _body(_t("FP64", [1], ["1.0"])),
        _body(_t("FP64", [1], [None])),
        _body(_t("FP64", [2], [[1], [2, 3]])),
        _body(_t("FP32", [1], [1e300])),
        _body(_t("INT32", [1], [2**40])),
        _body(_t("INT64", [1], [1.5])),
        _body(_t("BOOL", [1], [1])),
        _body(_t("BYTES", [1], [1])),
        _body(_t("FP64", [1], {"a": 1})),
        _body(_t("FP64", [1], [1]), id=5),
        _body(_t("FP64", [1], [1]), outputs=[{"nom": "x"}]),
        _body(_t("FP64", [1], [1]), parameters=[]),
    ],
)
def test_bad_requests_are_request_errors(body: bytes) -> None:
    with pytest.raises(RequestError) as err:
        decode_request(body)
    assert err.value.status == 400


def _tensor(arr: list[object], name: str = "x") -> Tensor:
    return Tensor(name, "FP64", np.asarray(arr, dtype=np.float64))


def test_features_matrix_shapes() -> None:
    assert features_matrix([_tensor([[1, 2, 3]])], 3, None).shape == (1, 3)
    assert features_matrix([_tensor([1, 2, 3])], 3, None).shape == (1, 3)
    assert features_matrix([_tensor([1, 2, 3])], 1, None).shape == (3, 1)
    with pytest.raises(RequestError, match="expected 4 features"):
        features_matrix([_tensor([[1, 2, 3]])], 4, None)
    with pytest.raises(RequestError, match="no rows"):
        features_matrix([Tensor("x", "FP64", np.zeros((0, 3)))], 3, None)
    with pytest.raises(RequestError, match="dimensions"):
        features_matrix([Tensor("x", "FP64", np.zeros((1, 1, 3)))], 3, None)


def test_several_inputs_are_columns_ordered_by_feature_names() -> None:
    cols = [_tensor([1, 2], "b"), _tensor([[3], [4]], "a")]
    assert features_matrix(cols, 2, ["a", "b"]).tolist() == [[3, 1], [4, 2]]
    assert features_matrix(cols, 2, None).tolist() == [[1, 3], [2, 4]]
    with pytest.raises(RequestError, match="different numbers of rows"):
        features_matrix([_tensor([1, 2]), _tensor([1])], 2, None)


def test_output_tensor_datatypes() -> None:
    assert output_tensor("p", np.array([1, 0]))["datatype"] == "INT64"
    assert output_tensor("p", np.array(["x"]))["data"] == ["x"]
    proba = output_tensor("p", np.array([[0.25, 0.75]]))
    assert proba == {"name": "p", "datatype": "FP64", "shape": [1, 2], "data": [0.25, 0.75]}
