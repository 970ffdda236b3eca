"""The model server's HTTP API in process (aiohttp's test server), for the server's unit tests."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from modelrollout.server.app import ServerState, build_app

# What the client_for fixture (tests/unit/conftest.py) gives a test.
ClientFor = Callable[[ServerState], Awaitable[TestClient[Any, Any]]]


@contextmanager
def client_on_own_loop(
    state: ServerState,
) -> Iterator[tuple[asyncio.AbstractEventLoop, TestClient[Any, Any]]]:
    """A client with its own event loop, for hypothesis tests (which are not coroutines)."""
    loop = asyncio.new_event_loop()
    client = TestClient(TestServer(build_app(state)), loop=loop)
    loop.run_until_complete(client.start_server())
    try:
        yield loop, client
    finally:
        loop.run_until_complete(client.close())
        loop.close()
