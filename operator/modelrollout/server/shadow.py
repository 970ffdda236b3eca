"""Shadow traffic: the serving (stable) server sends a copy of a share of its requests to a
candidate's server and compares the candidate's answers with its own, per request.

The stable is the one place that holds both the request and its own answer, so agreement is
measured request by request, with no mesh. The caller never waits for the candidate and never
sees its answer: a copy goes into a bounded queue (dropped and counted when full) that a few
background tasks send on; the request path only pays for a counter and a put.

What to mirror comes from a small JSON file (`--shadow-config`), re-read when it changes, so the
share can change without a restart (the operator writes it into a ConfigMap the pods mount):

    {"target": "http://fraud-canary.ml:8080", "percent": 20, "revision": "9b1e22"}

`percent` 0 (or no file) mirrors nothing. The share is exact: every request adds `percent` to an
accumulator and is copied each time it passes 100.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import orjson

from modelrollout.server.inference import PREDICT, PREDICT_PROBA, Prediction
from modelrollout.server.shadow_metrics import ShadowCounts
from modelrollout.server.tensors import InferRequest

log = logging.getLogger("modelrollout.server.shadow")

QUEUE_SIZE = 64
SENDERS = 4
TIMEOUT_SECONDS = 5.0
RECHECK_SECONDS = 1.0


@dataclass(frozen=True)
class ShadowConfig:
    target: str  # the candidate server's base URL
    percent: float  # share of requests copied, 0..100
    revision: str  # the candidate's revision: the `revision` label of the agreement metrics


def parse_config(text: str) -> ShadowConfig:
    """The config file's content; ValueError naming what is wrong."""
    doc = json.loads(text)
    if not isinstance(doc, dict):
        raise ValueError("expected a JSON object")
    target, percent, revision = doc.get("target"), doc.get("percent", 0), doc.get("revision")
    if not isinstance(target, str) or not target.startswith(("http://", "https://")):
        raise ValueError("target must be an http(s) URL")
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise ValueError("percent must be a number")
    if not 0 <= percent <= 100:
        raise ValueError("percent must be between 0 and 100")
    if not isinstance(revision, str) or not 0 < len(revision) <= 63:
        raise ValueError("revision must be a non-empty string of at most 63 characters")
    return ShadowConfig(target.rstrip("/"), float(percent), revision)


@dataclass(frozen=True)
class _Copy:
    config: ShadowConfig
    request: InferRequest
    prediction: Prediction


class Shadow:
    """Mirrors a share of the requests to the candidate named by the config file."""

    def __init__(self, path: str, model: str, counts: ShadowCounts) -> None:
        self.path = path
        self.model = model
        self.counts = counts
        self.config: ShadowConfig | None = None
        self._mtime: float | None = None
        self._checked = -math.inf
        self._share = 0.0
        self._queue: asyncio.Queue[_Copy] = asyncio.Queue(QUEUE_SIZE)
        self._tasks: list[asyncio.Task[None]] = []
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
        self._session = aiohttp.ClientSession(timeout=timeout)
        self._tasks = [asyncio.create_task(self._send()) for _ in range(SENDERS)]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._session is not None:
            await self._session.close()

    def offer(self, request: InferRequest, prediction: Prediction) -> None:
        """On the request path: copy this request if it is in the share (never blocks)."""
        config = self.current()
        if config is None or config.percent <= 0:
            return
        self._share += config.percent
        if self._share < 100:
            return
        self._share -= 100
        try:
            self._queue.put_nowait(_Copy(config, request, prediction))
        except asyncio.QueueFull:
            self.counts.count(config.revision, "dropped")

    def current(self) -> ShadowConfig | None:
        """The config in force: the file is re-read at most once a second, when it changed."""
        now = time.monotonic()
        if now - self._checked < RECHECK_SECONDS:
            return self.config
        self._checked = now
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError:
            self.config, self._mtime = None, None  # no file: no shadow traffic
            return None
        if mtime != self._mtime:
            self._mtime = mtime
            try:
                with open(self.path, encoding="utf-8") as f:
                    self.config = parse_config(f.read())
            except (OSError, ValueError) as exc:
                log.warning("shadow config %s ignored: %s", self.path, exc)
                self.config = None
            else:
                log.info("shadow traffic: %s", self.config)
        return self.config

    async def _send(self) -> None:
        assert self._session is not None
        while True:
            copy = await self._queue.get()
            try:
                await self._compare(self._session, copy)
            except Exception as exc:  # a candidate's failure never reaches the stable
                log.debug("shadow request failed: %s", exc)
                self.counts.count(copy.config.revision, "failed")

    async def _compare(self, session: aiohttp.ClientSession, copy: _Copy) -> None:
        config = copy.config
        url = f"{config.target}/v2/models/{self.model}/infer"
        start = time.perf_counter()
        async with session.post(
            url, data=encode(copy.request), headers={"Content-Type": "application/json"}
        ) as response:
            body = await response.read()
        seconds = time.perf_counter() - start
        if response.status != 200:
            self.counts.count(config.revision, "failed")
            return
        theirs = _outputs(orjson.loads(body))
        self.counts.count(config.revision, "compared")
        self.counts.observe_latency(config.revision, seconds)
        mine = dict(copy.prediction.outputs)
        self.counts.observe(config.revision, agreement(mine, theirs))


