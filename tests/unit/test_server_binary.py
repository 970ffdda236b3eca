"""The binary tensor extension (what KServe's and Triton's clients send by default): requests and
responses byte for byte, against the same request in JSON, and every way a body can lie about
its sizes."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from aiohttp.test_utils import TestClient
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from modelrollout.server.app import ServerState
from modelrollout.server.binary import HEADER_LENGTH
from modelrollout.server.faults import FaultConfig, Faults
from modelrollout.server.loading import ModelSource, describe
from modelrollout.server.metrics import ServerMetrics
from tests.unit.server_client import ClientFor

X, Y = make_classification(
    n_samples=200, n_features=4, n_classes=3, n_informative=3, n_redundant=0, random_state=2
)
CLASSIFIER = LogisticRegression(max_iter=500).fit(X, Y)
FRAME = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0] * 5, "colour": ["red", "blue"] * 10})
PIPELINE = Pipeline(
    [
        ("prep", ColumnTransformer([("c", OneHotEncoder(), ["colour"])], remainder="passthrough")),
        ("lr", LogisticRegression()),
    ]
).fit(FRAME, ["small", "big"] * 10)
ROWS = X[:6].astype(np.float32)

Factory = Callable[[Any], Any]


@pytest.fixture
def serve(client_for: ClientFor) -> Factory:
    async def start(estimator: Any) -> TestClient[Any, Any]:
        state = ServerState("m", "1", ServerMetrics("m", "1", "r"), Faults(FaultConfig()), 1 << 16)
        state.set_model(describe(estimator, ModelSource(uri="memory"), "e" * 64))
        return await client_for(state)

    return start


def strings(values: list[str]) -> bytes:
    """BYTES elements as the extension lays them out: a 4-byte little-endian length each."""
    return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)


def binary_body(
    inputs: list[tuple[dict[str, Any], bytes]], **extra: Any
) -> tuple[bytes, dict[str, str]]:
    """A request whose inputs all travel as bytes after the JSON."""
    head = orjson.dumps(
        {
            "inputs": [
                {**doc, "parameters": {"binary_data_size": len(raw)}} for doc, raw in inputs
            ],
            **extra,
        }
    )
    body = head + b"".join(raw for _, raw in inputs)
    return body, {HEADER_LENGTH: str(len(head)), "Content-Type": "application/octet-stream"}


async def post(
    client: TestClient[Any, Any], body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any], bytes, Any]:
    """Status, the JSON part, the binary part and the response's headers."""
    resp = await client.post("/v2/models/m/infer", data=body, headers=headers)
    raw = await resp.read()
    length = resp.headers.get(HEADER_LENGTH)
    cut = int(length) if length is not None else len(raw)
    return resp.status, orjson.loads(raw[:cut]), raw[cut:], resp.headers


def matrix_input() -> tuple[dict[str, Any], bytes]:
    doc = {"name": "x", "datatype": "FP32", "shape": list(ROWS.shape)}
    return doc, ROWS.astype("<f4").tobytes()


async def test_binary_inputs_answer_as_the_same_request_in_json(serve: Factory) -> None:
    client = await serve(CLASSIFIER)
    body, headers = binary_body([matrix_input()], id="b-1")
    status, doc, tail, _ = await post(client, body, headers)
    assert status == 200, doc
    assert doc["id"] == "b-1" and tail == b""
    json_body = {"inputs": [{**matrix_input()[0], "data": ROWS.ravel().tolist()}]}
    resp = await client.post("/v2/models/m/infer", json=json_body)
    assert doc["outputs"] == (await resp.json())["outputs"]
    assert doc["outputs"][0]["data"] == CLASSIFIER.predict(ROWS).tolist()


async def test_binary_outputs_byte_for_byte(serve: Factory) -> None:
    client = await serve(CLASSIFIER)
    body, headers = binary_body([matrix_input()], parameters={"binary_data_output": True})
    status, doc, tail, resp_headers = await post(client, body, headers)
    assert status == 200, doc
    assert resp_headers["Content-Type"] == "application/octet-stream"
    predict, proba = doc["outputs"]
    assert "data" not in predict and "data" not in proba
    sizes = [predict["parameters"]["binary_data_size"], proba["parameters"]["binary_data_size"]]
    assert sum(sizes) == len(tail)
    labels = np.frombuffer(tail[: sizes[0]], dtype="<i8")
    probabilities = np.frombuffer(tail[sizes[0] :], dtype="<f8").reshape(proba["shape"])
    assert predict["datatype"] == "INT64" and labels.tolist() == CLASSIFIER.predict(ROWS).tolist()
    assert np.allclose(probabilities, CLASSIFIER.predict_proba(ROWS), rtol=0, atol=1e-12)


