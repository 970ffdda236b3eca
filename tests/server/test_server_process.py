"""The real ``modelrollout-server`` process: serving, /metrics, broken models, SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import skops.io
from prometheus_client.parser import text_string_to_metric_families
from sklearn.compose import ColumnTransformer
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from modelrollout.server.digest import path_sha256
from tests.server.process import ServerProcess, free_port

TREE = "sklearn.tree._tree.Tree"
X, Y = make_classification(n_samples=400, n_features=20, random_state=0)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    lr, rf = root / "lr.skops", root / "rf.skops"
    skops.io.dump(LogisticRegression(max_iter=1000).fit(X, Y), lr)
    skops.io.dump(RandomForestClassifier(n_estimators=20, random_state=0).fit(X, Y), rf)
    return {"lr": lr, "rf": rf}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for s in started:
        s.stop()


def start(started: list[ServerProcess], tmp_path: Path, *args: str) -> ServerProcess:
    s = ServerProcess(list(args), tmp_path / f"server-{len(started)}.log")
    started.append(s)
    return s.start()


def infer_json(rows: np.ndarray) -> dict[str, object]:
    return {
        "inputs": [
            {"name": "x", "datatype": "FP32", "shape": list(rows.shape), "data": rows.tolist()}
        ]
    }


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(url + "/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for fam in text_string_to_metric_families(text)
        for s in fam.samples
    }


def value(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **lbl: str
) -> float:
    for (n, labels), v in samples.items():
        if n == name and set(lbl.items()) <= labels:
            return v
    raise KeyError(name)


@pytest.mark.parametrize("kind", ["lr", "rf"])
def test_serves_the_model_and_exports_the_metric_contract(
    server: list[ServerProcess], tmp_path: Path, models: dict[str, Path], kind: str
) -> None:
    path = models[kind]
    s = start(
        server, tmp_path,
        "--name", "fraud", "--uri", f"file://{path}", "--sha256", path_sha256(path),
        "--trusted-type", TREE, "--version", "7", "--revision", "abc123",
    )  # fmt: skip
    assert s.wait_loaded() == 200
    estimator = skops.io.load(path, trusted=[TREE])
    rows = X[:5].astype(np.float32)
    with httpx.Client(base_url=s.url) as c:
        resp = c.post("/v2/models/fraud/infer", json=infer_json(rows))
        assert resp.status_code == 200
        outputs = {o["name"]: o for o in resp.json()["outputs"]}
        assert outputs["predict"]["data"] == estimator.predict(rows).tolist()
        proba = np.reshape(outputs["predict_proba"]["data"], (5, 2))
        assert np.allclose(proba, estimator.predict_proba(rows))
        assert c.post("/v2/models/fraud/infer", json={"inputs": [1]}).status_code == 400
    m = scrape(s.url)
    ids = {"model": "fraud", "version": "7", "revision": "abc123"}
    assert value(m, "model_infer_request_success_total", **ids) == 1
    assert value(m, "model_infer_request_failure_total", **ids) == 1
    assert value(m, "model_infer_request_duration_seconds_count", **ids) == 2
    classes = sum(value(m, "model_prediction_class_total", **ids, **{"class": c}) for c in "01")
    assert classes == 5
    assert value(m, "model_prediction_value_count", **ids) == 5
    assert value(m, "model_prediction_value_bucket", le="0.45", **ids) == 0  # top proba >= 0.5


def test_untrusted_type_keeps_the_server_unready_with_one_clear_line(
    server: list[ServerProcess], tmp_path: Path, models: dict[str, Path]
) -> None:
    s = start(server, tmp_path, "--name", "rf", "--uri", str(models["rf"]))
    assert s.wait_loaded() == 503
    assert httpx.get(s.url + "/v2/health/live").status_code == 200
    assert httpx.get(s.url + "/v2/models/rf/ready").status_code == 503
    resp = httpx.post(s.url + "/v2/models/rf/infer", json=infer_json(X[:1]))
    assert resp.status_code == 503 and TREE in resp.json()["error"]
    lines = [ln for ln in s.log().splitlines() if "not served" in ln]
    assert len(lines) == 1 and TREE in lines[0]
    assert value(scrape(s.url), "model_ready") == 0


def test_sha256_mismatch_keeps_the_server_unready(
    server: list[ServerProcess], tmp_path: Path, models: dict[str, Path]
) -> None:
    s = start(server, tmp_path, "--uri", str(models["lr"]), "--sha256", "0" * 64)
    assert s.wait_loaded() == 503
    assert "sha256 mismatch" in s.log()
    assert httpx.post(s.url + "/v2/models/model/infer", json=infer_json(X[:1])).status_code == 503


def test_sigterm_turns_readiness_off_finishes_in_flight_requests_and_exits(
    server: list[ServerProcess], tmp_path: Path, models: dict[str, Path]
) -> None:
    s = start(
        server, tmp_path, "--uri", str(models["lr"]),
        "--fault-latency-ms", "1500", "--drain-seconds", "1",
    )  # fmt: skip
    assert s.wait_loaded() == 200
    result: dict[str, int] = {}

    def slow_request() -> None:
        r = httpx.post(s.url + "/v2/models/model/infer", json=infer_json(X[:1]), timeout=30)
        result["status"] = r.status_code

    t = threading.Thread(target=slow_request)
    t.start()
    # Listening goes on through the 1 s drain, so the request is served even if it
    # reaches the server just after the signal.
    s.poll("/metrics", lambda r: True, 10)
    s.signal(signal.SIGTERM)
    s.poll("/v2/health/ready", lambda r: r.status_code == 503, 10)
    t.join(30)
    assert result.get("status") == 200
    assert s.wait(30) == 0
    assert "draining" in s.log()


def test_workers_share_one_set_of_counters(
    server: list[ServerProcess], tmp_path: Path, models: dict[str, Path]
) -> None:
    s = start(server, tmp_path, "--uri", str(models["lr"]), "--workers", "2")
    assert s.wait_loaded() == 200
    for _ in range(20):  # new connections: the kernel spreads them over both workers
        assert (
            httpx.post(s.url + "/v2/models/model/infer", json=infer_json(X[:1])).status_code == 200
        )
    for _ in range(6):
        assert value(scrape(s.url), "model_infer_request_success_total") == 20
    s.stop()
    assert s.proc is not None and s.proc.returncode == 0


def test_ground_truth_sent_to_another_revision_s_workers_counts_for_the_predictor(
    server: list[ServerProcess],
    tmp_path: Path,
    models: dict[str, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MODELROLLOUT_FEEDBACK_KEY", "shared-by-the-replicas")
    canary = start(server, tmp_path, "--uri", str(models["lr"]), "--revision", "canary")
    stable = start(
        server, tmp_path, "--uri", str(models["lr"]), "--revision", "stable", "--workers", "2"
    )
    assert canary.wait_loaded() == 200 and stable.wait_loaded() == 200
    answers = [
        httpx.post(canary.url + "/v2/models/model/infer", json=infer_json(X[i : i + 2])).json()
        for i in range(0, 20, 2)
    ]
    for i, answer in enumerate(answers):  # new connections: both stable workers get some
        item = {
            "token": answer["parameters"]["feedback_token"],
            "truth": Y[2 * i : 2 * i + 2].tolist(),
        }
        resp = httpx.post(stable.url + "/v2/models/model/feedback", json={"feedback": [item]})
        assert resp.status_code == 200, resp.text
    predicted = [
        p for a in answers for p in next(o for o in a["outputs"] if o["name"] == "predict")["data"]
    ]
    for _ in range(4):  # whichever worker answers the scrape, it sums both
        m = scrape(stable.url)
        assert value(m, "model_feedback_labelled_total", revision="canary") == 20
        correct = sum(p == t for p, t in zip(predicted, Y[:20], strict=True))
        assert value(m, "model_feedback_correct_total", revision="canary") == correct
    with pytest.raises(KeyError):
        value(scrape(canary.url), "model_feedback_labelled_total")


def test_fault_flags_fail_requests(
    server: list[ServerProcess], tmp_path: Path, models: dict[str, Path]
) -> None:
    s = start(server, tmp_path, "--uri", str(models["lr"]), "--fault-error-rate", "1")
    assert s.wait_loaded() == 200
    assert "fault injection is ON" in s.log()
    for _ in range(3):
        resp = httpx.post(s.url + "/v2/models/model/infer", json=infer_json(X[:1]))
        assert resp.status_code == 500
    assert value(scrape(s.url), "model_infer_request_failure_total") == 3


def readme_blocks(language: str) -> list[str]:
    """The README's fenced code blocks in `language` (indented under a list item there)."""
    text = (Path(__file__).parents[2] / "README.md").read_text()
    blocks = re.findall(rf"^( *)```{language}\n(.*?)^\1```", text, flags=re.M | re.S)
    return [textwrap.dedent(body) for _, body in blocks]


