"""Property: the pydantic models and the CRD (schema + CEL rules) accept exactly the same specs.

Hypothesis builds manifests from the parts the cross-field rules look at; each one must be
accepted by both or refused by both (offline CRD checker: tests/cases/offline.py).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from modelrollout.api import ModelDeployment
from modelrollout.api.crd import build_crd
from tests.cases import offline

SCHEMA = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
METRIC_NAMES = ["errors", "p99", "drift"]

ANALYSIS_STEP = st.one_of(
    st.just({}),
    st.fixed_dictionaries({"metrics": st.lists(st.sampled_from(METRIC_NAMES), max_size=2)}),
)
any_step = st.fixed_dictionaries(
    {},
    optional={
        "setWeight": st.integers(-5, 105),
        "pause": st.one_of(st.just({}), st.just({"duration": "30s"})),
        "analysis": ANALYSIS_STEP,
    },
)
good_step = st.one_of(
    st.fixed_dictionaries({"setWeight": st.integers(0, 100)}),
    st.just({"pause": {"duration": "1m"}}),
    st.fixed_dictionaries({"analysis": ANALYSIS_STEP}),
)
# Mostly well-formed parts, so that both verdicts occur often.
step = st.one_of(good_step, good_step, good_step, any_step)

any_metric = st.fixed_dictionaries(
    {"name": st.sampled_from(METRIC_NAMES)},
    optional={
        "builtin": st.sampled_from(["errorRate", "latencyP99", "predictionDrift"]),
        "query": st.just("sum(up)"),
        "min": st.floats(-1, 1, allow_nan=False),
        "max": st.floats(-1, 1, allow_nan=False),
        "compareToStable": st.fixed_dictionaries(
            {}, optional={"minRatio": st.floats(0, 2), "maxRatio": st.floats(0, 2)}
        ),
        "drift": st.just({"method": "psi"}),
    },
)
good_metric = st.fixed_dictionaries(
    {
        "name": st.sampled_from(METRIC_NAMES),
        "builtin": st.sampled_from(["errorRate", "latencyP99"]),
        "max": st.floats(0, 1, allow_nan=False),
    }
)
metric = st.one_of(good_metric, good_metric, any_metric)
routing = st.one_of(
    st.sampled_from(
        [
            {"replicas": {}},
            {"gatewayAPI": {"httpRoute": "r"}},
            {"istio": {"virtualService": "vs"}},
            {"nginx": {"stableIngress": "ing"}},
        ]
    ),
    st.fixed_dictionaries(
        {},
        optional={"replicas": st.just({}), "nginx": st.just({"stableIngress": "ing"})},
    ),
)


@st.composite
def manifests(draw: st.DrawFn) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"name": "m", "version": "1", "uri": "s3://b/m.skops"},
        "strategy": {"canary": {"steps": draw(st.lists(step, min_size=1, max_size=5))}},
    }
    if draw(st.booleans()):  # usually the weights grow, as they should
        steps = spec["strategy"]["canary"]["steps"]
        weights = iter(sorted(s["setWeight"] for s in steps if "setWeight" in s))
        for s in steps:
            if "setWeight" in s:
                s["setWeight"] = next(weights)
    if draw(st.booleans()):
        spec["strategy"]["canary"]["trafficRouting"] = draw(routing)
    if draw(st.booleans()):
        spec["strategy"]["canary"]["analysis"] = {"startStep": draw(st.integers(0, 7))}
    if draw(st.booleans()):
        spec["analysis"] = {
            "prometheus": {"address": "http://p:9090"},
            "metrics": draw(st.lists(metric, min_size=1, max_size=2)),
        }
    if draw(st.booleans()):
        spec["model"]["format"] = draw(st.sampled_from(["skops", "joblib"]))
        spec["model"]["allowPickle"] = draw(st.booleans())
    return {"apiVersion": "modelrollout.io/v1alpha1", "kind": "ModelDeployment",
            "metadata": {"name": "x"}, "spec": spec}  # fmt: skip


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(manifests())
def test_models_and_crd_agree(obj: dict[str, Any]) -> None:
    try:
        ModelDeployment.model_validate(obj)
        models_accept = True
    except ValidationError:
        models_accept = False
    structural, cel = offline.validate(SCHEMA, obj)
    assert models_accept == (not structural and not cel), (structural, cel)
