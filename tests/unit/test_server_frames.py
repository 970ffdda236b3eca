"""DataFrame requests: a scikit-learn Pipeline fitted on a pandas DataFrame (a scaler on numeric
columns, a one-hot encoder on a string column), saved with skops and loaded through the server's
trust list, called the way MLServer's pandas codec sends a DataFrame."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fsspec
import numpy as np
import orjson
import pandas as pd
import pytest
import skops.io
from aiohttp.test_utils import TestClient
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from modelrollout.server.app import ServerState
from modelrollout.server.faults import FaultConfig, Faults
from modelrollout.server.frames import Columns, model_input
from modelrollout.server.inference import Predictor
from modelrollout.server.loading import LoadedModel, ModelSource, load_model
from modelrollout.server.metrics import ServerMetrics
from modelrollout.server.tensors import decode_request
from tests.unit.server_client import ClientFor

RNG = np.random.default_rng(3)
N = 400
FRAME = pd.DataFrame(
    {
        "age": RNG.uniform(18, 90, N),
        "income": RNG.integers(1_000, 9_000, N),
        "city": RNG.choice(["Lyon", "Oslo", "Lima"], N).astype(object),
    }
)
CHURN = np.where((FRAME["age"] > 50) ^ (FRAME["city"] == "Oslo"), "churn", "stay")


def preprocess() -> ColumnTransformer:
    return ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["age", "income"]),
            ("city", OneHotEncoder(handle_unknown="ignore"), ["city"]),
        ]
    )


CLASSIFIER = Pipeline([("prep", preprocess()), ("model", LogisticRegression())]).fit(FRAME, CHURN)
SPEND = FRAME["age"] * 3 + (FRAME["city"] == "Lima") * 40 + RNG.normal(0, 1, N)
REGRESSOR = Pipeline(
    [
        (
            "prep",
            ColumnTransformer([("city", OrdinalEncoder(), ["city"])], remainder="passthrough"),
        ),
        ("model", HistGradientBoostingRegressor(max_iter=30)),
    ]
).fit(FRAME, SPEND)

Factory = Callable[[Any], Any]


def through_skops(estimator: Any) -> LoadedModel:
    """Saved with skops, loaded by the server the way it loads any model, with the trust list a
    user would configure (fsspec's in-memory filesystem stands in for the model store)."""
    data = skops.io.dumps(estimator)
    fsspec.filesystem("memory").pipe("/frames/model.skops", data)
    trusted = tuple(skops.io.get_untrusted_types(data=data))
    return load_model(ModelSource(uri="memory://frames/model.skops", trusted_types=trusted))


@pytest.fixture
def serve(client_for: ClientFor) -> Factory:
    """A client on a server of the estimator, loaded through skops."""

    async def start(estimator: Any) -> TestClient[Any, Any]:
        state = ServerState("m", "1", ServerMetrics("m", "1", "r1"), Faults(FaultConfig()), 1 << 20)
        state.set_model(through_skops(estimator))
        return await client_for(state)

    return start


def pandas_request(frame: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    """What MLServer's PandasCodec.encode_request sends: one [rows, 1] input per column, the
    column's datatype, strings as BYTES with content_type str, the request marked "pd"."""
    inputs = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype.kind in "OT":  # object, or pandas 3's string dtype
            datatype, params = "BYTES", {"content_type": "str"}
        else:
            datatype, params = ("INT64" if column.dtype.kind == "i" else "FP64"), {}
        inputs.append(
            {
                "name": name,
                "datatype": datatype,
                "shape": [len(frame), 1],
                "data": column.tolist(),
                **({"parameters": params} if params else {}),
            }
        )
    return {"parameters": {"content_type": "pd"}, "inputs": inputs, **extra}


async def infer(client: TestClient[Any, Any], body: dict[str, Any]) -> tuple[int, Any]:
    resp = await client.post("/v2/models/m/infer", json=body)
    return resp.status, await resp.json()


def output(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return next(o for o in doc["outputs"] if o["name"] == name)


async def test_a_pipeline_fitted_on_a_dataframe_answers_as_scikit_learn(serve: Factory) -> None:
    client = await serve(CLASSIFIER)
    rows = FRAME.iloc[:25]
    status, doc = await infer(client, pandas_request(rows, id="req-1"))
    assert status == 200, doc
    assert doc["id"] == "req-1"
    labels = output(doc, "predict")
    assert labels["datatype"] == "BYTES" and labels["shape"] == [25]
    assert labels["data"] == CLASSIFIER.predict(rows).tolist()
    proba = output(doc, "predict_proba")
    assert proba["shape"] == [25, 2]
    expected = CLASSIFIER.predict_proba(rows)
    assert np.allclose(np.reshape(proba["data"], (25, 2)), expected, rtol=0, atol=1e-12)


async def test_columns_in_any_order_and_without_the_content_type(serve: Factory) -> None:
    """Inputs named as the fitted columns are a DataFrame even unmarked (KServe's clients send
    no content type), and their order does not matter."""
    client = await serve(CLASSIFIER)
    rows = FRAME.iloc[:10]
    body = pandas_request(rows[["city", "income", "age"]])
    del body["parameters"]
    body["inputs"] = [{**i, "shape": [10]} for i in body["inputs"]]  # [rows] columns too
    status, doc = await infer(client, {**body, "outputs": [{"name": "predict"}]})
    assert status == 200, doc
    assert [o["name"] for o in doc["outputs"]] == ["predict"]
    assert output(doc, "predict")["data"] == CLASSIFIER.predict(rows).tolist()


async def test_a_regressor_pipeline_with_a_string_column(serve: Factory) -> None:
    client = await serve(REGRESSOR)
    rows = FRAME.iloc[100:140]
    status, doc = await infer(client, pandas_request(rows))
    assert status == 200, doc
    values = output(doc, "predict")
    assert values["datatype"] == "FP64"
    assert np.allclose(values["data"], REGRESSOR.predict(rows), rtol=0, atol=1e-9)


async def test_metadata_lists_the_columns_by_name_and_datatype(serve: Factory) -> None:
    client = await serve(CLASSIFIER)
    meta = await (await client.get("/v2/models/m")).json()
    assert meta["inputs"] == [
        {"name": "age", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "income", "datatype": "FP64", "shape": [-1, 1]},
        {"name": "city", "datatype": "BYTES", "shape": [-1, 1]},
    ]
    assert output(meta, "predict")["datatype"] == "BYTES"


async def test_a_bare_estimator_fitted_on_a_dataframe_keeps_its_fast_path(serve: Factory) -> None:
    numbers = FRAME[["age", "income"]]
    model = LogisticRegression().fit(numbers, CHURN)
    loaded = through_skops(model)
    assert loaded.feature_names == ["age", "income"]
    assert Predictor(loaded, Faults(FaultConfig())).fast_path == "LogisticRegression"
    body = pandas_request(numbers.iloc[:30][["income", "age"]])
    x = model_input(decode_request(orjson.dumps(body)), loaded, numeric_fast_path=True)
    assert isinstance(x, np.ndarray) and np.array_equal(x, numbers.iloc[:30].to_numpy())
    client = await serve(model)
    status, doc = await infer(client, body)
    assert status == 200, doc
    assert output(doc, "predict")["data"] == model.predict(numbers.iloc[:30]).tolist()
    # A pipeline gets the DataFrame itself.
    frame = model_input(
        decode_request(orjson.dumps(pandas_request(FRAME))), through_skops(CLASSIFIER), False
    )
    assert isinstance(frame, Columns) and list(frame.frame().columns) == ["age", "income", "city"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda b: b["inputs"].pop(2), "city"),  # a fitted column missing
        (lambda b: b["inputs"].append(dict(b["inputs"][0])), "age"),  # a column twice
        (lambda b: b["inputs"][1].update(shape=[5, 1], data=[1, 2, 3, 4, 5]), "rows"),
        (lambda b: b["inputs"][0].update(shape=[5, 2], data=[1.0] * 10), "age"),
        (lambda b: b["inputs"][2].update(datatype="FP64", data=[1.0] * 10), "city"),
        (lambda b: b.update(parameters={"content_type": 7}), "content_type"),
    ],
)
async def test_a_malformed_dataframe_is_a_400_that_names_the_problem(
    serve: Factory, change: Callable[[dict[str, Any]], Any], named: str
) -> None:
    client = await serve(CLASSIFIER)
    body = pandas_request(FRAME.iloc[:10])
    change(body)
    status, doc = await infer(client, body)
    assert status == 400, doc
    assert named in doc["error"], doc
