"""The shell's handle on analysis: measure when the core's Plan.analysis_due is due.

The shell runs in a worker thread (the sync Kubernetes client); the runner and its metric
providers are async (httpx). `measure_if_due` hands the measurement to the operator's event loop
and waits for it, so one runner, and so one provider per kind with its connection pool and query
cache, serve every ModelDeployment of the process. `create` gives the providers a Secret reader
(Prometheus credentials and CA); `evaluate` is the core's outcome policy (analysis_policy.py).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
from dataclasses import dataclass

from prometheus_client import Counter

from modelrollout.analysis.provider import MetricFetchError, SecretReader
from modelrollout.analysis.runner import AnalysisRunner
from modelrollout.core.analysis_policy import evaluate
from modelrollout.core.evaluation import AnalysisEvaluator
from modelrollout.core.metric_judging import error_result
from modelrollout.core.observation import AnalysisMeasurements
from modelrollout.core.plan import AnalysisRequest
from modelrollout.kube import Kube, ResourceKind, ShellError

SECRETS = ResourceKind("", "v1", "Secret", "secrets")

# Bounded labels only: the verdict and the run kind (metric names are user-defined).
MEASUREMENTS = Counter(
    "modelrollout_analysis_measurements",
    "Metric measurements taken, by verdict.",
    ["kind", "verdict"],
)


class SecretNotFound(MetricFetchError):
    """The credentials Prometheus needs cannot be read: the measurement is an Error."""


def _secret_reader(kube: Kube) -> SecretReader:
    async def read(namespace: str, name: str, key: str) -> str:
        try:
            secret = await asyncio.to_thread(kube.get, SECRETS, namespace, name)
        except ShellError as error:
            raise SecretNotFound(f"cannot read Secret {namespace}/{name}: {error}") from error
        if secret is None:
            raise SecretNotFound(f"Secret {namespace}/{name} not found")
        data = secret.get("data") or {}
        if key not in data:
            raise SecretNotFound(f"Secret {namespace}/{name} has no key {key!r}")
        try:
            return base64.b64decode(data[key]).decode()
        except ValueError as error:
            raise SecretNotFound(
                f"Secret {namespace}/{name} key {key!r} is not base64 text"
            ) from error

    return read


@dataclass
class AnalysisHook:
    runner: AnalysisRunner
    loop: asyncio.AbstractEventLoop
    evaluate: AnalysisEvaluator = evaluate
    # Upper bound of one measurement (all metrics, retries included).
    timeout: float = 60.0

    @classmethod
    def create(cls, kube: Kube) -> AnalysisHook:
        """Call from the operator's event loop (Kopf startup)."""
        return cls(AnalysisRunner(read_secret=_secret_reader(kube)), asyncio.get_running_loop())

    async def aclose(self) -> None:
        await self.runner.aclose()

    async def measure(
        self, namespace: str, name: str, due: AnalysisRequest
    ) -> AnalysisMeasurements:
        results = await self.runner.measure(
            due.spec, namespace, name, due.canary_revision, due.stable_revision
        )
        for r in results:
            MEASUREMENTS.labels(due.kind.value, r.verdict.value).inc()
        measured_at = max(
            (r.measured_at for r in results if r.measured_at is not None),
            default=dt.datetime.now(dt.UTC),
        )
        return AnalysisMeasurements(key=due.key, measured_at=measured_at, results=tuple(results))

    def measure_if_due(
        self, namespace: str, name: str, due: AnalysisRequest | None, now: dt.datetime
    ) -> AnalysisMeasurements | None:
        """Blocking; call from a worker thread, never from the event loop."""
        if due is None or due.measure_at > now:
            return None
        future = asyncio.run_coroutine_threadsafe(self.measure(namespace, name, due), self.loop)
        try:
            return future.result(timeout=self.timeout)
        except TimeoutError:
            # Every metric of this round is an Error: onError decides, as for any source failure.
            future.cancel()
            why = f"measuring took longer than {self.timeout:g} s"
            results = tuple(error_result(m.name, why, now) for m in due.spec.metrics)
            return AnalysisMeasurements(key=due.key, measured_at=now, results=results)
