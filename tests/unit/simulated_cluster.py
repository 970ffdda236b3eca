"""A pure, in-memory stand-in for the cluster: carries out Plans the way the shell does.

Used by the unit and property tests (and handy for reasoning about a rollout step by step): it
keeps Deployments (replicas, ready pods), the router's read-back state and the clock, and turns
them into Observations. Pods become ready only when a test says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from modelrollout.api import ModelDeploymentSpec, ModelDeploymentStatus
from modelrollout.core.decide import decide
from modelrollout.core.evaluation import AnalysisEvaluator
from modelrollout.core.observation import (
    AnalysisMeasurements,
    Observation,
    RevisionObservation,
    TrafficObservation,
)
from modelrollout.core.plan import Plan
from modelrollout.core.routing import is_blue_green, uses_replica_weights


@dataclass
class SimDeployment:
    replicas: int
    ready: int
    created_at: datetime
    # What its pods' statuses say when they cannot run (RevisionObservation.trouble).
    trouble: str | None = None


@dataclass
class SimCluster:
    """Deployments, the router and the clock of one ModelDeployment."""

    now: datetime
    deployments: dict[str, SimDeployment] = field(default_factory=dict)
    router: TrafficObservation | None = None
    generation: int = 1
    analysis_available: bool = False
    # A router that takes no writes (its object is edited back, or the write never lands).
    router_stuck: bool = False

    def observe(self, measurements: AnalysisMeasurements | None = None) -> Observation:
        return Observation(
            now=self.now,
            generation=self.generation,
            revisions={
                r: RevisionObservation(r, d.replicas, d.ready, d.created_at, d.trouble)
                for r, d in self.deployments.items()
            },
            traffic=self.router,
            measurements=measurements,
            analysis_available=self.analysis_available,
        )

    def apply(self, plan: Plan, spec: ModelDeploymentSpec) -> None:
        """Carry out a plan as the shell does (only the spec's revision can be created)."""
        for desired in plan.revisions:
            existing = self.deployments.get(desired.revision)
            if existing is None:
                if desired.revision != plan.revision:
                    continue
                existing = SimDeployment(0, 0, self.now)
                self.deployments[desired.revision] = existing
            existing.replicas = desired.replicas
            existing.ready = min(existing.ready, desired.replicas)
        for revision in plan.prune:
            self.deployments.pop(revision, None)
        routed = is_blue_green(spec) or not uses_replica_weights(spec)
        traffic = plan.traffic
        if routed and traffic.stable_revision is not None and not self.router_stuck:
            self.router = TrafficObservation(
                stable_revision=traffic.stable_revision,
                canary_revision=traffic.canary_revision,
                canary_weight=traffic.canary_weight,
                active_revision=traffic.active_revision,
                preview_revision=traffic.preview_revision,
            )

    def make_ready(self, revision: str, ready: int | None = None) -> None:
        deployment = self.deployments[revision]
        deployment.ready = deployment.replicas if ready is None else min(ready, deployment.replicas)

    def make_all_ready(self) -> None:
        for revision in self.deployments:
            self.make_ready(revision)

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def reconcile(
        self,
        spec: ModelDeploymentSpec,
        status: ModelDeploymentStatus,
        *,
        evaluate: AnalysisEvaluator | None = None,
        measurements: AnalysisMeasurements | None = None,
        name: str = "md",
    ) -> Plan:
        """decide() on the current observation, then carry the plan out."""
        plan = decide(name, "ns", spec, status, self.observe(measurements), evaluate=evaluate)
        self.apply(plan, spec)
        return plan


@dataclass
class SimRollout:
    """One ModelDeployment driven through a SimCluster: spec, status and the last plan."""

    spec: ModelDeploymentSpec
    cluster: SimCluster
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    evaluate: AnalysisEvaluator | None = None
    tokens: int = 0

    def reconcile(self, measurements: AnalysisMeasurements | None = None) -> Plan:
        plan = self.cluster.reconcile(
            self.spec, self.status, evaluate=self.evaluate, measurements=measurements
        )
        self.status = plan.status
        return plan

    def settle(self, rounds: int = 20) -> Plan:
        """Reconcile, making every pod ready, until the status stops changing."""
        plan = self.reconcile()
        for _ in range(rounds):
            self.cluster.make_all_ready()
            before = self.status
            plan = self.reconcile()
            if plan.status == before:
                break
        return plan

    def change_spec(self, spec: ModelDeploymentSpec) -> None:
        self.spec = spec
        self.cluster.generation += 1

    def request(self, control: str) -> None:
        """A control request as the CLI sends it: a new token in status.<control>."""
        self.tokens += 1
        self.status = self.status.model_copy(update={control: f"t{self.tokens}"})

    def as_object(self) -> dict[str, Any]:
        """The ModelDeployment as the API server holds it (what kubectl and the plugin read)."""
        return {
            "metadata": {"name": "md", "namespace": "ns", "generation": self.cluster.generation},
            "spec": self.spec.model_dump(by_alias=True, exclude_none=True, mode="json"),
            "status": self.status.model_dump(by_alias=True, exclude_none=True, mode="json"),
        }

    def restart(self) -> None:
        """An operator restart: only what was written to the API server survives."""
        self.status = ModelDeploymentStatus.model_validate(
            self.status.model_dump(by_alias=True, exclude_none=True, mode="json")
        )
