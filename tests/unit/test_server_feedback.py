"""Ground truth for earlier predictions: the token a response carries, the feedback endpoint,
and the per-revision counters any replica keeps for it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import make_classification, make_regression
from sklearn.linear_model import LinearRegression, LogisticRegression

from modelrollout.server import feedback_token as token
from modelrollout.server.app import ServerState
from modelrollout.server.faults import FaultConfig, Faults
from modelrollout.server.feedback import MAX_ITEMS
from modelrollout.server.feedback_metrics import REVISION_SLOTS
from modelrollout.server.loading import ModelSource, describe
from modelrollout.server.metrics import ServerMetrics, shared_buffer

X, Y = make_classification(n_samples=300, n_features=4, n_informative=2, random_state=2)
LABELS = np.where(Y == 1, "fraud", "ok")
CLASSIFIER = LogisticRegression().fit(X, LABELS)
XR, YR = make_regression(n_samples=200, n_features=4, random_state=2)
REGRESSOR = LinearRegression().fit(XR, YR)

Factory = Callable[..., Any]
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def state(
    revision: str,
    estimator: Any = CLASSIFIER,
    key: bytes | None = None,
    metrics: ServerMetrics | None = None,
) -> ServerState:
    s = ServerState(
        "fraud",
        "3",
        metrics or ServerMetrics("fraud", "3", revision),
        Faults(FaultConfig()),
        1 << 20,
        feedback_key=key,
    )
    s.set_model(describe(estimator, ModelSource(uri="memory"), "d" * 64))
    return s


def body(rows: np.ndarray[Any, Any]) -> dict[str, Any]:
    tensor = {"name": "input-0", "datatype": "FP64", "shape": list(rows.shape)}
    return {"inputs": [{**tensor, "data": rows.ravel().tolist()}]}


async def predict(client: Any, rows: np.ndarray[Any, Any]) -> tuple[list[Any], str]:
    """The predicted labels and the response's feedback token."""
    doc = await (await client.post("/v2/models/fraud/infer", json=body(rows))).json()
    predicted = next(o for o in doc["outputs"] if o["name"] == "predict")["data"]
    return predicted, doc["parameters"]["feedback_token"]


def feedback_samples(metrics: ServerMetrics) -> Samples:
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        if family.name.startswith("model_feedback")
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    wanted = {"model": "fraud", "version": "3", **labels}
    found = [v for (n, lbl), v in samples.items() if n == name and dict(lbl) == wanted]
    assert len(found) == 1, (name, labels, samples)
    return found[0]


async def test_a_label_reported_to_a_replica_of_another_revision_counts_for_the_predictor(
    client_for: Factory,
) -> None:
    stable, canary = state("r-stable"), state("r-canary")
    canary_client, stable_client = await client_for(canary), await client_for(stable)
    predicted, issued = await predict(canary_client, X[:40])
    truth = LABELS[:40].tolist()
    response = await stable_client.post(
        "/v2/models/fraud/feedback", json={"feedback": [{"token": issued, "truth": truth}]}
    )
    assert response.status == 200, await response.text()
    assert await response.json() == {"items": 1, "labelled": 40}
    samples = feedback_samples(stable.metrics)
    correct = sum(p == t for p, t in zip(predicted, truth, strict=True))
    assert value(samples, "model_feedback_labelled_total", revision="r-canary") == 40
    assert value(samples, "model_feedback_correct_total", revision="r-canary") == correct
    misses = value(
        samples,
        "model_feedback_confusion_total",
        revision="r-canary",
        predicted="ok",
        actual="fraud",
    )
    assert misses == sum(p == "ok" and t == "fraud" for p, t in zip(predicted, truth, strict=True))
    assert not any(dict(lbl).get("revision") == "r-stable" for _, lbl in samples)
    assert feedback_samples(canary.metrics) == {}  # the canary saw no feedback


async def test_truth_may_come_row_by_row_later(client_for: Factory) -> None:
    s = state("r1")
    client = await client_for(s)
    predicted, issued = await predict(client, X[:3])
    first = {"feedback": [{"token": issued, "truth": [LABELS[0], None, None]}]}
    assert (await (await client.post("/v2/models/fraud/feedback", json=first)).json())[
        "labelled"
    ] == 1
    rest = {"feedback": [{"token": issued, "truth": [None, LABELS[1], LABELS[2]]}]}
    assert (await client.post("/v2/models/fraud/feedback", json=rest)).status == 200
    samples = feedback_samples(s.metrics)
    assert value(samples, "model_feedback_labelled_total", revision="r1") == 3
    expected = sum(p == t for p, t in zip(predicted, LABELS[:3], strict=True))
    assert value(samples, "model_feedback_correct_total", revision="r1") == expected


async def test_a_regressor_counts_absolute_errors(client_for: Factory) -> None:
    s = state("r1", REGRESSOR)
    client = await client_for(s)
    doc = await (await client.post("/v2/models/fraud/infer", json=body(XR[:20]))).json()
    predicted = np.asarray(doc["outputs"][0]["data"])
    truth = YR[:20] + 0.7
    item = {"token": doc["parameters"]["feedback_token"], "truth": truth.tolist()}
    assert (await client.post("/v2/models/fraud/feedback", json={"feedback": [item]})).status == 200
    samples = feedback_samples(s.metrics)
    assert value(samples, "model_feedback_absolute_error_count", revision="r1") == 20
    total = value(samples, "model_feedback_absolute_error_sum", revision="r1")
    assert total == pytest.approx(np.abs(predicted - truth).sum())
    assert value(samples, "model_feedback_absolute_error_bucket", revision="r1", le="0.5") == 0
    assert value(samples, "model_feedback_absolute_error_bucket", revision="r1", le="1.0") == 20


