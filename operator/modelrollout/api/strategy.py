"""spec.strategy: canary steps or blue/green, and how traffic is routed."""

from __future__ import annotations

from pydantic import ConfigDict, Field, model_validator

from modelrollout.api.common import (
    ApiModel,
    DnsLabel,
    Duration,
    ObjectName,
    PathError,
    WireBool,
    WireInt,
    cel,
    exactly_one,
)

MAX_STEPS = 32
MAX_ROUTES = 16


class PauseStep(ApiModel):
    """Hold the current weight: for a duration, or until a person promotes."""

    duration: Duration | None = Field(
        default=None,
        description="How long to hold, e.g. 2m. Without it the rollout waits for `promote`.",
    )


class ShadowStep(ApiModel):
    """Mirror a share of the stable's live requests to the candidate, which answers no one.

    The stable's model server copies `percent` of its requests to the candidate and compares the
    answers (the shadowAgreement metric); mirroring goes on through the analysis steps that
    follow, until the first setWeight. The step itself lasts `duration`.
    """

    percent: WireInt = Field(
        default=10, ge=1, le=100, description="Share of the stable's requests copied, 1..100."
    )
    duration: Duration = Field(description="How long the step lasts, e.g. 5m.")


class AnalysisStepSpec(ApiModel):
    """Run spec.analysis now: `count` measurements `interval` apart; the step passes or fails."""

    metrics: list[DnsLabel] | None = Field(
        default=None,
        max_length=16,
        description="Names of spec.analysis.metrics to run; default: all of them.",
    )
    count: WireInt | None = Field(
        default=None,
        ge=1,
        le=100,
        description="Measurements in this run; default: spec.analysis.count.",
    )


class BackgroundAnalysis(ApiModel):
    """Run spec.analysis continuously while the canary takes traffic."""

    start_step: WireInt = Field(
        default=0, ge=0, le=MAX_STEPS, description="Index of the step from which analysis runs."
    )
    metrics: list[DnsLabel] | None = Field(
        default=None,
        max_length=16,
        description="Names of spec.analysis.metrics to run; default: all of them.",
    )


class CanaryStep(ApiModel):
    """One step of a canary: exactly one of setWeight, pause, analysis and shadow."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "[has(self.setWeight), has(self.pause), has(self.analysis), has(self.shadow)]"
                ".filter(x, x).size() == 1",
                "a step needs exactly one of setWeight, pause, analysis and shadow",
            ),
        )
    )

    set_weight: WireInt | None = Field(
        default=None, ge=0, le=100, description="Percent of traffic sent to the canary, 0..100."
    )
    pause: PauseStep | None = Field(
        default=None, description="Hold for a duration, or (without one) until promoted."
    )
    analysis: AnalysisStepSpec | None = Field(
        default=None, description="Run spec.analysis and continue only if it passes."
    )
    shadow: ShadowStep | None = Field(
        default=None,
        description="Mirror live requests to the candidate before it takes any (first step only).",
    )

    @model_validator(mode="after")
    def _one_action(self) -> CanaryStep:
        exactly_one(self, ("set_weight", "pause", "analysis", "shadow"), "step")
        return self


class ReplicasRouting(ApiModel):
    """Weights approximated by replica counts behind the one Service (no mesh needed)."""


class GatewayAPIRouting(ApiModel):
    """Weights on the backendRefs of a Gateway API HTTPRoute."""

    http_route: ObjectName = Field(description="Name of the HTTPRoute whose rules are managed.")
    namespace: DnsLabel | None = Field(
        default=None, description="Namespace of the HTTPRoute; default: the ModelDeployment's."
    )
    port: WireInt = Field(
        default=8080,
        ge=1,
        le=65535,
        description="Port of the <name>-stable and <name>-canary Services in the backendRefs.",
    )


class IstioRouting(ApiModel):
    """Weights on the HTTP routes of an Istio VirtualService."""

    virtual_service: ObjectName = Field(description="Name of the VirtualService.")
    routes: list[DnsLabel] = Field(
        default_factory=list,
        max_length=MAX_ROUTES,
        description="Names of its HTTP routes to manage; empty: the VirtualService's only route.",
    )


class NginxRouting(ApiModel):
    """A canary Ingress next to the stable one, with ingress-nginx canary annotations."""

    stable_ingress: ObjectName = Field(description="Name of the Ingress that serves the stable.")


class TrafficRouting(ApiModel):
    """How traffic is split: exactly one router."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "[has(self.replicas), has(self.gatewayAPI), has(self.istio), has(self.nginx)]"
                ".filter(x, x).size() == 1",
                "set exactly one of replicas, gatewayAPI, istio and nginx",
            ),
        )
    )

    replicas: ReplicasRouting | None = Field(
        default=None, description="Replica-count weights behind one Service (the default)."
    )
    gateway_api: GatewayAPIRouting | None = Field(
        default=None, alias="gatewayAPI", description="Gateway API HTTPRoute weights."
    )
    istio: IstioRouting | None = Field(default=None, description="Istio VirtualService weights.")
    nginx: NginxRouting | None = Field(default=None, description="ingress-nginx canary Ingress.")

    @model_validator(mode="after")
    def _one_router(self) -> TrafficRouting:
        exactly_one(self, ("replicas", "gateway_api", "istio", "nginx"), "trafficRouting")
        return self


def _default_routing() -> TrafficRouting:
    return TrafficRouting(replicas=ReplicasRouting())


