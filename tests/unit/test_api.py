"""Unit tests of modelrollout.api: defaults, every validation rule, wire form, error paths."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel, ValidationError

from modelrollout.api import (
    AnalysisSpec,
    BlueGreenStrategy,
    BuiltinMetric,
    CanaryStep,
    CanaryStrategy,
    CompareToStable,
    DataPolicy,
    HistoryEntry,
    JudgeDirection,
    MetricSpec,
    ModelDeployment,
    ModelDeploymentSpec,
    ModelDeploymentStatus,
    ModelFormat,
    ModelSpec,
    Outcome,
    PrometheusAuth,
    PrometheusTLS,
    Strategy,
    TrafficRouting,
    ValidationMetric,
    ValidationMetricName,
    ValidationSpec,
    ValueRange,
    describe,
    field_issues,
    parse_duration,
)

EXAMPLES = sorted((Path(__file__).parents[2] / "manifests" / "examples").glob("*.yaml"))
MODEL = {"name": "m", "version": "1", "uri": "s3://b/m.skops"}
PROM = {"address": "http://prometheus:9090"}
METRIC = {"name": "errors", "builtin": "errorRate", "max": 0.01}


def minimal_spec(**extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": dict(MODEL),
        "strategy": {"canary": {"steps": [{"setWeight": 50}]}},
    }
    spec.update(extra)
    return spec


def paths(model: type[BaseModel], data: Any) -> list[str]:
    with pytest.raises(ValidationError) as info:
        model.model_validate(data)
    return [issue.path for issue in field_issues(info.value)]


# --- durations --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("30s", 30), ("2m", 120), ("1h30m", 5400), ("1.5h", 5400), ("45", 45), (7, 7)],
)
def test_parse_duration(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "2 minutes", "-5s", "1d", "s", "1h-30m", True])
def test_parse_duration_refuses(text: Any) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


# --- defaults ---------------------------------------------------------------------------------


def test_spec_defaults() -> None:
    spec = ModelDeploymentSpec.model_validate(minimal_spec())
    assert spec.replicas == 1
    assert spec.model.format is ModelFormat.SKOPS
    assert spec.model.allow_pickle is False
    assert spec.model.trusted_types == []
    assert spec.progress_deadline_seconds == 600
    assert spec.revision_history_limit == 3
    assert spec.rollback_window is None
    assert spec.paused is False
    assert spec.analysis is None and spec.validation is None and spec.template is None
    canary = spec.strategy.canary
    assert canary is not None and spec.strategy.blue_green is None
    routing = canary.traffic_routing
    assert routing.replicas is not None
    assert (routing.gateway_api, routing.istio, routing.nginx) == (None, None, None)


def test_analysis_defaults() -> None:
    analysis = AnalysisSpec.model_validate({"prometheus": PROM, "metrics": [METRIC]})
    assert analysis.interval == "30s" and analysis.count == 3
    assert (analysis.failure_limit, analysis.inconclusive_limit) == (0, 0)
    assert analysis.consecutive_error_limit == 4
    assert analysis.on_no_data is DataPolicy.PAUSE and analysis.on_error is DataPolicy.PAUSE
    assert analysis.min_samples == 10
    assert analysis.prometheus.timeout == "10s"
    assert analysis.metrics[0].builtin is BuiltinMetric.ERROR_RATE


def test_judge_and_drift_defaults() -> None:
    metric = MetricSpec.model_validate(
        {"name": "drift", "builtin": "predictionDrift", "judge": {}, "drift": {}}
    )
    assert metric.judge is not None and metric.drift is not None
    assert metric.judge.type == "mannWhitney"
    assert metric.judge.direction is JudgeDirection.INCREASE
    assert metric.judge.confidence == 0.98
    assert (metric.judge.allowed_increase, metric.judge.allowed_decrease) == (1.0, 1.0)
    assert metric.drift.method.value == "psi" and metric.drift.bins == 10


def test_bluegreen_defaults() -> None:
    blue_green = BlueGreenStrategy.model_validate({})
    assert blue_green.auto_promotion is True
    assert blue_green.auto_promotion_seconds is None
    assert blue_green.scale_down_delay_seconds == 30
    assert blue_green.preview_replicas is None
    assert blue_green.traffic_routing.replicas is not None


def test_status_defaults_and_tokens() -> None:
    status = ModelDeploymentStatus()
    assert status.phase is None and status.canary_weight == 0
    assert status.conditions == [] and status.history == []
    assert status.handled_requests.promote is None
    wire = ModelDeploymentStatus.model_validate(
        {"promote": "t1", "promoteFull": "t2", "handledRequests": {"promote": "t0"}}
    ).to_wire()
    assert wire["promote"] == "t1" and wire["promoteFull"] == "t2"
    assert wire["handledRequests"] == {"promote": "t0"}


def test_validation_metric_direction() -> None:
    assert ValidationMetric(name=ValidationMetricName.F1, min=0.5).higher_is_better()
    assert not ValidationMetric(name=ValidationMetricName.LOG_LOSS, max=1).higher_is_better()
    explicit = ValidationMetric(name=ValidationMetricName.R2, min=0, greater_is_better=False)
    assert not explicit.higher_is_better()


# --- every rule: accepted and refused, with the field path ------------------------------------

RULES: list[tuple[str, type[BaseModel], dict[str, Any], dict[str, Any], str]] = [
    (
        "joblib needs allowPickle",
        ModelSpec,
        {**MODEL, "format": "joblib", "allowPickle": True},
        {**MODEL, "format": "joblib"},
        "allowPickle",
    ),
    (
        "sha256 is hex",
        ModelSpec,
        {**MODEL, "sha256": "a" * 64},
        {**MODEL, "sha256": "A" * 64},
        "sha256",
    ),
    ("uri has a scheme", ModelSpec, MODEL, {**MODEL, "uri": "models/m.skops"}, "uri"),
    (
        "one strategy (none)",
        Strategy,
        {"blueGreen": {}},
        {},
        "",
    ),
    (
        "one strategy (two)",
        Strategy,
        {"canary": {"steps": [{"setWeight": 1}]}},
        {"canary": {"steps": [{"setWeight": 1}]}, "blueGreen": {}},
        "blueGreen",
    ),
    ("step: one action (two)", CanaryStep, {"pause": {}}, {"pause": {}, "setWeight": 5}, "pause"),
    ("step: one action (none)", CanaryStep, {"analysis": {}}, {}, ""),
    ("setWeight <= 100", CanaryStep, {"setWeight": 100}, {"setWeight": 101}, "setWeight"),
    ("setWeight >= 0", CanaryStep, {"setWeight": 0}, {"setWeight": -1}, "setWeight"),
    (
        "pause duration well formed",
        CanaryStep,
        {"pause": {"duration": "1h30m"}},
        {"pause": {"duration": "90 minutes"}},
        "pause.duration",
    ),
    (
        "setWeight non-decreasing",
        CanaryStrategy,
        {"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 10}, {"setWeight": 20}]},
        {"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 20}, {"setWeight": 15}]},
        "steps[3].setWeight",
    ),
    (
        "background analysis starts at a step",
        CanaryStrategy,
        {"steps": [{"setWeight": 10}, {"setWeight": 20}], "analysis": {"startStep": 1}},
        {"steps": [{"setWeight": 10}, {"setWeight": 20}], "analysis": {"startStep": 2}},
        "analysis.startStep",
    ),
    (
        "one router",
        TrafficRouting,
        {"istio": {"virtualService": "vs"}},
        {"istio": {"virtualService": "vs"}, "nginx": {"stableIngress": "ing"}},
        "nginx",
    ),
    ("a router at all", TrafficRouting, {"replicas": {}}, {}, ""),
    (
        "gatewayAPI needs httpRoute",
        TrafficRouting,
        {"gatewayAPI": {"httpRoute": "r", "namespace": "gw"}},
        {"gatewayAPI": {"namespace": "gw"}},
        "gatewayAPI.httpRoute",
    ),
    (
        "istio needs virtualService",
        TrafficRouting,
        {"istio": {"virtualService": "vs", "routes": ["primary"]}},
        {"istio": {"routes": ["primary"]}},
        "istio.virtualService",
    ),
    (
        "nginx needs stableIngress",
        TrafficRouting,
        {"nginx": {"stableIngress": "ing"}},
        {"nginx": {}},
        "nginx.stableIngress",
    ),
    (
        "autoPromotionSeconds needs autoPromotion",
        BlueGreenStrategy,
        {"autoPromotion": True, "autoPromotionSeconds": 5},
        {"autoPromotion": False, "autoPromotionSeconds": 5},
        "autoPromotionSeconds",
    ),
    ("builtin xor query (both)", MetricSpec, METRIC, {**METRIC, "query": "up"}, "query"),
    (
        "builtin xor query (none)",
        MetricSpec,
        {"name": "q", "query": "up", "min": 1},
        {"name": "q", "min": 1},
        "",
    ),
    ("min <= max", MetricSpec, {**METRIC, "min": 0.01}, {**METRIC, "min": 0.02}, "min"),
    (
        "a criterion",
        MetricSpec,
        {"name": "e", "builtin": "errorRate", "compareToStable": {"maxRatio": 2}},
        {"name": "e", "builtin": "errorRate"},
        "",
    ),
    (
        "drift only with predictionDrift",
        MetricSpec,
        {
            "name": "d",
            "builtin": "predictionDrift",
            "max": 0.2,
            "drift": {"method": "jensenShannon"},
        },
        {**METRIC, "drift": {}},
        "drift",
    ),
    ("metric name is a DNS label", MetricSpec, METRIC, {**METRIC, "name": "Errors"}, "name"),
    (
        "judge confidence < 1",
        MetricSpec,
        {**METRIC, "judge": {"confidence": 0.9}},
        {**METRIC, "judge": {"confidence": 1.0}},
        "judge.confidence",
    ),
    (
        "judge allowedIncrease >= 1",
        MetricSpec,
        {**METRIC, "judge": {"allowedIncrease": 1.2}},
        {**METRIC, "judge": {"allowedIncrease": 0.9}},
        "judge.allowedIncrease",
    ),
    ("ratio bounds set", CompareToStable, {"minRatio": 0.5}, {}, ""),
    (
        "minRatio <= maxRatio",
        CompareToStable,
        {"minRatio": 1, "maxRatio": 1},
        {"minRatio": 2, "maxRatio": 1},
        "minRatio",
    ),
    (
        "metric names unique",
        AnalysisSpec,
        {"prometheus": PROM, "metrics": [METRIC, {**METRIC, "name": "other"}]},
        {"prometheus": PROM, "metrics": [METRIC, METRIC]},
        "metrics[1].name",
    ),
    (
        "metrics not empty",
        AnalysisSpec,
        {"prometheus": PROM, "metrics": [METRIC]},
        {"prometheus": PROM, "metrics": []},
        "metrics",
    ),
    (
        "interval well formed",
        AnalysisSpec,
        {"prometheus": PROM, "metrics": [METRIC], "interval": "500ms"},
        {"prometheus": PROM, "metrics": [METRIC], "interval": "30 s"},
        "interval",
    ),
    (
        "onNoData enum",
        AnalysisSpec,
        {"prometheus": PROM, "metrics": [METRIC], "onNoData": "ignore"},
        {"prometheus": PROM, "metrics": [METRIC], "onNoData": "skip"},
        "onNoData",
    ),
    (
        "auth: one kind",
        PrometheusAuth,
        {"basicAuth": {"secretName": "s"}},
        {"basicAuth": {"secretName": "s"}, "bearerTokenSecret": {"name": "t", "key": "k"}},
        "basicAuth",
    ),
    (
        "tls: insecure xor CA",
        PrometheusTLS,
        {"caSecret": {"name": "ca", "key": "ca.crt"}},
        {"caSecret": {"name": "ca", "key": "ca.crt"}, "insecureSkipVerify": True},
        "insecureSkipVerify",
    ),
    (
        "validation threshold set",
        ValidationMetric,
        {"name": "f1", "minRelativeChange": 0.0},
        {"name": "f1"},
        "",
    ),
    (
        "validation metric name enum",
        ValidationMetric,
        {"name": "roc_auc", "min": 0.7},
        {"name": "auc", "min": 0.7},
        "name",
    ),
    ("value range min <= max", ValueRange, {"min": 1, "max": 1}, {"min": 2, "max": 1}, "min"),
    (
        "validation metrics unique",
        ValidationSpec,
        {"dataset": {"uri": "file:///d.csv"}, "target": "y", "metrics": [{"name": "f1", "min": 0}]},
        {
            "dataset": {"uri": "file:///d.csv"},
            "target": "y",
            "metrics": [{"name": "f1", "min": 0}, {"name": "f1", "max": 1}],
        },
        "metrics[1].name",
    ),
    (
        "missing fraction in 0..1",
        ValidationSpec,
        {
            "dataset": {"uri": "file:///d.csv"},
            "target": "y",
            "dataChecks": {"maxMissingFraction": 1},
        },
        {
            "dataset": {"uri": "file:///d.csv"},
            "target": "y",
            "dataChecks": {"maxMissingFraction": 2},
        },
        "dataChecks.maxMissingFraction",
    ),
    (
        "analysis steps need spec.analysis",
        ModelDeploymentSpec,
        minimal_spec(
            strategy={"canary": {"steps": [{"analysis": {}}]}},
            analysis={"prometheus": PROM, "metrics": [METRIC]},
        ),
        minimal_spec(strategy={"canary": {"steps": [{"analysis": {}}]}}),
        "analysis",
    ),
    (
        "pre-promotion analysis needs spec.analysis",
        ModelDeploymentSpec,
        minimal_spec(
            strategy={"blueGreen": {"prePromotionAnalysis": {}}},
            analysis={"prometheus": PROM, "metrics": [METRIC]},
        ),
        minimal_spec(strategy={"blueGreen": {"prePromotionAnalysis": {}}}),
        "analysis",
    ),
    (
        "step names known metrics",
        ModelDeploymentSpec,
        minimal_spec(
            strategy={"canary": {"steps": [{"analysis": {"metrics": ["errors"]}}]}},
            analysis={"prometheus": PROM, "metrics": [METRIC]},
        ),
        minimal_spec(
            strategy={"canary": {"steps": [{"analysis": {"metrics": ["errors", "p99"]}}]}},
            analysis={"prometheus": PROM, "metrics": [METRIC]},
        ),
        "strategy.canary.steps[0].analysis.metrics[1]",
    ),
    (
        "background analysis names known metrics",
        ModelDeploymentSpec,
        minimal_spec(
            strategy={"canary": {"steps": [{"setWeight": 5}], "analysis": {"metrics": ["errors"]}}},
            analysis={"prometheus": PROM, "metrics": [METRIC]},
        ),
        minimal_spec(
            strategy={"canary": {"steps": [{"setWeight": 5}], "analysis": {"metrics": ["p99"]}}},
            analysis={"prometheus": PROM, "metrics": [METRIC]},
        ),
        "strategy.canary.analysis.metrics[0]",
    ),
    (
        "replicas >= 0",
        ModelDeploymentSpec,
        minimal_spec(replicas=0),
        minimal_spec(replicas=-1),
        "replicas",
    ),
    (
        "revisionHistoryLimit <= 20",
        ModelDeploymentSpec,
        minimal_spec(revisionHistoryLimit=20),
        minimal_spec(revisionHistoryLimit=21),
        "revisionHistoryLimit",
    ),
    (
        "rollbackWindow well formed",
        ModelDeploymentSpec,
        minimal_spec(rollbackWindow="15m"),
        minimal_spec(rollbackWindow="15 min"),
        "rollbackWindow",
    ),
]


@pytest.mark.parametrize(
    ("model", "good", "bad", "path"),
    [pytest.param(m, g, b, p, id=name) for name, m, g, b, p in RULES],
)
def test_rule_accepts_and_refuses(
    model: type[BaseModel], good: dict[str, Any], bad: dict[str, Any], path: str
) -> None:
    model.model_validate(good)
    assert path in paths(model, bad)


def test_error_messages_name_the_full_path() -> None:
    obj = yaml.safe_load(EXAMPLES[0].read_text())
    obj["spec"]["strategy"] = {"canary": {"steps": [{"setWeight": 50}, {"setWeight": 20}]}}
    with pytest.raises(ValidationError) as info:
        ModelDeployment.model_validate(obj)
    text = describe(info.value)
    assert text.startswith("spec.strategy.canary.steps[1].setWeight: ")
    assert "must not decrease" in text


def test_metadata_name_bounded_for_children() -> None:
    obj = {"metadata": {"name": "n" * 53}, "spec": minimal_spec()}
    assert paths(ModelDeployment, obj) == ["metadata.name"]
    ModelDeployment.model_validate({**obj, "metadata": {"name": "n" * 52}})


def test_history_is_bounded() -> None:
    entry = {
        "revision": "abc",
        "modelVersion": "1",
        "outcome": "Promoted",
        "at": "2026-01-01T00:00:00Z",
    }
    ModelDeploymentStatus.model_validate({"history": [entry] * 20})
    assert paths(ModelDeploymentStatus, {"history": [entry] * 21}) == ["history"]
    assert HistoryEntry.model_validate(entry).outcome is Outcome.PROMOTED


# --- unknown fields ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (("spec",), "spec.replica"),
        (("spec", "model"), "spec.model.replica"),
        (("spec", "strategy", "canary"), "spec.strategy.canary.replica"),
        (("spec", "strategy", "canary", "steps", 0), "spec.strategy.canary.steps[0].replica"),
        (("spec", "analysis", "metrics", 0), "spec.analysis.metrics[0].replica"),
        ((), "replica"),
    ],
)
def test_unknown_field_refused(where: tuple[str | int, ...], path: str) -> None:
    obj = yaml.safe_load(
        EXAMPLES[[e.name for e in EXAMPLES].index("canary-replicas.yaml")].read_text()
    )
    node: Any = obj
    for part in where:
        node = node[part]
    node["replica"] = 3
    with pytest.raises(ValidationError) as info:
        ModelDeployment.model_validate(obj)
    issues = field_issues(info.value)
    assert [(i.path, i.message) for i in issues] == [(path, "unknown field")]


def test_status_unknown_field_refused() -> None:
    assert paths(ModelDeploymentStatus, {"kopf": {"progress": {}}}) == ["kopf"]


# --- wire form --------------------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.stem for e in EXAMPLES])
def test_camel_case_round_trip(example: Path) -> None:
    obj = yaml.safe_load(example.read_text())
    md = ModelDeployment.model_validate(obj)
    wire = md.to_wire()
    again = ModelDeployment.model_validate(wire)
    assert again == md
    assert again.to_wire() == wire
    # Everything the manifest said is on the wire unchanged (defaults may be added).
    assert _contains(wire, obj)


def _contains(big: Any, small: Any) -> bool:
    if isinstance(small, dict):
        return isinstance(big, dict) and all(
            k in big and _contains(big[k], v) for k, v in small.items()
        )
    if isinstance(small, list):
        return isinstance(big, list) and len(big) == len(small) and all(map(_contains, big, small))
    return bool(big == small)


def test_python_names_and_wire_names() -> None:
    routing = TrafficRouting(gateway_api={"http_route": "r"})  # type: ignore[arg-type]
    assert routing.to_wire() == {"gatewayAPI": {"httpRoute": "r", "port": 8080}}
    spec = ModelDeploymentSpec(
        model=ModelSpec(name="m", version="1", uri="s3://b/m", trusted_types=["x.Y"]),
        strategy=Strategy(blue_green=BlueGreenStrategy(scale_down_delay_seconds=5)),
        progress_deadline_seconds=60,
    )
    wire = spec.to_wire()
    assert wire["model"]["trustedTypes"] == ["x.Y"]
    assert wire["strategy"]["blueGreen"]["scaleDownDelaySeconds"] == 5
    assert wire["progressDeadlineSeconds"] == 60
    assert "progress_deadline_seconds" not in wire


def test_wire_form_is_json_ready() -> None:
    status = ModelDeploymentStatus.model_validate(
        {
            "phase": "Healthy",
            "history": [
                {
                    "revision": "r",
                    "modelVersion": "1",
                    "outcome": "RolledBack",
                    "at": "2026-01-02T03:04:05Z",
                }
            ],
        }
    )
    wire = status.to_wire()
    assert wire["phase"] == "Healthy"
    assert wire["history"][0]["at"] == "2026-01-02T03:04:05Z"
    assert wire["history"][0]["outcome"] == "RolledBack"


def test_models_do_not_share_mutable_defaults() -> None:
    a = ModelDeploymentSpec.model_validate(minimal_spec())
    b = ModelDeploymentSpec.model_validate(copy.deepcopy(minimal_spec()))
    a.model.trusted_types.append("x.Y")
    assert b.model.trusted_types == []
