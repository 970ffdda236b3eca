"""Process lifecycle: listen, load the model, serve, drain on SIGTERM; optional workers.

One process by default. ``--workers N`` loads the model once in the parent, then forks N
processes that each listen on the same port with SO_REUSEPORT (the kernel spreads
connections) and count into one shared metrics array.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import warnings
from collections.abc import Coroutine
from dataclasses import replace
from typing import Any

from aiohttp import web

from modelrollout.server.app import ServerState, build_app
from modelrollout.server.config import ServerConfig
from modelrollout.server.faults import Faults
from modelrollout.server.feedback_token import feedback_key
from modelrollout.server.loading import LoadedModel, ModelLoadError, load_model
from modelrollout.server.metrics import ServerMetrics, shared_buffer
from modelrollout.server.reference import load_profile
from modelrollout.server.shadow import Shadow

log = logging.getLogger("modelrollout.server")

LoadResult = LoadedModel | ModelLoadError


def run(config: ServerConfig) -> int:
    _configure_process(config)
    if config.workers == 1:
        metrics = ServerMetrics(config.name, config.version, config.revision)
        return _run_loop(serve(config, metrics, preloaded=None))
    return _run_workers(config)


def _configure_process(config: ServerConfig) -> None:
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # A model fitted on a DataFrame gets one when the request names its columns; sent a plain
    # matrix instead, it would warn on every call.
    warnings.filterwarnings("ignore", message="X does not have valid feature names")
    import sklearn

    # Float inputs are checked for NaN/inf while decoding; skip scikit-learn's second pass.
    sklearn.set_config(assume_finite=True)
    if config.faults.active:
        log.warning("fault injection is ON: %s", config.faults)


def _run_loop(coro: Coroutine[Any, Any, int]) -> int:
    try:
        import uvloop
    except ImportError:  # optional: plain asyncio works, a bit slower
        return asyncio.run(coro)
    return uvloop.run(coro)


def _load(config: ServerConfig) -> LoadResult:
    try:
        model = load_model(config.source)
        if config.profile_uri:
            profile = load_profile(
                config.profile_uri, config.profile_sha256, config.source.pvc_root
            )
            model = replace(model, profile=profile)
    except ModelLoadError as exc:
        log.error("model %r not served: %s", config.name, exc.reason)
        return exc
    log.info(
        "model %r loaded from %s (sha256 %s, %s)",
        config.name,
        config.source.uri,
        model.sha256,
        type(model.estimator).__name__,
    )
    return model


def _apply(state: ServerState, result: LoadResult) -> None:
    if isinstance(result, LoadedModel):
        state.set_model(result)
        assert state.predictor is not None
        fast = state.predictor.fast_path
        log.info(
            "predict_proba: %s", f"fast path for {fast} (verified)" if fast else "scikit-learn"
        )
    else:
        state.load_error = result.reason


async def serve(config: ServerConfig, metrics: ServerMetrics, preloaded: LoadResult | None) -> int:
    state = ServerState(
        config.name,
        config.version,
        metrics,
        Faults(config.faults),
        config.max_body_bytes,
        config.fast_path,
        feedback_key(config.feedback_key, config.name),
    )
    if config.shadow_config:
        state.shadow = Shadow(config.shadow_config, config.name, metrics.shadow)
        await state.shadow.start()
    runner = web.AppRunner(
        build_app(state),
        access_log=None,
        handle_signals=False,
        shutdown_timeout=config.shutdown_timeout,
    )
    await runner.setup()
    site = web.TCPSite(
        runner, config.host, config.port, reuse_port=config.workers > 1, backlog=1024
    )
    await site.start()
    log.info("listening on %s:%d (pid %d)", config.host, config.port, os.getpid())
    grpc_server = None
    if config.grpc_port:
        from modelrollout.server import grpc_service

        grpc_server = await grpc_service.start(
            state, config.host, config.grpc_port, reuse_port=config.workers > 1
        )
        log.info("gRPC on %s:%d", config.host, config.grpc_port)

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    loading: asyncio.Future[LoadResult] | None = None
    if preloaded is None:
        # Listen first, load after: liveness answers while a large model downloads.
        loading = loop.run_in_executor(None, _load, config)
        loading.add_done_callback(lambda f: _apply(state, f.result()))
    else:
        _apply(state, preloaded)

    await stop.wait()
    state.set_draining()
    log.info("SIGTERM: readiness off, draining for %.1fs", config.drain_seconds)
    if config.drain_seconds > 0:
        await asyncio.sleep(config.drain_seconds)
    # Stops listening, then waits for in-flight requests (up to shutdown_timeout).
    if grpc_server is not None:
        await grpc_server.stop(config.shutdown_timeout)
    await runner.cleanup()
    if state.shadow is not None:
        await state.shadow.stop()
    if loading is not None and not loading.done():
        log.info("exiting while the model is still loading")
    log.info("stopped")
    return 0


def _run_workers(config: ServerConfig) -> int:
    buffer = shared_buffer(config.workers)
    preloaded = _load(config)
    children: list[int] = []
    for worker in range(config.workers):
        pid = os.fork()
        if pid == 0:  # child
            code = 1
            try:
                metrics = ServerMetrics(
                    config.name, config.version, config.revision, buffer, worker
                )
                code = _run_loop(serve(config, metrics, preloaded))
            except BaseException:
                log.exception("worker %d crashed", worker)
            finally:
                os._exit(code)
        children.append(pid)
    return _supervise(children)


def _supervise(children: list[int]) -> int:
    """Forward SIGTERM/SIGINT to the workers; if one dies on its own, stop them all."""
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in children:
            _kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    alive = set(children)
    while alive:
        try:
            pid, raw = os.wait()
        except ChildProcessError:
            break
        alive.discard(pid)
        code = os.waitstatus_to_exitcode(raw)
        if code != 0 or not stopping:
            status = status or (code if code > 0 else 1)
            if not stopping:
                log.error("worker pid %d exited (%d); stopping the others", pid, code)
                stopping = True
                for other in alive:
                    _kill(other, signal.SIGTERM)
    return status


def _kill(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)
