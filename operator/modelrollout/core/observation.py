"""What the shell observed, the input of `decide` (frozen: the core never mutates it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelrollout.api import MetricResult, ValidationStatus


@dataclass(frozen=True)
class RevisionObservation:
    """One existing Deployment `<name>-<revision>` of this ModelDeployment."""

    revision: str
    replicas: int
    ready_replicas: int
    created_at: datetime | None = None
    # Why pods of it are not running, read from them only while some are not ready
    # ("pod fraud-ab12-x: ErrImageNeverPull: ..."); None when they are just starting.
    trouble: str | None = None


@dataclass(frozen=True)
class TrafficObservation:
    """What the traffic router reads back (the routing object is the truth after a restart)."""

    stable_revision: str | None
    canary_revision: str | None
    canary_weight: int
    active_revision: str | None = None
    preview_revision: str | None = None
    # The object that holds the weight ("HTTPRoute ml/fraud"), for messages.
    routing_object: str = ""
    # Who changed it last, when not this operator (its field manager, e.g. "argocd-controller").
    changed_by: str | None = None


@dataclass(frozen=True)
class AnalysisMeasurements:
    """Results of the measurements the shell just made for `key` (an AnalysisRequest.key)."""

    key: str
    measured_at: datetime
    results: tuple[MetricResult, ...]


@dataclass(frozen=True)
class Fault:
    """A failure of the shell while observing or acting (a kube.errors.ShellError)."""

    # CamelCase: the Progressing condition's reason and the Warning event's reason.
    reason: str
    # Names the object and the cause, e.g. "HTTPRoute ml/fraud not found".
    message: str


@dataclass(frozen=True)
class Observation:
    """Everything `decide` needs from the world besides spec and status."""

    now: datetime
    generation: int
    revisions: Mapping[str, RevisionObservation] = field(default_factory=dict)
    traffic: TrafficObservation | None = None
    measurements: AnalysisMeasurements | None = None
    analysis_available: bool = False
    # Result of the validation Job for a candidate (Plan.validation_due asked for it), if any.
    validation: ValidationStatus | None = None
    # What could not be observed or done; any fault holds the rollout (core/hold.py).
    faults: tuple[Fault, ...] = ()
