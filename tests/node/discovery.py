"""Prometheus as users run it without the Prometheus Operator: it finds the model-server pods
itself (`kubernetes_sd_configs`, role pod) with the scrape configuration the README documents
(docs/prometheus-scrape.yaml: the chart's PodMonitor relabelling).

Debian's Prometheus is built without Kubernetes discovery (its NEWS.Debian: "Kubernetes support
has been completely removed"), so this runs upstream Prometheus built from Go modules with only
that discoverer (tests/testenv/prometheus, build tags remove_all_sd,enable_kubernetes_sd) into the
testenv's binary directory (`make testenv`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e.prometheus import PrometheusProcess
from tests.testenv.controlplane import REPO, default_bin_dir
from tests.testenv.node import RealNode

SCRAPE_CONFIG = REPO / "docs" / "prometheus-scrape.yaml"


def prometheus_with_kubernetes_sd() -> str:
    """The Prometheus to run; a missing one fails the test with how to build it."""
    binary = default_bin_dir() / "prometheus"
    if not os.access(binary, os.X_OK):
        pytest.fail(f"no Prometheus with Kubernetes discovery at {binary} (Debian's has none): "
                    "run `make testenv`", pytrace=False)  # fmt: skip
    return str(binary)


def documented_scrape_configs(kubeconfig: Path) -> list[dict[str, Any]]:
    """docs/prometheus-scrape.yaml as it is, plus where this test's API server is."""
    configs: list[dict[str, Any]] = yaml.safe_load(SCRAPE_CONFIG.read_text())["scrape_configs"]
    for config in configs:
        for sd in config["kubernetes_sd_configs"]:
            sd["kubeconfig_file"] = str(kubeconfig)
    return configs


@contextmanager
def discovering_prometheus(node: RealNode, workdir: Path) -> Iterator[PrometheusProcess]:
    """Prometheus with the documented scrape configuration, listening on the host's end of the
    node's veth, where the operator pod reaches it."""
    prom = PrometheusProcess(
        workdir,
        host=node.host_address,
        scrape_configs=documented_scrape_configs(Path(node.cp.kubeconfig)),
        binary=prometheus_with_kubernetes_sd(),
    )
    prom.start()
    try:
        yield prom
    finally:
        prom.stop()


ERROR_RATE: dict[str, Any] = {
    "name": "error-rate",
    "builtin": "errorRate",
    "max": 0.05,
    "window": "10s",
}
# PSI of the predicted classes, candidate against stable, over a window wide enough that chance
# alone leaves two equal models well under the bound (demo-canary.yaml's choice).
DRIFT: dict[str, Any] = {"name": "drift", "builtin": "predictionDrift", "max": 0.3, "window": "20s"}


def discovered_analysis(
    prom: PrometheusProcess, *metrics: dict[str, Any], **extra: Any
) -> dict[str, Any]:
    """spec.analysis judged from what `prom` scrapes from the pods it discovers."""
    return {
        "interval": "5s",
        "count": 3,
        "prometheus": {"address": prom.url, "timeout": "5s"},
        "metrics": list(metrics),
        "minSamples": 20,
        # A thin first window on a loaded machine is tolerated, twice (no data never passes).
        "inconclusiveLimit": 2,
        **extra,
    }