class CanaryStrategy(ApiModel):
    """Shift traffic to the candidate in steps, judging it on the way."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "self.steps.filter(s, has(s.setWeight)).map(s, s.setWeight).isSorted()",
                "setWeight must not decrease along the steps",
                ".steps",
            ),
            (
                "!has(self.analysis) || !has(self.analysis.startStep)"
                " || self.analysis.startStep < size(self.steps)",
                "analysis.startStep must index a step",
                ".analysis.startStep",
            ),
            (
                "self.steps.all(s, !has(s.shadow)) || (has(self.steps[0].shadow)"
                " && self.steps.filter(s, has(s.shadow)).size() == 1)",
                "a shadow step must be the first step, and the only one",
                ".steps",
            ),
        )
    )

    steps: list[CanaryStep] = Field(
        min_length=1,
        max_length=MAX_STEPS,
        description="The steps, in order; after the last one the candidate is promoted.",
    )
    traffic_routing: TrafficRouting = Field(
        default_factory=_default_routing,
        description="The traffic router; default: replicas.",
    )
    analysis: BackgroundAnalysis | None = Field(
        default=None,
        description="Background analysis while the canary takes traffic (it stops when the "
        "post-promotion analysis starts).",
    )
    post_promotion_analysis: AnalysisStepSpec | None = Field(
        default=None,
        description="A post-promotion window: after the last step the candidate takes all "
        "traffic while the previous stable stays up at spec.replicas, and this analysis runs on "
        "the candidate. Passed: the candidate is promoted and the old stable scaled down. Failed: "
        "all traffic returns to the still-running stable at once (phase Degraded, reason "
        "AnalysisFailed). `promote` during the window skips it; `abort` rolls back. The stable "
        "gets no traffic in the window, so metrics compared with it (compareToStable, judge, "
        "predictionDrift) have no data there: they follow onNoData and never count as success. "
        "Name absolute metrics (min/max) here.",
    )

    @model_validator(mode="after")
    def _weights(self) -> CanaryStrategy:
        last = -1
        for i, step in enumerate(self.steps):
            if step.set_weight is None:
                continue
            if step.set_weight < last:
                raise PathError(
                    ("steps", i, "setWeight"),
                    f"setWeight must not decrease along the steps ({step.set_weight} < {last})",
                )
            last = step.set_weight
        if self.analysis is not None and self.analysis.start_step >= len(self.steps):
            raise PathError(("analysis", "startStep"), "analysis.startStep must index a step")
        for i, step in enumerate(self.steps):
            if step.shadow is not None and i > 0:
                raise PathError(
                    ("steps", i, "shadow"), "a shadow step must be the first step, and the only one"
                )
        return self


class BlueGreenStrategy(ApiModel):
    """Run the candidate beside the stable (preview), then switch all traffic at once."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            (
                "!has(self.autoPromotionSeconds) || self.autoPromotion",
                "autoPromotionSeconds requires autoPromotion: true",
                ".autoPromotionSeconds",
            ),
        )
    )

    auto_promotion: WireBool = Field(
        default=True,
        description="Switch once the preview is ready and pre-promotion analysis passed; "
        "false: wait for `promote`.",
    )
    auto_promotion_seconds: WireInt | None = Field(
        default=None,
        ge=0,
        le=86400,
        description="Wait this long after the preview is ready before switching automatically.",
    )
    preview_replicas: WireInt | None = Field(
        default=None, ge=0, le=1000, description="Replicas of the preview; default: spec.replicas."
    )
    shadow: ShadowStep | None = Field(
        default=None,
        description=(
            "Before the switch: once the preview is ready, mirror this share of the stable's "
            "requests to it for `duration` (the stable's servers compare the answers, "
            "shadowAgreement), then run the pre-promotion analysis; mirroring goes on until "
            "the switch."
        ),
    )
    pre_promotion_analysis: AnalysisStepSpec | None = Field(
        default=None, description="Analysis of the preview before the switch."
    )
    post_promotion_analysis: AnalysisStepSpec | None = Field(
        default=None,
        description="Analysis after the switch; failure switches back. The stable gets no "
        "traffic then: metrics compared with it (compareToStable, judge, predictionDrift) follow "
        "onNoData and never count as success.",
    )
    scale_down_delay_seconds: WireInt = Field(
        default=30,
        ge=0,
        le=86400,
        description="Keep the old revision up this long after the switch (in-flight requests).",
    )
    traffic_routing: TrafficRouting = Field(
        default_factory=_default_routing,
        description="The traffic router used for the switch; default: replicas.",
    )

    @model_validator(mode="after")
    def _auto(self) -> BlueGreenStrategy:
        if self.auto_promotion_seconds is not None and not self.auto_promotion:
            raise PathError(
                ("autoPromotionSeconds",), "autoPromotionSeconds requires autoPromotion: true"
            )
        return self


class Strategy(ApiModel):
    """Exactly one of canary and blueGreen."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            ("has(self.canary) != has(self.blueGreen)", "set exactly one of canary and blueGreen"),
        )
    )

    canary: CanaryStrategy | None = Field(default=None, description="Progressive steps.")
    blue_green: BlueGreenStrategy | None = Field(
        default=None, description="Preview, then switch all traffic at once."
    )

    @model_validator(mode="after")
    def _one(self) -> Strategy:
        exactly_one(self, ("canary", "blue_green"), "strategy")
        return self
