"""What `decide` returns: the desired state the shell carries out."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from modelrollout.api import AnalysisKind

if TYPE_CHECKING:
    from modelrollout.api import AnalysisSpec, ModelDeploymentStatus


@dataclass(frozen=True)
class DesiredRevision:
    """A Deployment `<name>-<revision>` that must exist with this many replicas (0 = kept idle).

    Every observed revision not pruned is listed, so the shell scales old ones down.
    """

    revision: str
    replicas: int


@dataclass(frozen=True)
class TrafficPlan:
    """Where traffic goes.

    Canary: `canary_weight` percent to `canary_revision`, the rest to `stable_revision`; in the
    post-promotion window of the replicas router `active_revision` (the candidate) is the only
    revision the `<name>` Service selects.
    Blue/green: the `<name>` Service selects `active_revision`, `<name>-preview` selects
    `preview_revision`. `stable_revision`/`active_revision` None: nothing is promoted yet, the
    shell leaves the router alone, and the Services select `canary_revision` (the first revision,
    whose pods get traffic once Ready), if any.
    """

    stable_revision: str | None
    canary_revision: str | None = None
    canary_weight: int = 0
    active_revision: str | None = None
    preview_revision: str | None = None
    # Share of the stable's requests its model servers copy to `canary_revision` (a shadow step).
    mirror_percent: int = 0


@dataclass(frozen=True)
class AnalysisRequest:
    """An analysis run the core wants measured.

    `key` names the run (changes when a new run starts); the shell measures when
    `now >= measure_at` and passes the results back as Observation.measurements with this key.
    """

    key: str
    kind: AnalysisKind
    spec: AnalysisSpec
    canary_revision: str
    stable_revision: str | None
    started_at: datetime
    measure_at: datetime
    step_index: int | None = None


@dataclass(frozen=True)
class ValidationRequest:
    """The offline validation of `revision` must run (phase Validating).

    The shell (re)creates the validation Job when none exists for the revision or the existing one
    started before `requested_at` (a retry), and reports its result as Observation.validation.
    """

    revision: str
    requested_at: datetime


@dataclass(frozen=True)
class Event:
    """A Kubernetes event to emit on the ModelDeployment."""

    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    """The desired state after one decision."""

    status: ModelDeploymentStatus
    revisions: tuple[DesiredRevision, ...]
    prune: tuple[str, ...]
    traffic: TrafficPlan
    events: tuple[Event, ...] = ()
    requeue_after: float | None = None
    analysis_due: AnalysisRequest | None = None
    validation_due: ValidationRequest | None = None
    # The spec's revision: only its Deployment may be (re)built from the current spec; the others
    # (stable, old candidates) are only scaled to the replicas given in `revisions`.
    revision: str = ""
    # A fault holds the rollout (core/hold.py): carry out nothing but the status and events.
    hold: bool = False
