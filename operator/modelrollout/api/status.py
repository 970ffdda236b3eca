"""ModelDeploymentStatus: what the operator observed and decided; also the control requests.

Control requests (promote, promoteFull, abort, retry) are request tokens: any non-empty string
that differs from the last one handled (e.g. a timestamp, a UUID, or the object's
resourceVersion in an Argo CD action). The operator acts once per new token and records it in
`handledRequests`, so re-sending the same patch is harmless (idempotent), and an old token never
acts on a later rollout: when a rollout starts, pending tokens are recorded as handled.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import Field

from modelrollout.api.common import ApiModel
from modelrollout.api.model import ModelSpec
from modelrollout.api.monitoring import MonitoringState

MAX_CONDITIONS = 16
MAX_METRIC_RESULTS = 64
MAX_HISTORY = 20
MAX_MESSAGE = 1024


class Phase(StrEnum):
    """Where the ModelDeployment is, as Argo CD and `kubectl get md` show it."""

    PENDING = "Pending"
    VALIDATING = "Validating"
    PROGRESSING = "Progressing"
    PAUSED = "Paused"
    HEALTHY = "Healthy"
    DEGRADED = "Degraded"


class ConditionStatus(StrEnum):
    """Kubernetes condition status."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Verdict(StrEnum):
    """Outcome of one measurement (or of a whole analysis run)."""

    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class AnalysisRunPhase(StrEnum):
    """State of the current analysis run."""

    RUNNING = "Running"
    SUCCESSFUL = "Successful"
    FAILED = "Failed"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


class AnalysisKind(StrEnum):
    """Which run an analysis is (status.analysis.kind)."""

    STEP = "step"
    BACKGROUND = "background"
    PRE_PROMOTION = "prePromotion"
    POST_PROMOTION = "postPromotion"
    MONITORING = "monitoring"  # a check of the serving revision (status.monitoring)


def _one_of(values: list[str]) -> str:
    return f"{', '.join(values[:-1])} or {values[-1]}."


class PauseReason(StrEnum):
    """Why a rollout is paused (status.pauseReason); Argo CD's health check reads it.

    Only PAUSE_STEP can end by itself (a pause step with a duration); every other reason waits
    for a person, so the health check reports it as Suspended.
    """

    PAUSE_STEP = "PauseStep"
    AWAITING_PROMOTION = "AwaitingPromotion"
    ANALYSIS_UNAVAILABLE = "AnalysisUnavailable"
    ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
    ANALYSIS_ERROR = "AnalysisError"
    SPEC_PAUSED = "SpecPaused"
    FAULT = "Fault"
    WEIGHT_NOT_CONFIRMED = "WeightNotConfirmed"


PAUSE_REASON_MEANINGS = {
    PauseReason.PAUSE_STEP: "a canary pause step (timed, or until promoted)",
    PauseReason.AWAITING_PROMOTION: "blue/green preview ready, waiting for promote",
    PauseReason.ANALYSIS_UNAVAILABLE: "an analysis is due but cannot run (no spec.analysis "
    "or no Prometheus)",
    PauseReason.ANALYSIS_INCONCLUSIVE: "past inconclusiveLimit: promote, abort or retry",
    PauseReason.ANALYSIS_ERROR: "past consecutiveErrorLimit: resumes when measuring works again",
    PauseReason.SPEC_PAUSED: "spec.paused is true",
    PauseReason.WEIGHT_NOT_CONFIRMED: "the router has not read back a setWeight step's weight "
    "within progressDeadlineSeconds; goes on by itself once it does",
    PauseReason.FAULT: "the operator could not observe or act (the Progressing condition and a "
    "Warning event name the object and the cause); resumes by itself once the cause is gone",
}


def _pause_reason_description() -> str:
    meanings = "; ".join(
        f"{reason.value}: {PAUSE_REASON_MEANINGS[reason]}" for reason in PauseReason
    )
    return f"Why paused. {meanings}."


class ValidationResult(StrEnum):
    """Outcome of the offline validation gate."""

    RUNNING = "Running"
    PASSED = "Passed"
    FAILED = "Failed"
    ERROR = "Error"


class Outcome(StrEnum):
    """How a rollout ended."""

    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"
    ABORTED = "Aborted"


class Condition(ApiModel):
    """A Kubernetes-style condition (Ready, Progressing, Degraded, ...)."""

    type: str = Field(min_length=1, max_length=64, description="Condition type, CamelCase.")
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        default="", max_length=128, description="Why, as one CamelCase word (machine-readable)."
    )
    message: str = Field(default="", max_length=MAX_MESSAGE, description="Why, for humans.")
    last_transition_time: datetime | None = Field(
        default=None, description="When the status last changed."
    )
    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation this condition was computed from."
    )


