"""The Prometheus client against a real Prometheus process (Debian's /usr/bin/prometheus)."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelrollout.analysis.prometheus import (
    BadQuery,
    BasicAuth,
    EmptyResult,
    PrometheusClient,
    PrometheusConfig,
    Timeout,
    Unreachable,
)
from tests.e2e.prometheus import PrometheusProcess, ScrapeTarget, StaticExporter
from tests.testenv.controlplane import free_port

# bcrypt of "s3cret" (cost 4), made with crypt.crypt(..., crypt.mksalt(METHOD_BLOWFISH, rounds=16))
PASSWORD_HASH = "$2b$04$Fl7eyPVAAyeIqHCwwhqw8.TS9PnLorTmklCUrgmXHY.ZveUuN8aaS"

METRICS = """\
# TYPE model_infer_request_success_total counter
model_infer_request_success_total{model="m",revision="abc"} 42
"""


@pytest.fixture(scope="module")
def prom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrometheusProcess]:
    with StaticExporter(METRICS) as exporter:
        labels = {"namespace": "ml", "name": "fraud", "revision": "abc"}
        p = PrometheusProcess(
            tmp_path_factory.mktemp("prom"), [ScrapeTarget(exporter.address, labels)]
        )
        with p:
            assert p.wait_for("model_infer_request_success_total"), "target never scraped"
            yield p


async def test_instant_query_sees_target_labels(prom: PrometheusProcess) -> None:
    async with PrometheusClient(PrometheusConfig(prom.url)) as c:
        (sample,) = await c.query("model_infer_request_success_total")
    assert sample.value == 42.0
    assert sample.labels["namespace"] == "ml"
    assert sample.labels["name"] == "fraud"
    assert sample.labels["revision"] == "abc"


async def test_range_query(prom: PrometheusProcess) -> None:
    prom.wait_for("count_over_time(up[10s]) >= 3", timeout=30)
    now = time.time()
    async with PrometheusClient(PrometheusConfig(prom.url)) as c:
        (series,) = await c.query_range("up", now - 10, now, 1.0)
    assert len(series.values) >= 3
    assert set(series.values) == {1.0}


async def test_bad_query(prom: PrometheusProcess) -> None:
    async with PrometheusClient(PrometheusConfig(prom.url)) as c:
        with pytest.raises(BadQuery):
            await c.query("sum(rate(up[1m])")


async def test_empty_result(prom: PrometheusProcess) -> None:
    async with PrometheusClient(PrometheusConfig(prom.url)) as c:
        with pytest.raises(EmptyResult):
            await c.query('up{revision="nope"}')


async def test_unreachable_after_retries() -> None:
    config = PrometheusConfig(f"http://127.0.0.1:{free_port()}", retries=2, backoff=0.01)
    async with PrometheusClient(config) as c:
        with pytest.raises(Unreachable):
            await c.query("up")
        assert c.queries_sent == 3


async def test_timeout_on_a_silent_server() -> None:
    # A socket that accepts connections and never answers.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        address = f"http://127.0.0.1:{silent.getsockname()[1]}"
        async with PrometheusClient(PrometheusConfig(address, timeout=0.3, retries=0)) as c:
            with pytest.raises(Timeout):
                await c.query("up")


def test_basic_auth(tmp_path: Path) -> None:
    web = {"basic_auth_users": {"admin": PASSWORD_HASH}}
    p = PrometheusProcess(tmp_path, web_config=web)
    p.username, p.password = "admin", "s3cret"

    async def check() -> None:
        good = PrometheusConfig(p.url, basic_auth=BasicAuth("admin", "s3cret"))
        async with PrometheusClient(good) as c:
            assert (await c.query("vector(1)"))[0].value == 1.0
        bad = PrometheusConfig(p.url, basic_auth=BasicAuth("admin", "wrong"), retries=0)
        async with PrometheusClient(bad) as c:
            with pytest.raises(Unreachable, match="authentication rejected"):
                await c.query("vector(1)")

    with p:
        asyncio.run(check())


def test_tls_verify_options(tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    web = {"tls_server_config": {"cert_file": str(cert), "key_file": str(key)}}
    p = PrometheusProcess(tmp_path / "prom", web_config=web, tls=True)

    async def check() -> None:
        async with PrometheusClient(PrometheusConfig(p.url, ca_file=str(cert))) as c:
            assert (await c.query("vector(2)"))[0].value == 2.0
        async with PrometheusClient(PrometheusConfig(p.url, verify=False)) as c:
            assert (await c.query("vector(3)"))[0].value == 3.0
        async with PrometheusClient(PrometheusConfig(p.url, retries=0)) as c:
            with pytest.raises(Unreachable):  # self-signed, not trusted by default
                await c.query("vector(1)")

    with p:
        asyncio.run(check())
