"""Fixtures shared by the unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from modelrollout.server.app import ServerState, build_app
from tests.unit.server_client import ClientFor


@pytest.fixture
async def client_for() -> AsyncIterator[ClientFor]:
    """Starts a client on a server for a state; closes them all after the test."""
    clients: list[TestClient[Any, Any]] = []

    async def start(state: ServerState) -> TestClient[Any, Any]:
        client = TestClient(TestServer(build_app(state)))
        await client.start_server()
        clients.append(client)
        return client

    yield start
    for c in clients:
        await c.close()
