"""The operator's own Prometheus metrics (prefix modelrollout_).

Per-object series are computed at scrape time from the last status each reconcile saw, so a
deleted ModelDeployment leaves no series behind. Model versions never become label values.
"""

from __future__ import annotations

from collections import Counter as Tally
from collections.abc import Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

RECONCILES = Counter(
    "modelrollout_reconcile",
    "Reconciliations of ModelDeployments, by result (success, conflict, error).",
    ["result"],
)
RECONCILE_SECONDS = Histogram(
    "modelrollout_reconcile_duration_seconds",
    "Time for one reconcile: observe, decide, apply.",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
KUBE_REQUESTS = Counter(
    "modelrollout_kube_requests",
    "Requests of the shell's Kubernetes client (Kopf's watches not included), by verb.",
    ["verb"],
)
EVENTS = Counter(
    "modelrollout_events",
    "Kubernetes events the operator posted, by type and reason.",
    ["type", "reason"],
)


@dataclass(frozen=True)
class Snapshot:
    phase: str
    canary_weight: int
    # Labels of the `_info` series: model name and version (from the spec), and the revisions.
    model: str = ""
    version: str = ""
    stable_revision: str = ""
    canary_revision: str = ""
    # status.monitoring.state ("" without spec.monitoring) and breaches of the serving revision.
    monitoring: str = ""
    breaches: int = 0


_SNAPSHOTS: dict[tuple[str, str], Snapshot] = {}
INFO_LABELS = ("model", "version", "stable_revision", "canary_revision")


def remember_object(
    namespace: str,
    name: str,
    phase: str,
    canary_weight: int,
    *,
    model: str = "",
    version: str = "",
    stable_revision: str = "",
    canary_revision: str = "",
    monitoring: str = "",
    breaches: int = 0,
) -> None:
    _SNAPSHOTS[namespace, name] = Snapshot(
        phase,
        canary_weight,
        model,
        version,
        stable_revision,
        canary_revision,
        monitoring,
        breaches,
    )


def forget(namespace: str, name: str) -> None:
    _SNAPSHOTS.pop((namespace, name), None)


class _ObjectCollector(Collector):
    def collect(self) -> Iterator[GaugeMetricFamily]:
        snapshots = dict(_SNAPSHOTS)  # reconciles may change it while we iterate
        by_phase = GaugeMetricFamily(
            "modelrollout_modeldeployments",
            "ModelDeployments this operator knows, by phase.",
            labels=["phase"],
        )
        for phase, count in sorted(Tally(s.phase for s in snapshots.values()).items()):
            by_phase.add_metric([phase], count)
        weight = GaugeMetricFamily(
            "modelrollout_canary_weight_ratio",
            "Share of traffic sent to the canary (0..1), per ModelDeployment.",
            labels=["namespace", "name"],
        )
        # Versions and revisions change with every rollout, so they live only here, in one
        # series per object (join on namespace/name), never on the other series.
        info = GaugeMetricFamily(
            "modelrollout_modeldeployment_info",
            "Always 1, per ModelDeployment: model, spec version, stable and canary revision.",
            labels=["namespace", "name", *INFO_LABELS],
        )
        for (namespace, name), snapshot in sorted(snapshots.items()):
            weight.add_metric([namespace, name], snapshot.canary_weight / 100)
            info.add_metric(
                [namespace, name, *(getattr(snapshot, label) for label in INFO_LABELS)], 1
            )
        healthy = GaugeMetricFamily(
            "modelrollout_model_healthy",
            "spec.monitoring's verdict on the serving revision: 1 healthy, 0 breached "
            "(absent while pending, without data or without spec.monitoring).",
            labels=["namespace", "name"],
        )
        breaches = GaugeMetricFamily(
            "modelrollout_monitoring_breaches",
            "Breaches of spec.monitoring by the serving revision so far.",
            labels=["namespace", "name"],
        )
        for (namespace, name), snapshot in sorted(snapshots.items()):
            if snapshot.monitoring in ("Healthy", "Breached"):
                healthy.add_metric([namespace, name], float(snapshot.monitoring == "Healthy"))
            if snapshot.monitoring:
                breaches.add_metric([namespace, name], snapshot.breaches)
        yield by_phase
        yield weight
        yield info
        yield healthy
        yield breaches


REGISTRY.register(_ObjectCollector())


def serve(port: int, address: str = "0.0.0.0") -> None:
    """prometheus-client's own HTTP server (Kopf's liveness endpoint is not Prometheus)."""
    start_http_server(port, addr=address)
