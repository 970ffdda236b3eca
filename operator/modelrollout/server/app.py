"""The aiohttp application: Open Inference Protocol v2 routes and /metrics.

Inference runs inline on the event loop: scikit-learn calls take microseconds to a few
milliseconds, and a thread hop would cost more than it frees. Scale out with --workers.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from aiohttp import web

from modelrollout import __version__
from modelrollout.server import feedback_token as token
from modelrollout.server.binary import HEADER_LENGTH
from modelrollout.server.datatypes import RequestError
from modelrollout.server.faults import Faults, InjectedFault
from modelrollout.server.feedback import ClassIndex, decode_feedback
from modelrollout.server.frames import model_input
from modelrollout.server.inference import PREDICT, PREDICT_PROBA, Prediction, Predictor
from modelrollout.server.loading import LoadedModel
from modelrollout.server.metrics import ServerMetrics
from modelrollout.server.shadow import Shadow
from modelrollout.server.tensors import InferRequest, decode_request, dtype_name, encode_outputs

log = logging.getLogger("modelrollout.server")

_JSON = {"Content-Type": "application/json"}
_PROMETHEUS = {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


class ServerState:
    """What the handlers read: the model (once loaded), readiness, metrics, faults."""

    def __init__(
        self,
        name: str,
        version: str,
        metrics: ServerMetrics,
        faults: Faults,
        max_body_bytes: int,
        fast_path: bool = True,
        feedback_key: bytes | None = None,
    ) -> None:
        self.name = name
        self.fast_path = fast_path
        self.feedback_key = feedback_key or token.feedback_key(None, name)
        self._class_index: ClassIndex | None = None
        # Copies a share of the requests to a candidate (server.shadow); None: no mirroring.
        self.shadow: Shadow | None = None
        self.version = version
        self.metrics = metrics
        self.faults = faults
        self.max_body_bytes = max_body_bytes
        self.predictor: Predictor | None = None
        self.load_error: str | None = None
        self.draining = False

    @property
    def ready(self) -> bool:
        return self.predictor is not None and not self.draining

    def set_model(self, model: LoadedModel) -> None:
        self.predictor = Predictor(model, self.faults, self.fast_path)
        self._class_index = ClassIndex(model.classes) if model.classes is not None else None
        self.metrics.set_classes(model.classes)
        self.metrics.set_profile(model.profile, model.feature_names, model.classes)
        self.metrics.set_ready(self.ready)

    def set_draining(self) -> None:
        self.draining = True
        self.metrics.set_ready(False)

    def check_model(self, name: str, version: str | None) -> Predictor:
        """The addressed model, or a RequestError with the protocol's (HTTP) status."""
        if name != self.name:
            raise RequestError(f"model {name!r} not found", 404)
        if version and version != self.version:
            raise RequestError(f"model {name!r} has no version {version!r}", 404)
        if self.predictor is None:
            why = self.load_error or "still loading"
            raise RequestError(f"model {self.name!r} is not ready: {why}", 503)
        return self.predictor

    async def infer(
        self, name: str, version: str | None, decode: Callable[[], Awaitable[InferRequest]]
    ) -> Answer:
        """One inference, whatever the transport: `decode` reads the request; errors are raised
        (RequestError, InjectedFault, or the model's own) for the transport to answer; every
        call is counted."""
        start = time.perf_counter()
        ok = False
        try:
            predictor = self.check_model(name, version)
            req = await decode()
            x = model_input(req, predictor.model, numeric_fast_path=predictor.takes_matrix)
            self.faults.maybe_fail()
            pred = predictor(x, req.outputs)
            if self.faults.config.latency_ms:
                await asyncio.sleep(self.faults.config.latency_ms / 1000.0)
            if pred.class_indices is not None:
                self.metrics.observe_classes(pred.class_indices)
            if pred.values is not None:
                self.metrics.observe_values(pred.values)
            if self.metrics.profile is not None:
                self.metrics.profile.observe(x, pred.class_indices, pred.values)
            if self.shadow is not None:
                self.shadow.offer(req, pred)
            ok = True
            return Answer(req, pred, self._feedback_token(pred))
        finally:
            self.metrics.observe_request(ok, time.perf_counter() - start)

    def _feedback_token(self, pred: Prediction) -> str | None:
        """What the client sends back with the ground truth (server.feedback_token)."""
        if self._class_index is not None:
            predicted, digest = pred.class_indices, self._class_index.digest
        else:
            predicted, digest = pred.values, None
        if predicted is None or predicted.ndim != 1:
            return None  # classes_ not sorted, or several values per row: nothing to compare
        issued = token.Issued(self.version, self.metrics.revision, digest, predicted)
        return token.issue(self.feedback_key, issued)

    async def record_feedback(
        self, name: str, version: str | None, read: Callable[[], Awaitable[bytes]]
    ) -> dict[str, int]:
        """Count ground truth for earlier predictions; all of it, or none and a RequestError."""
        self.check_model(name, version)
        items = decode_feedback(await read(), self.feedback_key, self._class_index)
        counts = self.metrics.feedback
        for item in items:
            label = (item.version, item.revision)
            if self._class_index is not None:
                counts.observe_classes(label, item.predicted, item.truth)
            else:
                counts.observe_values(label, item.predicted, item.truth)
        return {"items": len(items), "labelled": sum(len(item.truth) for item in items)}


@dataclass(frozen=True)
class Answer:
    request: InferRequest
    prediction: Prediction
    feedback_token: str | None = None


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(payload), status=status, headers=_JSON)


def _with_binary(payload: Any, binary: bytes) -> web.Response:
    """The binary extension's response: the JSON, then the outputs' bytes."""
    head = orjson.dumps(payload)
    headers = {"Content-Type": "application/octet-stream", HEADER_LENGTH: str(len(head))}
    return web.Response(body=head + binary, headers=headers)