async def test_one_output_in_binary_the_other_in_json(serve: Factory) -> None:
    client = await serve(CLASSIFIER)
    wanted = [{"name": "predict"}, {"name": "predict_proba", "parameters": {"binary_data": True}}]
    body, headers = binary_body([matrix_input()], outputs=wanted)
    status, doc, tail, _ = await post(client, body, headers)
    assert status == 200, doc
    predict, proba = doc["outputs"]
    assert predict["data"] == CLASSIFIER.predict(ROWS).tolist()
    assert proba["parameters"]["binary_data_size"] == len(tail) == ROWS.shape[0] * 3 * 8


async def test_a_dataframe_in_binary_strings_and_numbers(serve: Factory) -> None:
    client = await serve(PIPELINE)
    rows = FRAME.iloc[:5]
    body, headers = binary_body(
        [
            (tensor("colour", "BYTES", 5, 1), strings(list(rows["colour"]))),
            (tensor("size", "FP64", 5, 1), rows["size"].to_numpy("<f8").tobytes()),
        ],
        parameters={"content_type": "pd", "binary_data_output": True},
    )
    status, doc, tail, _ = await post(client, body, headers)
    assert status == 200, doc
    predict = doc["outputs"][0]
    assert predict["datatype"] == "BYTES"
    size = predict["parameters"]["binary_data_size"]
    labels, offset = [], 0
    while offset < size:
        (n,) = struct.unpack_from("<I", tail, offset)
        labels.append(tail[offset + 4 : offset + 4 + n].decode())
        offset += 4 + n
    assert labels == PIPELINE.predict(rows).tolist()


def lying(change: Callable[[bytes, dict[str, str]], tuple[bytes, dict[str, str]]]) -> Any:
    return change(*binary_body([matrix_input()]))


FLOATS = ROWS.astype("<f4").tobytes()
BAD_BODIES = {
    "header past the body": lying(lambda b, h: (b, {**h, HEADER_LENGTH: str(len(b) + 1)})),
    "header not a number": lying(lambda b, h: (b, {**h, HEADER_LENGTH: "12x"})),
    "header zero": lying(lambda b, h: (b, {**h, HEADER_LENGTH: "0"})),
    "body cut short": lying(lambda b, h: (b[:-5], h)),
    "bytes left over": lying(lambda b, h: (b + b"\0\0\0\0", h)),
    "no header": lying(lambda b, h: (b, {"Content-Type": "application/octet-stream"})),
}


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
async def test_a_body_that_lies_about_its_sizes_is_a_400(serve: Factory, case: str) -> None:
    client = await serve(CLASSIFIER)
    body, headers = BAD_BODIES[case]
    status, doc, _, _ = await post(client, body, headers)
    assert status == 400, doc
    assert doc["error"], doc


def tensor(name: str, datatype: str, *shape: int) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": list(shape)}


NAN = struct.pack("<d", float("nan"))
# (input, its bytes, the name the error must give, a binary_data_size to declare instead)
BAD_TENSORS = {
    "size not a number": (tensor("x", "FP32", 6, 4), FLOATS, "x", "a"),
    "bytes do not fill the shape": (tensor("x", "FP32", 5, 4), FLOATS, "x", None),
    "NaN": (tensor("x", "FP64", 1), NAN, "x", None),
    "BOOL of 2": (tensor("x", "BOOL", 1), b"\x02", "x", None),
    "BYTES length cut off": (tensor("s", "BYTES", 1), b"\x05\0", "s", None),
    "BYTES past its input": (tensor("s", "BYTES", 1), b"\x09\0\0\0ab", "s", None),
    "BYTES not UTF-8": (tensor("s", "BYTES", 1), strings(["a"])[:4] + b"\xff", "s", None),
    "BYTES count": (tensor("s", "BYTES", 2), strings(["a"]), "s", None),
}


@pytest.mark.parametrize("case", BAD_TENSORS, ids=list(BAD_TENSORS))
async def test_a_bad_binary_tensor_is_a_400_naming_it(serve: Factory, case: str) -> None:
    client = await serve(CLASSIFIER)
    doc, raw, name, size = BAD_TENSORS[case]
    body, headers = binary_body([(doc, raw)])
    if size is not None:  # declare something else than the bytes' length
        head = orjson.dumps({"inputs": [{**doc, "parameters": {"binary_data_size": size}}]})
        body, headers = head + raw, {HEADER_LENGTH: str(len(head))}
    status, answer, _, _ = await post(client, body, headers)
    assert status == 400, answer
    assert repr(name) in answer["error"], answer


async def test_data_and_a_binary_size_together_are_refused(serve: Factory) -> None:
    client = await serve(CLASSIFIER)
    doc, raw = matrix_input()
    head = orjson.dumps(
        {"inputs": [{**doc, "data": [0.0] * 24, "parameters": {"binary_data_size": len(raw)}}]}
    )
    status, answer, _, _ = await post(client, head + raw, {HEADER_LENGTH: str(len(head))})
    assert status == 400 and "both" in answer["error"], answer
