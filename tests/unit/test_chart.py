"""The Helm chart's static parts: values against values.schema.json, the Grafana dashboard.

Rendering, `helm lint` and admission by the API server are in tests/integration/test_helm_*.py.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pandas as pd
import pytest
import yaml
from prometheus_client import CollectorRegistry

from modelrollout import metrics as operator_metrics
from modelrollout.profile.build import build_profile
from modelrollout.server.metrics import ServerMetrics

CHART = Path(__file__).resolve().parents[2] / "charts" / "modelrollout"


def schema() -> dict[str, Any]:
    return json.loads((CHART / "values.schema.json").read_text())


def values() -> dict[str, Any]:
    return yaml.safe_load((CHART / "values.yaml").read_text())


def test_default_values_follow_the_schema() -> None:
    jsonschema.Draft7Validator.check_schema(schema())
    jsonschema.validate(values(), schema())


@pytest.mark.parametrize(
    "override",
    [
        {"replicaCont": 2},  # a typo is refused, not silently ignored
        {"watchNamespaces": ["Not_A_Namespace"]},
        {"logLevel": "chatty"},
        {"metrics": {"port": 70000}},
        {"peering": {"enabled": "yes"}},
        {"serviceMonitor": {"enabled": True, "interval": "soon"}},
    ],
)
def test_schema_refuses_bad_values(override: dict[str, Any]) -> None:
    merged = {**values(), **override}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(merged, schema())


def test_secure_defaults() -> None:
    v = values()
    ctx = v["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True
    assert ctx["allowPrivilegeEscalation"] is False
    assert ctx["runAsNonRoot"] is True
    assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert ctx["seccompProfile"] == {"type": "RuntimeDefault"}
    assert v["podSecurityContext"]["runAsUser"] != 0
    assert v["resources"]["limits"] and v["resources"]["requests"]


def _dashboard() -> dict[str, Any]:
    return json.loads((CHART / "dashboards" / "modelrollout.json").read_text())


def _exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def _sample_names(registry: Any) -> set[str]:
    """Every series name a registry can expose (families plus their suffixes)."""
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_sum", "_count", "_created"),
        "gauge": ("",),
    }
    names: set[str] = set()
    for family in registry.collect():
        names.update(family.name + s for s in suffixes.get(family.type, ("",)))
    return names


def test_dashboard_queries_only_metrics_that_exist() -> None:
    server = ServerMetrics("m", "1", "abc")
    server.set_classes(["fraud", "ok"])
    # Feedback and reference-profile families appear once there is something to count.
    profile = build_profile(pd.DataFrame({"x": [1.0, 2.0, 3.0]}), bins=2)
    server.set_profile(profile, None, ["fraud", "ok"])
    server.feedback.observe_classes(("1", "abc"), np.array([0]), np.array([1]))
    regressor = ServerMetrics("r", "1", "abc")
    regressor.feedback.observe_values(("1", "abc"), np.array([1.0]), np.array([2.0]))
    known = _sample_names(server.registry) | _sample_names(regressor.registry)
    operator_registry = CollectorRegistry()
    for collector in (
        operator_metrics.RECONCILES,
        operator_metrics.RECONCILE_SECONDS,
        operator_metrics.EVENTS,
    ):
        operator_registry.register(collector)
    known |= _sample_names(operator_registry)
    known |= {"modelrollout_modeldeployments", "modelrollout_canary_weight_ratio"}
    assert {n for n in known if n.startswith("modelrollout_")} >= {
        "modelrollout_reconcile_total",
        "modelrollout_reconcile_duration_seconds_bucket",
        "modelrollout_events_total",
    }
    used = set()
    for expr in _exprs(_dashboard()):
        used |= set(re.findall(r"\b(model(?:rollout)?_[a-z_]+)\b", expr))
    assert used, "the dashboard queries no metric"
    assert used <= known, f"unknown metrics: {sorted(used - known)}"
    assert any(n.startswith("modelrollout_") for n in used)
    assert any(n.startswith("model_infer_request_") for n in used)


def test_operator_gauges_the_dashboard_uses_are_exported() -> None:
    operator_metrics.remember_object("ns", "md", "Progressing", 25)
    try:
        families = {f.name: f for f in operator_metrics._ObjectCollector().collect()}
    finally:
        operator_metrics.forget("ns", "md")
    assert {"modelrollout_modeldeployments", "modelrollout_canary_weight_ratio"} <= set(families)


def test_dashboard_is_well_formed() -> None:
    dash = _dashboard()
    assert dash["uid"] == "modelrollout"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    variables = {v["name"] for v in dash["templating"]["list"]}
    assert {"datasource", "namespace", "model"} <= variables
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}"
            assert panel["targets"]
