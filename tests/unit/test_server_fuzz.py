"""Fuzzing the infer endpoint: whatever arrives, the answer is a 2xx/4xx with the
protocol's body, never a 5xx (the model here cannot fail on valid input) and never a crash.

MODELROLLOUT_FUZZ_EXAMPLES sets the number of payloads (CI: 300; `make fuzz-server`: 10,000).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from modelrollout.server import feedback_token as token
from modelrollout.server.app import ServerState
from modelrollout.server.faults import FaultConfig, Faults
from modelrollout.server.loading import ModelSource, describe
from modelrollout.server.metrics import ServerMetrics
from tests.unit.server_client import client_on_own_loop

EXAMPLES = int(os.environ.get("MODELROLLOUT_FUZZ_EXAMPLES", "300"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    derandomize=EXAMPLES < 1000,  # CI runs the same cases every time; the full run explores
)
N_FEATURES = 4
DATATYPES = ["FP16", "FP32", "FP64", "INT8", "INT32", "INT64", "UINT64", "BOOL", "BYTES", "X"]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6), st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=30,
)
shapes = st.one_of(
    st.lists(st.integers(min_value=-1, max_value=9), min_size=0, max_size=4),
    st.just([1, N_FEATURES]),
    st.just([2, N_FEATURES]),
    json_values,
)
numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.integers(min_value=-(2**64), max_value=2**64),
    st.booleans(),
)
data = st.one_of(
    st.lists(numbers, max_size=12),
    st.lists(st.lists(numbers, min_size=N_FEATURES, max_size=N_FEATURES), max_size=3),
    json_values,
)
tensors = st.fixed_dictionaries(
    {"name": st.text(max_size=6), "datatype": st.sampled_from(DATATYPES), "shape": shapes},
    optional={"data": data, "parameters": json_values},
)
requests = st.fixed_dictionaries(
    {},
    optional={
        "id": st.one_of(st.text(max_size=8), json_values),
        "inputs": st.one_of(st.lists(tensors, max_size=3), json_values),
        "outputs": st.one_of(
            st.lists(st.fixed_dictionaries({"name": st.sampled_from(["predict", "x"])})),
            json_values,
        ),
        "parameters": json_values,
    },
)
payloads = st.one_of(
    # The stdlib encoder: it writes integers beyond 64 bits, which clients may send.
    requests.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=64),
)
paths = st.sampled_from(
    ["/v2/models/m/infer", "/v2/models/m/versions/1/infer", "/v2/models/other/infer"]
)


@pytest.fixture(scope="module")
def harness() -> Iterator[tuple[asyncio.AbstractEventLoop, TestClient[Any, Any], ServerState]]:
    x, y = make_classification(n_samples=100, n_features=N_FEATURES, random_state=0)
    state = ServerState("m", "1", ServerMetrics("m", "1", ""), Faults(FaultConfig()), 2048)
    state.set_model(describe(LogisticRegression().fit(x, y), ModelSource(uri="mem"), "0" * 64))
    with client_on_own_loop(state) as (loop, client):
        yield loop, client, state


@FUZZ
@given(path=paths, body=payloads)
def test_infer_never_answers_5xx(
    harness: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any], ServerState],
    path: str,
    body: bytes,
) -> None:
    loop, client, _ = harness

    async def call() -> tuple[int, Any]:
        resp = await client.post(path, data=body, headers={"Content-Type": "application/json"})
        return resp.status, orjson.loads(await resp.read())

    status, doc = loop.run_until_complete(call())
    assert status in (200, 400, 404, 413), (status, doc)
    if status == 200:
        assert doc["outputs"][0]["name"] == "predict"
    else:
        assert isinstance(doc["error"], str)


VALUES = {
    "FP64": st.floats(allow_nan=False, allow_infinity=False, width=32),
    "INT64": st.integers(min_value=-(2**40), max_value=2**40),
    "BOOL": st.booleans(),
    "BYTES": st.sampled_from(["a", "b", "c", "d", "", "zz"]),
}


@st.composite
def column(draw: st.DrawFn, name: str, rows: int) -> dict[str, Any]:
    """A column of a DataFrame request, mostly well formed (data that matches its datatype and
    shape), so that the model itself sees the odd values; one in ten anything at all."""
    well_formed = draw(st.integers(0, 9)) > 0
    natural = {"age": "FP64", "city": "BYTES"}.get(name)
    if natural is None or not draw(st.integers(0, 3)):
        natural = draw(st.sampled_from([*VALUES, "FP32", "INT8", "X"]))
    datatype = natural
    values = VALUES.get(datatype, VALUES["FP64"])
    data = draw(st.lists(values, min_size=rows, max_size=rows) if well_formed else json_values)
    shape = [rows, 1] if well_formed else draw(st.sampled_from([[rows], [rows, 2], [1, rows]]))
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


@st.composite
def frame_requests(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(
        st.one_of(
            st.permutations(["age", "city"]),
            st.lists(st.sampled_from(["age", "city", "other"]), min_size=1, max_size=4),
        )
    )
    rows = draw(st.integers(min_value=0, max_value=5))
    body: dict[str, Any] = {"inputs": [draw(column(name, rows)) for name in names]}
    if draw(st.booleans()):
        body["parameters"] = draw(st.one_of(st.just({"content_type": "pd"}), json_values))
    if draw(st.booleans()):
        wanted = st.sampled_from(["predict", "predict_proba", "x"])
        body["outputs"] = [{"name": n} for n in draw(st.lists(wanted, max_size=2))]
    return body


@pytest.fixture(scope="module")
def pipeline_harness() -> Iterator[tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]]]:
    """A Pipeline fitted on a DataFrame: a scaler on a number, a one-hot encoder on a string."""
    frame = pd.DataFrame({"age": [20.0, 35.0, 50.0, 65.0] * 5, "city": ["a", "b", "c", "d"] * 5})
    prep = ColumnTransformer([("n", StandardScaler(), ["age"]), ("c", OneHotEncoder(), ["city"])])
    model = Pipeline([("prep", prep), ("lr", LogisticRegression())]).fit(frame, [0, 1] * 10)
    state = ServerState("m", "1", ServerMetrics("m", "1", ""), Faults(FaultConfig()), 2048)
    state.set_model(describe(model, ModelSource(uri="mem"), "0" * 64))
    with client_on_own_loop(state) as (loop, client):
        yield loop, client


@FUZZ
@given(body=frame_requests())
def test_dataframe_requests_never_answer_5xx(
    pipeline_harness: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]],
    body: dict[str, Any],
) -> None:
    loop, client = pipeline_harness

    async def call() -> tuple[int, Any]:
        resp = await client.post("/v2/models/m/infer", data=json.dumps(body).encode())
        return resp.status, orjson.loads(await resp.read())

    status, doc = loop.run_until_complete(call())
    assert status in (200, 400), (status, doc, body)
    if status == 400:
        assert isinstance(doc["error"], str) and doc["error"], doc


ITEM_SIZES = {"FP32": 4, "FP64": 8, "INT64": 8, "INT8": 1, "BOOL": 1}


@st.composite
def binary_requests(draw: st.DrawFn) -> tuple[bytes, dict[str, str]]:
    """The binary extension: a JSON head whose inputs declare sizes, bytes after it, and an
    Inference-Header-Content-Length. Half are well formed (sizes that fit, the right header), so
    that the model sees what arbitrary bytes decode to; the rest lie anywhere."""
    if draw(st.booleans()):
        datatype = draw(st.sampled_from(sorted(ITEM_SIZES)))
        rows = draw(st.integers(min_value=1, max_value=3))
        n = rows * N_FEATURES * ITEM_SIZES[datatype]
        raw = draw(st.binary(min_size=n, max_size=n))
        doc = {"name": "input-0", "datatype": datatype, "shape": [rows, N_FEATURES]}
        head = json.dumps({"inputs": [{**doc, "parameters": {"binary_data_size": n}}]}).encode()
        return head + raw, {"Inference-Header-Content-Length": str(len(head))}
    inputs = []
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        rows = draw(st.integers(min_value=0, max_value=3))
        size = draw(st.one_of(st.integers(min_value=-2, max_value=64), json_values))
        inputs.append(
            {
                "name": draw(st.sampled_from(["input-0", "age", "city"])),
                "datatype": draw(st.sampled_from(DATATYPES)),
                "shape": draw(st.sampled_from([[rows, N_FEATURES], [rows], [rows, 1]])),
                "parameters": {"binary_data_size": size},
            }
        )
    head = json.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}}).encode()
    tail = draw(st.binary(max_size=96))
    length = draw(
        st.one_of(
            st.just(str(len(head))),
            st.integers(min_value=-1, max_value=len(head) + len(tail) + 1).map(str),
            st.text(alphabet="0123456789 +-x", max_size=4),
        )
    )
    return head + tail, {"Inference-Header-Content-Length": length}


@FUZZ
@given(request=binary_requests())
def test_binary_bodies_never_answer_5xx(
    harness: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any], ServerState],
    request: tuple[bytes, dict[str, str]],
) -> None:
    loop, client, _ = harness
    body, headers = request

    async def call() -> tuple[int, bytes]:
        resp = await client.post("/v2/models/m/infer", data=body, headers=headers)
        return resp.status, await resp.read()

    status, raw = loop.run_until_complete(call())
    assert status in (200, 400, 413), (status, raw)
    if status == 400:
        assert orjson.loads(raw)["error"]


def test_every_fuzzed_request_was_counted(
    harness: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any], ServerState],
) -> None:
    loop, client, state = harness
    before = state.metrics.exposition()
    loop.run_until_complete(client.post("/v2/models/m/infer", data=b"{"))
    after = state.metrics.exposition()
    assert before != after


def feedback_bodies(valid: str) -> st.SearchStrategy[bytes]:
    """Feedback bodies around one real token: the token itself, damaged, or anything."""
    tokens = st.one_of(
        st.just(valid),
        st.text(max_size=12).map(lambda tail: valid[: len(valid) // 2] + tail),
        st.text(max_size=20),
        json_values,
    )
    truths = st.one_of(
        st.lists(
            st.one_of(st.none(), st.integers(-2, 3), st.booleans(), st.text(max_size=3)),
            max_size=3,
        ),
        json_values,
    )
    items = st.one_of(st.fixed_dictionaries({"token": tokens, "truth": truths}), json_values)
    return st.one_of(
        st.fixed_dictionaries({"feedback": st.lists(items, max_size=4)}).map(
            lambda v: json.dumps(v).encode()
        ),
        json_values.map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=64),
    )


def _a_real_token(state: ServerState) -> str:
    issued = token.Issued("1", "", token.classes_digest([0, 1]), np.array([1, 0], np.uint16))
    return token.issue(state.feedback_key, issued)


@FUZZ
@given(data=st.data())
def test_feedback_bodies_never_answer_5xx_and_a_refused_one_counts_nothing(
    harness: tuple[asyncio.AbstractEventLoop, TestClient[Any, Any], ServerState],
    data: st.DataObject,
) -> None:
    loop, client, state = harness
    body = data.draw(feedback_bodies(_a_real_token(state)))

    async def call() -> tuple[int, bytes]:
        resp = await client.post("/v2/models/m/feedback", data=body)
        return resp.status, await resp.read()

    before = state.metrics.exposition()
    status, raw = loop.run_until_complete(call())
    assert status in (200, 400, 413), (status, raw)
    if status != 200:
        assert orjson.loads(raw)["error"]
        assert state.metrics.exposition() == before