def _error(message: str, status: int) -> web.Response:
    return _json({"error": message}, status)


def build_app(state: ServerState) -> web.Application:
    # The body limit is enforced by aiohttp while reading; we turn its 413 into the
    # protocol's error body below.
    app = web.Application(client_max_size=state.max_body_bytes)
    h = _Handlers(state)
    # aiohttp tries routes in order: the hot path first.
    app.router.add_post("/v2/models/{name}/infer", h.infer)
    app.router.add_post("/v2/models/{name}/versions/{version}/infer", h.infer)
    app.router.add_post("/v2/models/{name}/feedback", h.feedback)
    app.router.add_post("/v2/models/{name}/versions/{version}/feedback", h.feedback)
    app.router.add_get("/v2/health/live", h.live)
    app.router.add_get("/v2/health/ready", h.ready)
    app.router.add_get("/v2", h.server_metadata)
    app.router.add_get("/v2/models/{name}", h.model_metadata)
    app.router.add_get("/v2/models/{name}/versions/{version}", h.model_metadata)
    app.router.add_get("/v2/models/{name}/ready", h.model_ready)
    app.router.add_get("/v2/models/{name}/versions/{version}/ready", h.model_ready)
    app.router.add_get("/metrics", h.metrics)
    app.router.add_route("*", "/{tail:.*}", h.not_found)
    return app


class _Handlers:
    def __init__(self, state: ServerState) -> None:
        self.s = state

    async def live(self, request: web.Request) -> web.Response:
        return _json({"live": True})

    async def ready(self, request: web.Request) -> web.Response:
        return _json({"ready": self.s.ready}, 200 if self.s.ready else 503)

    async def server_metadata(self, request: web.Request) -> web.Response:
        return _json({"name": "modelrollout-server", "version": __version__, "extensions": []})

    def _check_model(self, request: web.Request) -> Predictor:
        info = request.match_info
        return self.s.check_model(info["name"], info.get("version"))

    async def model_ready(self, request: web.Request) -> web.Response:
        try:
            self._check_model(request)
        except RequestError as exc:
            if exc.status != 503:
                return _error(exc.message, exc.status)
        ready = self.s.ready
        return _json({"name": self.s.name, "ready": ready}, 200 if ready else 503)

    async def model_metadata(self, request: web.Request) -> web.Response:
        try:
            predictor = self._check_model(request)
        except RequestError as exc:
            return _error(exc.message, exc.status)
        return _json(model_metadata(self.s, predictor))

    async def metrics(self, request: web.Request) -> web.Response:
        return web.Response(body=self.s.metrics.exposition(), headers=_PROMETHEUS)

    async def not_found(self, request: web.Request) -> web.Response:
        return _error(f"no route for {request.method} {request.path}", 404)

    async def _body(self, request: web.Request) -> bytes:
        limit = self.s.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise RequestError(f"body over the limit of {limit} bytes", 413)
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise RequestError(f"body over the limit of {limit} bytes", 413) from None

    async def feedback(self, request: web.Request) -> web.Response:
        info = request.match_info
        try:
            counted = await self.s.record_feedback(
                info["name"], info.get("version"), lambda: self._body(request)
            )
        except RequestError as exc:
            return _error(exc.message, exc.status)
        return _json(counted)

    async def infer(self, request: web.Request) -> web.Response:
        s = self.s

        async def read() -> InferRequest:
            return decode_request(await self._body(request), request.headers.get(HEADER_LENGTH))

        info = request.match_info
        try:
            answer = await s.infer(info["name"], info.get("version"), read)
        except RequestError as exc:
            return _error(exc.message, exc.status)
        except InjectedFault as exc:
            return _error(str(exc), 500)
        except Exception as exc:  # a genuine model error: the only 5xx we answer
            log.exception("inference failed")
            return _error(f"inference failed: {type(exc).__name__}", 500)
        tensors, binary = encode_outputs(answer.prediction.outputs, answer.request)
        payload: dict[str, Any] = {
            "model_name": s.name,
            "model_version": s.version,
            "outputs": tensors,
        }
        if answer.request.id is not None:
            payload["id"] = answer.request.id
        if answer.feedback_token is not None:
            payload["parameters"] = {"feedback_token": answer.feedback_token}
        return _json(payload) if not binary else _with_binary(payload, binary)


def _inputs(model: LoadedModel, n: int) -> list[dict[str, Any]]:
    """One matrix input, or for a model fitted on a DataFrame one column per feature name."""
    if model.feature_names is None or model.column_types is None:
        return [{"name": "input-0", "datatype": "FP64", "shape": [-1, n]}]
    types = model.column_types
    return [{"name": c, "datatype": types[c], "shape": [-1, 1]} for c in model.feature_names]


def model_metadata(state: ServerState, predictor: Predictor) -> dict[str, Any]:
    model = predictor.model
    n = model.n_features if model.n_features is not None else -1
    outputs: list[dict[str, Any]] = []
    if model.classes is not None:
        kind = np.asarray(model.classes).dtype.kind
        outputs.append({"name": PREDICT, "datatype": dtype_name(kind), "shape": [-1]})
        if model.has_proba:
            outputs.append(
                {"name": PREDICT_PROBA, "datatype": "FP64", "shape": [-1, len(model.classes)]}
            )
    else:
        outputs.append({"name": PREDICT, "datatype": "FP64", "shape": [-1]})
    return {
        "name": state.name,
        "versions": [state.version] if state.version else [],
        "platform": "sklearn",
        "inputs": _inputs(model, n),
        "outputs": outputs,
        "parameters": {"sha256": model.sha256},
    }
