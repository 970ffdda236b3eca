"""The gRPC form's decoding (typed contents, raw contents) and encoding, and a fuzzer: whatever
message arrives, it decodes or is a RequestError, never anything else."""

from __future__ import annotations

import os
import struct
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelrollout.server.app import Answer, ServerState
from modelrollout.server.datatypes import RequestError
from modelrollout.server.faults import FaultConfig, Faults
from modelrollout.server.grpc_messages import MESSAGES
from modelrollout.server.grpc_service import CONTENTS, decode_grpc, encode_grpc
from modelrollout.server.inference import Prediction
from modelrollout.server.metrics import ServerMetrics
from modelrollout.server.tensors import InferRequest

EXAMPLES = int(os.environ.get("MODELROLLOUT_FUZZ_EXAMPLES", "300"))
Request = MESSAGES["ModelInferRequest"]


def request_with(datatype: str, shape: list[int], values: list[Any], **fields: Any) -> Any:
    message = Request(model_name="m", **fields)
    tensor = message.inputs.add(name="x", datatype=datatype, shape=shape)
    getattr(tensor.contents, CONTENTS[datatype]).extend(values)
    return message


@pytest.mark.parametrize(
    ("datatype", "values", "expected"),
    [
        ("INT32", [1, -2, 3, 4], np.array([[1, -2], [3, 4]], dtype=np.int32)),
        ("UINT8", [0, 255, 7, 9], np.array([[0, 255], [7, 9]], dtype=np.uint8)),
        ("BOOL", [True, False, False, True], np.array([[True, False], [False, True]])),
        ("FP32", [0.5, 1.5, 2.5, 3.5], np.array([[0.5, 1.5], [2.5, 3.5]], dtype=np.float32)),
        ("BYTES", [b"a", b"b", "é".encode(), b""], np.array([["a", "b"], ["é", ""]], dtype=object)),
    ],
)
def test_typed_contents_decode_as_json_data_would(
    datatype: str, values: list[Any], expected: np.ndarray
) -> None:
    req = decode_grpc(request_with(datatype, [2, 2], values, id="r"))
    (tensor,) = req.inputs
    assert req.id == "r" and tensor.datatype == datatype
    assert tensor.array.dtype == expected.dtype and np.array_equal(tensor.array, expected)
    assert not req.binary_data_output


def test_raw_contents_and_the_request_s_parameters() -> None:
    message = Request(model_name="m")
    message.inputs.add(name="x", datatype="FP16", shape=[2])
    message.raw_input_contents.append(np.array([1.5, -2.0], dtype="<f2").tobytes())
    message.parameters["content_type"].string_param = "pd"
    message.outputs.add(name="predict_proba")
    req = decode_grpc(message)
    assert req.inputs[0].array.tolist() == [1.5, -2.0]
    assert req.content_type == "pd" and req.outputs == ["predict_proba"]
    assert req.binary_data_output  # raw in, raw out


RAW_MISMATCH = Request(model_name="m")
RAW_MISMATCH.inputs.add(name="x", datatype="FP32", shape=[1])
RAW_MISMATCH.inputs.add(name="y", datatype="FP32", shape=[1])
RAW_MISMATCH.raw_input_contents.append(struct.pack("<f", 1.0))
FP16_TYPED = Request(model_name="m")
FP16_TYPED.inputs.add(name="x", datatype="FP16", shape=[1])


@pytest.mark.parametrize(
    ("message", "words"),
    [
        (RAW_MISMATCH, "raw_input_contents has 1 entries for 2 inputs"),
        (FP16_TYPED, "raw_input_contents only"),
        (request_with("BYTES", [1], [b"\xff"]), "UTF-8"),
        (request_with("FP64", [3], [1.0, 2.0]), "do not fill shape"),
        (request_with("INT8", [1], [300]), "out of range"),
        (Request(model_name="m"), "non-empty"),
    ],
)
def test_a_bad_message_is_a_request_error_naming_the_cause(message: Any, words: str) -> None:
    with pytest.raises(RequestError, match=words):
        decode_grpc(message)


def test_outputs_in_the_form_the_request_used() -> None:
    state = ServerState("m", "3", ServerMetrics("m", "3", "r"), Faults(FaultConfig()), 1024)
    labels = np.array(["cat", "dog"], dtype=object)
    proba = np.array([[0.25, 0.75], [0.5, 0.5]])
    prediction = Prediction([("predict", labels), ("predict_proba", proba)], None, None)
    typed = encode_grpc(state, Answer(InferRequest("i", [], None), prediction))
    assert (typed.model_name, typed.model_version, typed.id) == ("m", "3", "i")
    assert list(typed.outputs[0].contents.bytes_contents) == [b"cat", b"dog"]
    assert list(typed.outputs[1].contents.fp64_contents) == [0.25, 0.75, 0.5, 0.5]
    assert list(typed.outputs[1].shape) == [2, 2]
    raw = encode_grpc(
        state, Answer(InferRequest(None, [], None, binary_data_output=True), prediction)
    )
    assert raw.raw_output_contents[0] == b"\x03\0\0\0cat\x03\0\0\0dog"
    assert np.frombuffer(raw.raw_output_contents[1], dtype="<f8").tolist() == proba.ravel().tolist()


DATATYPES = [*CONTENTS, "FP16", "X", ""]
contents_values = {
    "bool_contents": st.lists(st.booleans(), max_size=6),
    "int_contents": st.lists(st.integers(-(2**31), 2**31 - 1), max_size=6),
    "int64_contents": st.lists(st.integers(-(2**63), 2**63 - 1), max_size=6),
    "uint_contents": st.lists(st.integers(0, 2**32 - 1), max_size=6),
    "uint64_contents": st.lists(st.integers(0, 2**64 - 1), max_size=6),
    "fp32_contents": st.lists(st.floats(width=32), max_size=6),
    "fp64_contents": st.lists(st.floats(), max_size=6),
    "bytes_contents": st.lists(st.binary(max_size=4), max_size=6),
}


@st.composite
def messages(draw: st.DrawFn) -> Any:
    message = Request(model_name="m", id=draw(st.text(max_size=4)))
    for _ in range(draw(st.integers(0, 3))):
        tensor = message.inputs.add(
            name=draw(st.text(max_size=4)),
            datatype=draw(st.sampled_from(DATATYPES)),
            shape=draw(st.lists(st.integers(-1, 6), max_size=9)),
        )
        field = draw(st.sampled_from(sorted(contents_values)))
        getattr(tensor.contents, field).extend(draw(contents_values[field]))
    for raw in draw(st.lists(st.binary(max_size=24), max_size=3)):
        message.raw_input_contents.append(raw)
    if draw(st.booleans()):
        message.parameters["content_type"].string_param = draw(st.sampled_from(["pd", "np", ""]))
    return message


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=EXAMPLES < 1000,
)
@given(message=messages())
def test_any_message_decodes_or_is_a_request_error(message: Any) -> None:
    try:
        req = decode_grpc(message)
    except RequestError as exc:
        assert exc.status == 400 and exc.message
    else:
        assert len(req.inputs) == len(message.inputs) > 0
