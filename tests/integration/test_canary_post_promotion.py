"""The canary's post-promotion window with the real operator, control plane and Prometheus.

A synthetic exporter plays the candidate's model-server metrics (kwok runs no containers), so the
test can degrade the candidate after it has taken all traffic: the operator must roll back to the
stable, which it kept running, and must resume the window after a restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.prometheus import PrometheusProcess, SyntheticExporter, SyntheticRevision
from tests.integration.operator_process import (
    Operator,
    apply_and_settle,
    deployments,
    events,
    md_manifest,
    model,
    revision,
    roll_to,
    selectors,
    status,
    wait_for,
    with_version,
)
from tests.testenv.controlplane import ControlPlane

NAME = "fraud"
NAME_LABEL, REVISION_LABEL = "modelrollout.io/name", "modelrollout.io/revision"
STEPS = [{"setWeight": 50}]
WINDOW = len(STEPS) + 1  # status.currentStepIndex of the post-promotion window


def manifest(prometheus: str) -> dict[str, Any]:
    strategy = {"canary": {"steps": STEPS, "postPromotionAnalysis": {"count": 100}}}
    analysis = {
        "interval": "2s",
        "prometheus": {"address": prometheus},
        "metrics": [{"name": "error-rate", "builtin": "errorRate", "max": 0.05, "window": "5s"}],
    }
    return md_manifest(NAME, model("1"), strategy, analysis=analysis, revisionHistoryLimit=2)


@pytest.fixture
def candidate_metrics(namespace: str, tmp_path: Path) -> Iterator[tuple[SyntheticExporter, str]]:
    """Prometheus scraping the metric contract of version 2's revision (healthy at first)."""
    r2 = revision(with_version(manifest("http://unused:9090"), "2"))
    healthy = SyntheticRevision(namespace, NAME, r2, rps=50.0, error_fraction=0.0)
    with (
        SyntheticExporter([healthy]) as exporter,
        PrometheusProcess(tmp_path / "prometheus", exporter.targets()) as prom,
    ):
        ready = "count_over_time(model_infer_request_success_total[10s]) >= 6"
        assert prom.wait_for(ready, timeout=60), "Prometheus never scraped the exporter"
        yield exporter, prom.url


def in_window(cp: ControlPlane, ns: str, rev: str) -> dict[str, Any] | None:
    st = status(cp, ns, NAME)
    running = (st.get("analysis") or {}).get("kind") == "postPromotion"
    if st.get("canaryRevision") == rev and st.get("currentStepIndex") == WINDOW and running:
        return st
    return None


def rolled_back(cp: ControlPlane, ns: str) -> dict[str, Any] | None:
    st = status(cp, ns, NAME)
    degraded = [c for c in st.get("conditions") or [] if c["type"] == "Degraded"]
    if st.get("phase") == "Degraded" and degraded and degraded[0]["status"] == "True":
        return st
    return None


def test_failure_after_the_last_step_rolls_back_to_the_warm_stable(
    operator: Operator,
    control_plane: ControlPlane,
    namespace: str,
    candidate_metrics: tuple[SyntheticExporter, str],
) -> None:
    cp, ns = control_plane, namespace
    exporter, prometheus = candidate_metrics
    v1 = manifest(prometheus)
    r1 = apply_and_settle(cp, ns, v1)
    r2 = roll_to(cp, ns, v1, "2")

    st = wait_for("post-promotion window", lambda: in_window(cp, ns, r2))
    assert st["stableRevision"] == r1
    assert st["canaryWeight"] == 100
    assert st["message"].startswith("post-promotion"), st["message"]
    # All traffic on the candidate, the stable still at full size behind its own Service.
    assert deployments(cp, ns, NAME) == {r1: 3, r2: 3}
    services = selectors(cp, ns, NAME)
    assert services[""] == {NAME_LABEL: NAME, REVISION_LABEL: r2}
    assert services["-stable"] == {NAME_LABEL: NAME, REVISION_LABEL: r1}
    wait_for(
        "a PostPromotionStarted event",
        lambda: "PostPromotionStarted" in {e["reason"] for e in events(cp, ns, NAME)},
    )

    # A restarted operator resumes the same run from the status.
    started_at = st["stepStartedAt"]
    operator.kill()
    operator.start()
    wait_for(
        "a measurement by the restarted operator",
        lambda: (
            (in_window(cp, ns, r2) or {}).get("analysis", {}).get("measurements", 0)
            > st["analysis"].get("measurements", 0)
        ),
    )
    assert status(cp, ns, NAME)["stepStartedAt"] == started_at

    exporter.update(0, error_fraction=0.5)
    st = wait_for("rollback to the stable", lambda: rolled_back(cp, ns))
    degraded = next(c for c in st["conditions"] if c["type"] == "Degraded")
    assert degraded["reason"] == "AnalysisFailed"
    assert "post-promotion: " in st["message"] and "error-rate" in st["message"], st["message"]
    assert st["stableRevision"] == r1
    assert st["abortedRevision"] == r2
    assert st["canaryWeight"] == 0
    assert st["history"][0]["revision"] == r2
    assert st["history"][0]["outcome"] == "RolledBack"
    # Clients are back on every ready pod (only the stable's once the candidate is scaled down).
    wait_for("candidate scaled down", lambda: deployments(cp, ns, NAME) == {r1: 3, r2: 0})
    assert selectors(cp, ns, NAME)[""] == {NAME_LABEL: NAME}