def forged(issued: str) -> str:
    body_text, mac = issued.split(".")
    raw = bytearray(token._unb64(body_text))
    raw[-1] ^= 1  # another prediction for the last row
    return f"{token._b64(bytes(raw))}.{mac}"


def other_classes_token() -> str:
    issued = token.Issued("3", "r0", token.classes_digest(["a", "b"]), np.array([0], np.uint16))
    return token.issue(token.feedback_key(None, "fraud"), issued)


def regressor_token() -> str:
    issued = token.Issued("3", "r0", None, np.array([1.5]))
    return token.issue(token.feedback_key(None, "fraud"), issued)


BAD: list[tuple[Callable[[str], Any], str]] = [
    (lambda t: b"{not json", "not JSON"),
    (lambda t: {"labels": []}, '{"feedback"'),
    (lambda t: {"feedback": [{"token": t}]}, "feedback[0]"),
    (lambda t: {"feedback": [{"token": "abc", "truth": ["ok"] * 2}]}, "feedback[0].token"),
    (lambda t: {"feedback": [{"token": forged(t), "truth": ["ok"] * 2}]}, "not issued by"),
    (lambda t: {"feedback": [{"token": t, "truth": ["ok"]}]}, "one entry per row"),
    (lambda t: {"feedback": [{"token": t, "truth": ["ok", "frod"]}]}, "feedback[0].truth[1]"),
    (lambda t: {"feedback": [{"token": t, "truth": ["ok", 1]}]}, "not one of the model's"),
    (lambda t: {"feedback": [{"token": other_classes_token(), "truth": ["ok"]}]}, "classes"),
    (lambda t: {"feedback": [{"token": regressor_token(), "truth": [1.0]}]}, "regressor"),
    (lambda t: {"feedback": [{"token": t, "truth": ["ok"] * 2}] * (MAX_ITEMS + 1)}, "limit"),
    # One good item does not make a bad one count: nothing is counted.
    (
        lambda t: {
            "feedback": [{"token": t, "truth": ["ok", "ok"]}, {"token": t, "truth": [3, 4]}]
        },
        "feedback[1].truth[0]",
    ),
]


@pytest.mark.parametrize(("make", "named"), BAD)
async def test_bad_feedback_is_refused_with_a_reason_and_counts_nothing(
    client_for: Factory, make: Callable[[str], Any], named: str
) -> None:
    s = state("r1")
    client = await client_for(s)
    _, issued = await predict(client, X[:2])
    payload = make(issued)
    kwargs = {"data": payload} if isinstance(payload, bytes) else {"json": payload}
    response = await client.post("/v2/models/fraud/feedback", **kwargs)
    assert response.status == 400
    assert named in (await response.json())["error"]
    assert feedback_samples(s.metrics) == {}


async def test_with_a_secret_key_tokens_signed_otherwise_are_refused(client_for: Factory) -> None:
    open_replica = await client_for(state("r1"))
    _, issued = await predict(open_replica, X[:1])
    secret = state("r1", key=b"from-a-secret")
    item = {"token": issued, "truth": ["ok"]}
    response = await (await client_for(secret)).post(
        "/v2/models/fraud/feedback", json={"feedback": [item]}
    )
    assert response.status == 400 and "signature" in (await response.json())["error"]


def test_workers_count_into_their_rows_and_a_scrape_sums_them() -> None:
    buffer = shared_buffer(2)
    first = ServerMetrics("fraud", "3", "r1", buffer, 0)
    second = ServerMetrics("fraud", "3", "r1", buffer, 1)
    first.set_classes(["fraud", "ok"])
    second.set_classes(["fraud", "ok"])
    first.feedback.observe_classes(("3", "r9"), np.array([0, 1]), np.array([0, 0]))
    second.feedback.observe_classes(("3", "r9"), np.array([1]), np.array([1]))
    samples = feedback_samples(second)
    assert value(samples, "model_feedback_labelled_total", revision="r9") == 3
    assert value(samples, "model_feedback_correct_total", revision="r9") == 2


def test_revisions_beyond_the_slots_reuse_the_least_recently_used() -> None:
    m = ServerMetrics("fraud", "3", "r1")
    m.set_classes(["fraud", "ok"])
    revisions = [f"r{i}" for i in range(REVISION_SLOTS + 1)]
    for revision in revisions[:-1]:
        m.feedback.observe_classes(("3", revision), np.array([0]), np.array([0]))
    m.feedback.observe_classes(("3", "r0"), np.array([0]), np.array([0]))  # r1 is now the oldest
    m.feedback.observe_classes(("3", revisions[-1]), np.array([1]), np.array([0]))
    samples = feedback_samples(m)
    counted = {
        dict(lbl)["revision"] for (n, lbl), _ in samples.items() if n.endswith("labelled_total")
    }
    assert counted == set(revisions) - {"r1"}
    assert value(samples, "model_feedback_labelled_total", revision="r0") == 2


def test_a_token_says_what_was_predicted_and_by_whom() -> None:
    key = token.feedback_key("k", "fraud")
    issued = token.Issued("3", "r-canary", token.classes_digest(["fraud", "ok"]), np.array([1, 0]))
    assert token.read(key, token.issue(key, issued)).revision == "r-canary"
    assert token.read(key, token.issue(key, issued)).predicted.tolist() == [1, 0]
    with pytest.raises(token.TokenError, match="signature"):
        token.read(token.feedback_key("other", "fraud"), token.issue(key, issued))