class MetricResult(ApiModel):
    """The latest measurement of one metric."""

    metric: str = Field(max_length=63, description="Name of the metric in spec.analysis.")
    value: float | None = Field(default=None, description="Measured value (canary).")
    stable_value: float | None = Field(
        default=None, description="The stable's value, when compared with it."
    )
    bound: str | None = Field(
        default=None, max_length=256, description="The criterion, e.g. '<= 0.01' or 'ratio <= 1.5'."
    )
    verdict: Verdict = Field(description="Successful, Failed, Inconclusive or Error.")
    measured_at: datetime | None = Field(default=None, description="When it was measured.")
    message: str = Field(default="", max_length=MAX_MESSAGE, description="Details, e.g. no data.")


class AnalysisStatus(ApiModel):
    """The current (or last) analysis run: counters and the latest result of each metric."""

    phase: AnalysisRunPhase = Field(
        default=AnalysisRunPhase.RUNNING, description="State of the run."
    )
    revision: str | None = Field(
        default=None, max_length=63, description="The canary revision analysed."
    )
    step_index: int | None = Field(
        default=None, ge=0, description="The step that started the run (canary analysis step)."
    )
    kind: str | None = Field(
        default=None,
        max_length=32,
        description=_one_of([kind.value for kind in AnalysisKind]),
    )
    started_at: datetime | None = Field(default=None, description="When the run started.")
    next_measurement_at: datetime | None = Field(
        default=None, description="When the next measurement is due."
    )
    measurements: int = Field(default=0, ge=0, description="Measurements taken in this run.")
    successful: int = Field(default=0, ge=0, description="Successful measurements.")
    failed: int = Field(default=0, ge=0, description="Failed measurements.")
    inconclusive: int = Field(default=0, ge=0, description="Inconclusive measurements.")
    errors: int = Field(default=0, ge=0, description="Error measurements.")
    consecutive_errors: int = Field(default=0, ge=0, description="Errors in a row, now.")
    results: list[MetricResult] = Field(
        default_factory=list,
        max_length=MAX_METRIC_RESULTS,
        description="The latest result of each metric.",
    )
    message: str = Field(default="", max_length=MAX_MESSAGE, description="Summary of the run.")


class ValidationMetricResult(ApiModel):
    """One holdout metric of the candidate, with the stable's for comparison."""

    name: str = Field(max_length=64, description="The metric name.")
    value: float | None = Field(default=None, description="The candidate's value.")
    stable_value: float | None = Field(default=None, description="The stable's value.")
    passed: bool = Field(description="Whether every threshold on it held.")
    message: str = Field(default="", max_length=MAX_MESSAGE, description="Details.")


class ValidationStatus(ApiModel):
    """Result of the offline validation gate for one revision."""

    revision: str = Field(max_length=63, description="The candidate revision validated.")
    result: ValidationResult = Field(description="Running, Passed, Failed or Error.")
    metrics: list[ValidationMetricResult] = Field(
        default_factory=list, max_length=16, description="Per-metric results."
    )
    rows: int | None = Field(default=None, ge=0, description="Rows evaluated.")
    message: str = Field(default="", max_length=MAX_MESSAGE, description="Summary or error.")
    started_at: datetime | None = Field(default=None, description="When it started.")
    completed_at: datetime | None = Field(default=None, description="When it ended.")


class HistoryEntry(ApiModel):
    """One finished rollout."""

    revision: str = Field(max_length=63, description="The candidate revision.")
    model_version: str = Field(max_length=64, description="spec.model.version of it.")
    outcome: Outcome = Field(description="Promoted, RolledBack or Aborted.")
    at: datetime = Field(description="When it ended.")
    reason: str = Field(default="", max_length=MAX_MESSAGE, description="Why it ended so.")
    model: ModelSpec | None = Field(
        default=None,
        description="spec.model of this revision: what `undo` writes back into the spec.",
    )


class HandledRequests(ApiModel):
    """The last control-request tokens the operator acted on (written by the operator)."""

    promote: str | None = Field(default=None, max_length=64, description="Last promote token.")
    promote_full: str | None = Field(
        default=None, max_length=64, description="Last promoteFull token."
    )
    abort: str | None = Field(default=None, max_length=64, description="Last abort token.")
    retry: str | None = Field(default=None, max_length=64, description="Last retry token.")


_TOKEN_DOC = (
    "Request token (any new string, e.g. a timestamp): the operator acts once per new value."
)