def test_the_readme_dataframe_pipeline_end_to_end(
    server: list[ServerProcess], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Train and save as the README does, serve the file, send the README's request: the
    labels are the pipeline's own answer, and a string column sent as numbers is a 400."""
    (train,) = [b for b in readme_blocks("python") if "fraud.skops" in b]
    (request,) = [b for b in readme_blocks("json") if '"content_type": "pd"' in b]
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    exec(compile(train, "README.md", "exec"), scope)
    s = start(server, tmp_path, "--name", "fraud", "--uri", str(tmp_path / "fraud.skops"))
    assert s.wait_loaded() == 200, s.log_path.read_text()
    body = json.loads(request)
    frame = pd.DataFrame({i["name"]: i["data"] for i in body["inputs"]})
    with httpx.Client(base_url=s.url) as c:
        resp = c.post("/v2/models/fraud/infer", json=body)
        assert resp.status_code == 200, resp.text
        labels = next(o for o in resp.json()["outputs"] if o["name"] == "predict")
        assert labels["datatype"] == "BYTES"
        assert labels["data"] == scope["model"].predict(frame).tolist()
        body["inputs"][2].update(datatype="FP64", data=[1.0, 2.0])
        refused = c.post("/v2/models/fraud/infer", json=body)
        assert refused.status_code == 400 and "country" in refused.json()["error"]


def test_triton_s_client_with_binary_and_json_tensors(
    server: list[ServerProcess], tmp_path: Path, models: dict[str, Path]
) -> None:
    """Triton's Open Inference Protocol client (from PyPI, binary tensors by default) against
    the server process: health, metadata, inference in binary and in JSON, request ids, a
    DataFrame with a BYTES column, and a refused request as the client's exception."""
    import tritonclient.http as triton
    from tritonclient.utils import InferenceServerException

    s = start(server, tmp_path, "--name", "fraud", "--uri", str(models["lr"]))
    assert s.wait_loaded() == 200
    estimator = skops.io.load(models["lr"])
    rows = X[:7].astype(np.float32)
    client = triton.InferenceServerClient(url=f"127.0.0.1:{s.port}")
    try:
        assert client.is_server_live() and client.is_model_ready("fraud")
        assert client.get_model_metadata("fraud")["inputs"][0]["shape"] == [-1, 20]
        for binary in (True, False):
            tensor = triton.InferInput("x", list(rows.shape), "FP32")
            tensor.set_data_from_numpy(rows, binary_data=binary)
            wanted = [
                triton.InferRequestedOutput(name, binary_data=binary)
                for name in ("predict", "predict_proba")
            ]
            result = client.infer("fraud", [tensor], outputs=wanted, request_id=f"t-{binary}")
            assert result.get_response()["id"] == f"t-{binary}"
            assert result.as_numpy("predict").tolist() == estimator.predict(rows).tolist()
            proba = result.as_numpy("predict_proba")
            assert np.allclose(proba, estimator.predict_proba(rows), rtol=0, atol=1e-12)
        # No outputs named: the client asks for all of them in binary.
        everything = client.infer("fraud", [tensor])
        assert everything.as_numpy("predict").tolist() == estimator.predict(rows).tolist()
        wrong = triton.InferInput("x", [2, 3], "FP32")
        wrong.set_data_from_numpy(np.zeros((2, 3), dtype=np.float32))
        with pytest.raises(InferenceServerException, match="expected 20 features"):
            client.infer("fraud", [wrong])
    finally:
        client.close()

    frame = pd.DataFrame({"size": [1.0, 2.0, 3.0, 4.0] * 3, "colour": ["red", "blue", "red"] * 4})
    pipeline = Pipeline(
        [("prep", ColumnTransformer([("c", OneHotEncoder(), ["colour"])], remainder="passthrough")),
         ("lr", LogisticRegression())]
    ).fit(frame, ["s", "m", "l"] * 4)  # fmt: skip
    skops.io.dump(pipeline, tmp_path / "pipeline.skops")
    p = start(server, tmp_path, "--name", "sizes", "--uri", str(tmp_path / "pipeline.skops"))
    assert p.wait_loaded() == 200
    client = triton.InferenceServerClient(url=f"127.0.0.1:{p.port}")
    try:
        colour = triton.InferInput("colour", [12, 1], "BYTES")
        colour.set_data_from_numpy(frame[["colour"]].to_numpy(dtype=object))
        size = triton.InferInput("size", [12, 1], "FP64")
        size.set_data_from_numpy(frame[["size"]].to_numpy(dtype=np.float64))
        result = client.infer("sizes", [colour, size])
        labels = [v.decode() for v in result.as_numpy("predict").tolist()]
        assert labels == pipeline.predict(frame).tolist()
    finally:
        client.close()


def test_the_grpc_form_with_triton_s_client_and_typed_contents(
    server: list[ServerProcess], tmp_path: Path, models: dict[str, Path]
) -> None:
    """The protocol's gRPC form on its own port: Triton's gRPC client (raw tensors), a plain
    channel with typed contents, errors as gRPC status codes, and the same metrics as REST."""
    import grpc
    import tritonclient.grpc as triton
    from tritonclient.utils import InferenceServerException

    from modelrollout.server.grpc_messages import MESSAGES, SERVICE

    grpc_port = free_port()
    s = start(
        server, tmp_path,
        "--name", "fraud", "--uri", str(models["lr"]), "--grpc-port", str(grpc_port),
        "--version", "7", "--revision", "abc123",
    )  # fmt: skip
    assert s.wait_loaded() == 200
    estimator = skops.io.load(models["lr"])
    rows = X[:6].astype(np.float32)
    client = triton.InferenceServerClient(url=f"127.0.0.1:{grpc_port}")
    try:
        assert client.is_server_live() and client.is_model_ready("fraud")
        meta = client.get_model_metadata("fraud")
        assert [o.name for o in meta.outputs] == ["predict", "predict_proba"]
        tensor = triton.InferInput("x", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows)
        result = client.infer("fraud", [tensor], request_id="g-1")
        assert result.get_response().id == "g-1"
        assert result.as_numpy("predict").tolist() == estimator.predict(rows).tolist()
        proba = result.as_numpy("predict_proba")
        assert np.allclose(proba, estimator.predict_proba(rows), rtol=0, atol=1e-12)
        wrong = triton.InferInput("x", [2, 3], "FP32")
        wrong.set_data_from_numpy(np.zeros((2, 3), dtype=np.float32))
        with pytest.raises(InferenceServerException, match="expected 20 features") as refused:
            client.infer("fraud", [wrong])
        assert refused.value.status() == "StatusCode.INVALID_ARGUMENT"
        with pytest.raises(InferenceServerException) as unknown:
            client.infer("other", [tensor])
        assert unknown.value.status() == "StatusCode.NOT_FOUND"
    finally:
        client.close()

    request = MESSAGES["ModelInferRequest"](model_name="fraud", id="typed")
    typed = request.inputs.add(name="x", datatype="FP64", shape=list(rows.shape))
    typed.contents.fp64_contents.extend(rows.astype(np.float64).ravel().tolist())
    request.outputs.add(name="predict")
    with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
        infer = channel.unary_unary(
            f"/{SERVICE}/ModelInfer",
            request_serializer=MESSAGES["ModelInferRequest"].SerializeToString,
            response_deserializer=MESSAGES["ModelInferResponse"].FromString,
        )
        response = infer(request, timeout=30)
    assert response.id == "typed" and not response.raw_output_contents
    (predict,) = response.outputs
    assert predict.name == "predict" and predict.datatype == "INT64"
    assert list(predict.contents.int64_contents) == estimator.predict(rows).tolist()

    m = scrape(s.url)
    ids = {"model": "fraud", "version": "7", "revision": "abc123"}
    assert value(m, "model_infer_request_success_total", **ids) == 2
    assert value(m, "model_infer_request_failure_total", **ids) == 2  # 20 features, "other"
