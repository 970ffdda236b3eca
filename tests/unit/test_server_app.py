"""The HTTP API in process (aiohttp's test server): protocol, errors, metrics, faults."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression

from modelrollout.server.app import ServerState
from modelrollout.server.faults import FaultConfig, Faults, InjectedFault
from modelrollout.server.loading import ModelSource, describe
from modelrollout.server.metrics import ServerMetrics

X, Y = make_classification(
    n_samples=300, n_features=5, n_classes=3, n_informative=3, random_state=1
)
CLASSIFIER = LogisticRegression(max_iter=500).fit(X, Y)
XR, YR = make_regression(n_samples=100, n_features=4, random_state=1)
REGRESSOR = LinearRegression().fit(XR, YR)

Factory = Callable[..., Any]


def make_state(estimator: Any = CLASSIFIER, faults: FaultConfig | None = None) -> ServerState:
    state = ServerState(
        "m", "7", ServerMetrics("m", "7", "r1"), Faults(faults or FaultConfig(seed=1)), 4096
    )
    if estimator is not None:
        state.set_model(describe(estimator, ModelSource(uri="memory"), "d" * 64))
    return state


def infer_body(rows: np.ndarray, **extra: Any) -> dict[str, Any]:
    tensor = {"name": "input-0", "datatype": "FP64", "shape": list(rows.shape)}
    return {"inputs": [{**tensor, "data": rows.ravel().tolist()}], **extra}


def counters(text: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            key = s.name + ("" if "class" not in s.labels else "/" + s.labels["class"])
            if "le" not in s.labels:
                out[key] = s.value
    return out


async def test_health_and_metadata(client_for: Factory) -> None:
    c = await client_for(make_state())
    assert (await (await c.get("/v2/health/live")).json()) == {"live": True}
    assert (await c.get("/v2/health/ready")).status == 200
    assert (await c.get("/v2/models/m/ready")).status == 200
    assert (await c.get("/v2/models/m/versions/7/ready")).status == 200
    meta = await (await c.get("/v2/models/m")).json()
    assert meta["versions"] == ["7"]
    assert meta["inputs"][0]["shape"] == [-1, 5]
    assert [o["name"] for o in meta["outputs"]] == ["predict", "predict_proba"]
    assert (await c.get("/v2/models/other")).status == 404
    assert (await c.get("/v2/models/m/versions/8")).status == 404
    assert (await (await c.get("/v2")).json())["name"] == "modelrollout-server"


async def test_infer_classifier_matches_scikit_learn(client_for: Factory) -> None:
    c = await client_for(make_state())
    rows = X[:4]
    resp = await c.post("/v2/models/m/versions/7/infer", json=infer_body(rows, id="q"))
    assert resp.status == 200
    body = await resp.json()
    assert body["id"] == "q" and body["model_name"] == "m" and body["model_version"] == "7"
    pred, proba = body["outputs"]
    assert pred["data"] == CLASSIFIER.predict(rows).tolist()
    assert pred["datatype"] == "INT64" and pred["shape"] == [4]
    assert np.allclose(np.reshape(proba["data"], (4, 3)), CLASSIFIER.predict_proba(rows))
    only = await c.post("/v2/models/m/infer", json=infer_body(rows, outputs=[{"name": "predict"}]))
    assert [o["name"] for o in (await only.json())["outputs"]] == ["predict"]
    m = counters(await (await c.get("/metrics")).text())
    assert m["model_infer_request_success_total"] == 2
    assert sum(v for k, v in m.items() if k.startswith("model_prediction_class_total/")) == 8
    assert m["model_prediction_value_count"] == 8
    assert m["model_ready"] == 1


async def test_infer_regressor(client_for: Factory) -> None:
    c = await client_for(make_state(REGRESSOR))
    body = await (await c.post("/v2/models/m/infer", json=infer_body(XR[:2]))).json()
    assert np.allclose(body["outputs"][0]["data"], REGRESSOR.predict(XR[:2]))
    assert [o["name"] for o in body["outputs"]] == ["predict"]


def _one(shape: list[int], data: list[Any], datatype: str = "FP64") -> dict[str, Any]:
    return {"inputs": [{"datatype": datatype, "shape": shape, "data": data}]}


INFER = "/v2/models/m/infer"


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v2/models/nope/infer", {"inputs": []}, 404),
        ("/v2/models/m/versions/9/infer", {"inputs": []}, 404),
        (INFER, b"{", 400),
        (INFER, {"inputs": []}, 400),
        (INFER, _one([1, 3], [1, 2, 3]), 400),
        (INFER, _one([1, 5], [1] * 4), 400),
        (INFER, _one([1, 5], ["a"] * 5, "BYTES"), 400),
        (INFER, {**_one([1, 5], [1] * 5), "outputs": [{"name": "x"}]}, 400),
        (INFER, b"x" * 5000, 413),
    ],
)
async def test_bad_requests_get_protocol_errors_and_count_as_failures(
    client_for: Factory, path: str, body: Any, status: int
) -> None:
    c = await client_for(make_state())
    kwargs = {"data": body} if isinstance(body, bytes) else {"json": body}
    resp = await c.post(path, **kwargs)
    assert resp.status == status
    assert isinstance((await resp.json())["error"], str)
    m = counters(await (await c.get("/metrics")).text())
    assert m["model_infer_request_failure_total"] == 1
    assert m["model_infer_request_success_total"] == 0


async def test_chunked_body_over_the_limit_is_413(client_for: Factory) -> None:
    c = await client_for(make_state())

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b" " * 1000

    resp = await c.post("/v2/models/m/infer", data=chunks())
    assert resp.status == 413
    assert "limit" in (await resp.json())["error"]


async def test_model_that_failed_to_load_is_never_served(client_for: Factory) -> None:
    state = make_state(None)
    state.load_error = "sha256 mismatch"
    c = await client_for(state)
    assert (await c.get("/v2/health/live")).status == 200
    assert (await c.get("/v2/health/ready")).status == 503
    assert (await c.get("/v2/models/m/ready")).status == 503
    resp = await c.post("/v2/models/m/infer", json=infer_body(X[:1]))
    assert resp.status == 503
    assert "sha256 mismatch" in (await resp.json())["error"]
    assert "model_prediction_class_total" not in await (await c.get("/metrics")).text()


async def test_draining_turns_readiness_off_but_still_answers(client_for: Factory) -> None:
    state = make_state()
    c = await client_for(state)
    state.set_draining()
    assert (await c.get("/v2/health/ready")).status == 503
    assert (await c.post("/v2/models/m/infer", json=infer_body(X[:1]))).status == 200


def test_fault_errors_begin_after_the_configured_delay() -> None:
    now = [100.0]
    faults = Faults(FaultConfig(error_rate=1.0, error_after_s=30), clock=lambda: now[0])
    faults.maybe_fail()  # at start: no error yet
    now[0] = 129.9
    faults.maybe_fail()
    now[0] = 130.0
    with pytest.raises(InjectedFault):
        faults.maybe_fail()


def test_fault_error_rate_is_spread_evenly() -> None:
    faults = Faults(FaultConfig(error_rate=0.05))
    failed = []
    for i in range(200):
        try:
            faults.maybe_fail()
        except InjectedFault:
            failed.append(i)
    assert len(failed) == 10
    assert all(b - a == 20 for a, b in itertools.pairwise(failed))


async def test_fault_error_rate_one_fails_every_request(client_for: Factory) -> None:
    c = await client_for(make_state(faults=FaultConfig(error_rate=1.0)))
    for _ in range(3):
        resp = await c.post("/v2/models/m/infer", json=infer_body(X[:1]))
        assert resp.status == 500
    m = counters(await (await c.get("/metrics")).text())
    assert m["model_infer_request_failure_total"] == 3


async def test_fault_prediction_shift_moves_predictions_to_the_last_class(
    client_for: Factory,
) -> None:
    c = await client_for(make_state(faults=FaultConfig(prediction_shift=0.9)))
    body = await (await c.post("/v2/models/m/infer", json=infer_body(X[:20]))).json()
    assert set(body["outputs"][0]["data"]) == {2}
    # Nothing in a request turns faults off or on.
    clean = await client_for(make_state())
    req = infer_body(X[:20], parameters={"fault_prediction_shift": 0.9, "fault_error_rate": 1})
    body = await (await clean.post("/v2/models/m/infer", json=req)).json()
    assert body["outputs"][0]["data"] == CLASSIFIER.predict(X[:20]).tolist()


async def test_unknown_route_is_a_json_404(client_for: Factory) -> None:
    c = await client_for(make_state())
    resp = await c.get("/v1/models/m")
    assert resp.status == 404 and "error" in await resp.json()