class MonitoringStatus(ApiModel):
    """The checks of the serving revision after promotion (spec.monitoring)."""

    revision: str = Field(max_length=63, description="The revision checked.")
    state: MonitoringState = Field(
        default=MonitoringState.PENDING, description="Pending, Healthy, Breached or NoData."
    )
    message: str = Field(default="", max_length=MAX_MESSAGE, description="Why, for people.")
    since: datetime | None = Field(default=None, description="When the state last changed.")
    next_check_at: datetime | None = Field(default=None, description="When the next check is due.")
    failures_in_a_row: int = Field(default=0, ge=0, description="Failed checks in a row.")
    breaches: int = Field(default=0, ge=0, description="Breaches of this revision so far.")
    check: AnalysisStatus | None = Field(
        default=None, description="The latest check: each metric's result."
    )


class ModelDeploymentStatus(ApiModel):
    """Observed state of the rollout. Everything a restarted operator needs lives here."""

    observed_generation: int | None = Field(
        default=None, ge=0, description="metadata.generation the status describes."
    )
    phase: Phase | None = Field(
        default=None,
        description="Pending, Validating, Progressing, Paused, Healthy or Degraded.",
    )
    message: str = Field(default="", max_length=MAX_MESSAGE, description="What is going on.")
    stable_revision: str | None = Field(
        default=None, max_length=63, description="Revision that serves (most) traffic."
    )
    stable_model_version: str | None = Field(
        default=None, max_length=64, description="spec.model.version of the stable revision."
    )
    canary_revision: str | None = Field(
        default=None, max_length=63, description="Revision being rolled out, if any."
    )
    canary_model_version: str | None = Field(
        default=None, max_length=64, description="spec.model.version of the canary revision."
    )
    current_step_index: int | None = Field(
        default=None,
        ge=0,
        le=64,
        description="Canary: index of the step in progress (len(steps) = promoting, "
        "len(steps)+1 = post-promotion analysis). "
        "Blue/green: 0 preview, 1 awaiting promotion, 2 switching, 3 post-promotion analysis.",
    )
    aborted_revision: str | None = Field(
        default=None,
        max_length=63,
        description="Candidate that was aborted or rolled back: it gets no traffic until the "
        "spec names another revision or `retry` is requested.",
    )
    canary_weight: int = Field(
        default=0, ge=0, le=100, description="Percent of traffic on the canary now."
    )
    step_started_at: datetime | None = Field(
        default=None, description="When the current step started."
    )
    pause_started_at: datetime | None = Field(
        default=None, description="When the current pause started (timed or manual)."
    )
    # A string, not the enum: a status written by another version still parses.
    pause_reason: str | None = Field(
        default=None, max_length=64, description=_pause_reason_description()
    )
    rollout_started_at: datetime | None = Field(
        default=None, description="When the current rollout began."
    )
    promoted_at: datetime | None = Field(
        default=None, description="When the stable revision was last promoted."
    )
    previous_stable_revision: str | None = Field(
        default=None, max_length=63, description="Stable before the last promotion (for undo)."
    )
    ready_replicas: int | None = Field(
        default=None, ge=0, description="Ready pods of the stable revision."
    )
    canary_ready_replicas: int | None = Field(
        default=None, ge=0, description="Ready pods of the canary revision."
    )
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=MAX_CONDITIONS,
        description="Ready, Progressing, Degraded, ... (Kubernetes conventions).",
    )
    analysis: AnalysisStatus | None = Field(
        default=None, description="The current or last analysis run."
    )
    validation: ValidationStatus | None = Field(
        default=None, description="The offline validation of the canary revision."
    )
    monitoring: MonitoringStatus | None = Field(
        default=None, description="Checks of the serving revision after promotion."
    )
    history: list[HistoryEntry] = Field(
        default_factory=list,
        max_length=MAX_HISTORY,
        description="Finished rollouts, newest first (bounded).",
    )
    promote: str | None = Field(
        default=None, max_length=64, description=f"Advance past the current step. {_TOKEN_DOC}"
    )
    promote_full: str | None = Field(
        default=None,
        max_length=64,
        description=f"Skip remaining steps and analysis, promote now. {_TOKEN_DOC}",
    )
    abort: str | None = Field(
        default=None,
        max_length=64,
        description=f"Roll back to the stable now (phase Degraded). {_TOKEN_DOC}",
    )
    retry: str | None = Field(
        default=None,
        max_length=64,
        description=f"Start the spec's rollout again after a rollback or abort. {_TOKEN_DOC}",
    )
    handled_requests: HandledRequests = Field(
        default_factory=HandledRequests,
        description="Tokens of the control requests already acted on (operator-owned).",
    )
