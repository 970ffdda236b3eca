"""Every query of the chart's Grafana dashboard runs on a real Prometheus (/usr/bin/prometheus)
against the real exposition of the model server's and the operator's metrics: valid PromQL, and
each returns series once two scrapes are in."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
from prometheus_client import REGISTRY, generate_latest

from modelrollout import metrics as operator_metrics
from modelrollout.profile.build import build_profile
from modelrollout.server.frames import Columns
from modelrollout.server.metrics import ServerMetrics
from tests.e2e.prometheus import PrometheusProcess, ScrapeTarget, StaticExporter
from tests.integration.helm_chart import CHART

VARIABLES = {"$model": ".*", "$namespace": ".*"}


PROFILE = build_profile(
    pd.DataFrame({"amount": np.linspace(0, 100, 50), "country": ["FR", "NO"] * 25}),
    np.array(["legit", "fraud"] * 25),
    bins=4,
)


def server_exposition(revision: str) -> str:
    server = ServerMetrics("fraud", "7", revision)
    server.set_classes(["legit", "fraud"])
    server.set_profile(PROFILE, ["amount", "country"], ["legit", "fraud"])
    server.set_ready(True)
    for i in range(20):
        server.observe_request(ok=i % 10 != 0, seconds=0.002 * (i + 1))
    server.observe_classes(np.array([0, 0, 1, 0]))
    server.observe_values(np.array([0.1, 0.7, 0.4]))
    server.feedback.observe_classes(("7", revision), np.array([0, 1]), np.array([0, 0]))
    assert server.profile is not None
    rows = Columns({"amount": np.array([5.0, 95.0]), "country": np.array(["FR", "PE"], object)})
    server.profile.observe(rows, np.array([0, 1]), None)
    return server.exposition().decode()


def regressor_exposition() -> str:
    server = ServerMetrics("spend", "3", "spend0001")
    server.set_ready(True)
    server.observe_request(ok=True, seconds=0.002)
    server.feedback.observe_values(("3", "spend0001"), np.array([10.0]), np.array([12.5]))
    return server.exposition().decode()


def operator_exposition() -> str:
    operator_metrics.remember_object("ml", "fraud", "Progressing", 25)
    operator_metrics.RECONCILES.labels("success").inc()
    operator_metrics.RECONCILE_SECONDS.observe(0.02)
    operator_metrics.EVENTS.labels("Normal", "StepCompleted").inc()
    try:
        return generate_latest(REGISTRY).decode()
    finally:
        operator_metrics.forget("ml", "fraud")


def queries() -> list[tuple[str, str]]:
    dashboard = json.loads((CHART / "dashboards" / "modelrollout.json").read_text())
    out = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for name, value in VARIABLES.items():
                expr = expr.replace(name, value)
            out.append((panel["title"], expr))
    return out


def test_every_dashboard_query_returns_series(tmp_path: Path) -> None:
    exprs = queries()
    assert exprs
    assert all("$" not in expr for _, expr in exprs), "a template variable is not substituted"
    with (
        StaticExporter(server_exposition("stable0001")) as stable,
        StaticExporter(server_exposition("canary0001")) as canary,
        StaticExporter(regressor_exposition()) as regressor,
        StaticExporter(operator_exposition()) as operator,
    ):
        targets = [
            ScrapeTarget(stable.address),
            ScrapeTarget(canary.address),
            ScrapeTarget(regressor.address),
            ScrapeTarget(operator.address),
        ]
        with PrometheusProcess(tmp_path / "prometheus", targets) as prometheus:
            # rate() needs two samples in its window: wait for the slowest query to have them.
            prometheus.wait_for("count(count_over_time(model_ready[1m]) >= 3)", timeout=60)
            empty = []
            for title, expr in exprs:
                result = prometheus.instant(expr)  # a PromQL error raises (HTTP 400)
                if not result:
                    empty.append(title)
            assert not empty, f"panels without data: {empty}"
            revisions = {
                s["metric"]["revision"]
                for s in prometheus.instant(next(e for t, e in exprs if t == "Error rate"))
            }
            assert revisions == {"stable0001", "canary0001", "spend0001"}
    assert re.search(r"modelrollout_canary_weight_ratio\{", operator_exposition())
