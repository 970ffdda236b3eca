"""ModelDeploymentSpec: the desired state, owned by Git."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from modelrollout.api.analysis import AnalysisSpec
from modelrollout.api.common import ApiModel, Duration, PathError, WireBool, WireInt, cel
from modelrollout.api.holdout_gate import ValidationSpec
from modelrollout.api.model import ModelSpec
from modelrollout.api.monitoring import MonitoringSpec
from modelrollout.api.strategy import AnalysisStepSpec, BackgroundAnalysis, Strategy

_CANARY_USES_ANALYSIS = (
    "(self.strategy.canary.steps.exists(s, has(s.analysis)) || has(self.strategy.canary.analysis)"
    " || has(self.strategy.canary.postPromotionAnalysis))"
)
_BLUEGREEN_USES_ANALYSIS = (
    "(has(self.strategy.blueGreen.prePromotionAnalysis)"
    " || has(self.strategy.blueGreen.postPromotionAnalysis))"
)


def _known(names: str) -> str:
    """CEL: every name in the list `names` is a metric of spec.analysis."""
    return f"{names}.all(n, self.analysis.metrics.exists(m, m.name == n))"


_STEP_METRICS_EXIST = (
    "self.strategy.canary.steps.all(s, !has(s.analysis) || !has(s.analysis.metrics)"
    f" || {_known('s.analysis.metrics')})"
)


def _run_metrics_exist(run: str) -> str:
    """CEL: the analysis run at `run` (a path under self) names only known metrics."""
    return f"(!has({run}) || !has({run}.metrics) || {_known(f'{run}.metrics')})"


_BACKGROUND_METRICS_EXIST = _run_metrics_exist("self.strategy.canary.analysis")
_CANARY_POST_METRICS_EXIST = _run_metrics_exist("self.strategy.canary.postPromotionAnalysis")
_BLUEGREEN_METRICS_EXIST = " && ".join(
    _run_metrics_exist(f"self.strategy.blueGreen.{run}")
    for run in ("prePromotionAnalysis", "postPromotionAnalysis")
)


class ModelDeploymentSpec(ApiModel):
    """A model served on Kubernetes and rolled out progressively when it changes."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                f"!has(self.strategy.canary) || has(self.analysis) || !{_CANARY_USES_ANALYSIS}",
                "canary analysis steps, background and post-promotion analysis need spec.analysis",
                ".analysis",
            ),
            (
                f"!has(self.strategy.blueGreen) || has(self.analysis)"
                f" || !{_BLUEGREEN_USES_ANALYSIS}",
                "blueGreen pre/post-promotion analysis needs spec.analysis",
                ".analysis",
            ),
            (
                f"!has(self.strategy.canary) || !has(self.analysis) || {_STEP_METRICS_EXIST}",
                "analysis steps may name only metrics defined in spec.analysis.metrics",
                ".strategy.canary.steps",
            ),
            (
                "!has(self.strategy.canary) || !has(self.analysis)"
                f" || ({_BACKGROUND_METRICS_EXIST})",
                "background analysis may name only metrics defined in spec.analysis.metrics",
                ".strategy.canary.analysis.metrics",
            ),
            (
                "!has(self.strategy.canary) || !has(self.analysis)"
                f" || {_CANARY_POST_METRICS_EXIST}",
                "post-promotion analysis may name only metrics defined in spec.analysis.metrics",
                ".strategy.canary.postPromotionAnalysis.metrics",
            ),
            (
                "!has(self.strategy.blueGreen) || !has(self.analysis)"
                f" || ({_BLUEGREEN_METRICS_EXIST})",
                "blueGreen analysis may name only metrics defined in spec.analysis.metrics",
                ".strategy.blueGreen",
            ),
            (
                "!has(self.monitoring) || has(self.monitoring.prometheus) || has(self.analysis)",
                "required without spec.analysis (its prometheus is the default)",
                ".monitoring.prometheus",
            ),
        )
    )

    model: ModelSpec = Field(description="The model version to serve.")
    replicas: WireInt = Field(
        default=1, ge=0, le=1000, description="Replicas of the stable revision."
    )
    template: dict[str, Any] | None = Field(
        default=None,
        description=(
            "Pod template overrides (a PodTemplateSpec fragment merged over the default that "
            "runs modelrollout's model server: resources, nodeSelector, env, image, ...)."
        ),
    )
    strategy: Strategy = Field(description="How a new model version is rolled out.")
    analysis: AnalysisSpec | None = Field(
        default=None, description="How the candidate is judged from Prometheus metrics."
    )
    validation: ValidationSpec | None = Field(
        default=None, description="Offline gate on holdout data before any live traffic."
    )
    monitoring: MonitoringSpec | None = Field(
        default=None,
        description="Checks of the serving revision after promotion, with alert or rollback.",
    )
    progress_deadline_seconds: WireInt = Field(
        default=600,
        ge=10,
        le=86400,
        description="A step that makes no progress (pods not ready) for this long fails.",
    )
    revision_history_limit: WireInt = Field(
        default=3,
        ge=0,
        le=20,
        description="Old revisions kept (scaled to zero) for fast undo; also the history length.",
    )
    rollback_window: Duration | None = Field(
        default=None,
        description="After promotion, keep the previous revision warm this long for instant undo.",
    )
    paused: WireBool = Field(
        default=False, description="Freeze the rollout where it is (traffic stays as it is)."
    )

    @model_validator(mode="after")
    def _monitoring_source(self) -> ModelDeploymentSpec:
        monitoring = self.monitoring
        if monitoring is not None and monitoring.prometheus is None and self.analysis is None:
            raise PathError(
                ("monitoring", "prometheus"),
                "required without spec.analysis (its prometheus is the default)",
            )
        return self

    @model_validator(mode="after")
    def _analysis_references(self) -> ModelDeploymentSpec:
        uses = _analysis_runs(self.strategy)
        if not uses:
            return self
        if self.analysis is None:
            raise PathError(
                ("analysis",),
                f"required by {'.'.join(str(p) for p in uses[0][0])}: define spec.analysis",
            )
        names = {m.name for m in self.analysis.metrics}
        for path, run in uses:
            for j, name in enumerate(run.metrics or []):
                if name not in names:
                    raise PathError(
                        (*path, "metrics", j),
                        f"unknown metric {name!r}: not in spec.analysis.metrics",
                    )
        return self


def _analysis_runs(
    strategy: Strategy,
) -> list[tuple[tuple[str | int, ...], AnalysisStepSpec | BackgroundAnalysis]]:
    """Every analysis run the strategy declares, with its path (wire names)."""
    runs: list[tuple[tuple[str | int, ...], AnalysisStepSpec | BackgroundAnalysis | None]] = []
    canary = strategy.canary
    if canary is not None:
        for i, step in enumerate(canary.steps):
            runs.append((("strategy", "canary", "steps", i, "analysis"), step.analysis))
        runs.append((("strategy", "canary", "analysis"), canary.analysis))
        runs.append(
            (("strategy", "canary", "postPromotionAnalysis"), canary.post_promotion_analysis)
        )
    blue_green = strategy.blue_green
    if blue_green is not None:
        runs.append(
            (("strategy", "blueGreen", "prePromotionAnalysis"), blue_green.pre_promotion_analysis)
        )
        runs.append(
            (("strategy", "blueGreen", "postPromotionAnalysis"), blue_green.post_promotion_analysis)
        )
    return [(path, run) for path, run in runs if run is not None]