def encode(request: InferRequest) -> bytes:
    """The decoded request as a JSON request of the protocol (whatever it came as: REST JSON,
    binary tensors or gRPC), asking for every output."""
    inputs = [
        {
            "name": t.name,
            "datatype": t.datatype,
            "shape": list(t.array.shape),
            "data": t.array.ravel().tolist(),
        }
        for t in request.inputs
    ]
    doc: dict[str, Any] = {"inputs": inputs}
    if request.content_type is not None:
        doc["parameters"] = {"content_type": request.content_type}
    return orjson.dumps(doc)


def _outputs(doc: Any) -> dict[str, np.ndarray[Any, Any]]:
    out: dict[str, np.ndarray[Any, Any]] = {}
    for tensor in doc.get("outputs", []) if isinstance(doc, dict) else []:
        if isinstance(tensor, dict) and isinstance(tensor.get("name"), str):
            out[tensor["name"]] = np.asarray(tensor.get("data", [])).reshape(tensor["shape"])
    return out


@dataclass(frozen=True)
class Agreement:
    """One compared request: rows, identical labels, probability and value differences."""

    rows: int
    agreed: int = 0  # classifiers: identical predicted labels
    proba_rows: int = 0
    proba_abs_diff: float = 0.0  # sum over rows of the mean |p_stable - p_candidate|
    value_rows: int = 0
    abs_diff: float = 0.0  # regressors: sum of |stable - candidate|
    rel_diff: float = 0.0  # sum of |stable - candidate| / max(|stable|, 1e-12)


def agreement(
    mine: dict[str, np.ndarray[Any, Any]], theirs: dict[str, np.ndarray[Any, Any]]
) -> Agreement:
    """How the candidate's answer to the same rows compares with the stable's own."""
    ours, other = mine.get(PREDICT), theirs.get(PREDICT)
    if ours is None or other is None or ours.shape != other.shape:
        return Agreement(rows=0)
    rows = len(ours)
    result = Agreement(rows=rows)
    if ours.dtype.kind in "fc" and other.dtype.kind in "fiuc":
        a, b = ours.astype(np.float64), other.astype(np.float64)
        diff = np.abs(a - b)
        result = Agreement(
            rows=rows,
            value_rows=rows,
            abs_diff=float(diff.sum()),
            rel_diff=float((diff / np.maximum(np.abs(a), 1e-12)).sum()),
            agreed=int(np.count_nonzero(a == b)),
        )
    else:
        result = Agreement(
            rows=rows, agreed=int(np.count_nonzero(ours.astype(str) == other.astype(str)))
        )
    p, q = mine.get(PREDICT_PROBA), theirs.get(PREDICT_PROBA)
    if p is not None and q is not None and p.shape == q.shape and p.ndim == 2:
        diff = np.abs(p.astype(np.float64) - q.astype(np.float64)).mean(axis=1)
        result = Agreement(
            rows=result.rows,
            agreed=result.agreed,
            proba_rows=len(diff),
            proba_abs_diff=float(diff.sum()),
            value_rows=result.value_rows,
            abs_diff=result.abs_diff,
            rel_diff=result.rel_diff,
        )
    return result
