"""The plugin's text views, on hand-written ModelDeployments (wire form)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from modelrollout.cli import render

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def mid_canary() -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": "fraud",
            "namespace": "ml",
            "generation": 4,
            "creationTimestamp": "2026-11-23T11:00:00Z",
        },
        "spec": {
            "model": {
                "name": "fraud-detector",
                "version": "7",
                "uri": "file:///m",
                "format": "skops",
            },
            "strategy": {
                "canary": {
                    "steps": [
                        {"setWeight": 10},
                        {"pause": {"duration": "2m"}},
                        {"analysis": {"metrics": ["error-rate"]}},
                        {"setWeight": 50},
                        {"pause": {}},
                    ],
                    "trafficRouting": {"replicas": {}},
                }
            },
        },
        "status": {
            "observedGeneration": 4,
            "phase": "Progressing",
            "message": "step 3/5: analysis 2/3 passed",
            "stableRevision": "5d8f7c0000",
            "stableModelVersion": "6",
            "canaryRevision": "9b1e220000",
            "canaryModelVersion": "7",
            "currentStepIndex": 2,
            "canaryWeight": 10,
            "readyReplicas": 3,
            "canaryReadyReplicas": 1,
            "analysis": {
                "phase": "Running",
                "revision": "9b1e220000",
                "measurements": 3,
                "successful": 2,
                "inconclusive": 1,
                "results": [
                    {
                        "metric": "error-rate",
                        "value": 0.0021,
                        "stableValue": 0.001,
                        "bound": "<= 0.01",
                        "verdict": "Successful",
                        "measuredAt": "2026-11-23T11:59:48Z",
                    }
                ],
            },
            "conditions": [
                {
                    "type": "Progressing",
                    "status": "True",
                    "reason": "CanaryStep",
                    "message": "analysis",
                    "lastTransitionTime": "2026-11-23T11:50:00Z",
                }
            ],
            "history": [
                {
                    "revision": "5d8f7c0000",
                    "modelVersion": "6",
                    "outcome": "Promoted",
                    "at": "2026-11-22T12:00:00Z",
                    "reason": "all steps passed",
                },
                {
                    "revision": "1111111111",
                    "modelVersion": "5b",
                    "outcome": "RolledBack",
                    "at": "2026-11-21T12:00:00Z",
                    "reason": "AnalysisFailed: error-rate 0.05 > 0.01",
                },
            ],
        },
    }


def test_status_marks_done_current_and_pending_steps() -> None:
    text = render.status_view(mid_canary(), NOW)
    assert "[x] 1. setWeight 10%" in text
    assert "[x] 2. pause 2m" in text
    assert "[>] 3. analysis (error-rate)" in text
    assert "[ ] 4. setWeight 50%" in text
    assert "[ ] 5. pause (until promoted)" in text


def test_status_shows_weights_revisions_and_verdicts() -> None:
    text = render.status_view(mid_canary(), NOW)
    assert "Phase:      Progressing" in text
    assert "Stable:     5d8f7c0000 (version 6)   ready 3" in text
    assert "Canary:     9b1e220000 (version 7)   ready 1   weight 10%" in text
    metric_line = next(line for line in text.splitlines() if line.strip().startswith("error-rate"))
    assert "0.0021" in metric_line
    assert "<= 0.01" in metric_line
    assert "Successful" in metric_line
    assert "12s" in metric_line
    assert "2 successful, 0 failed, 1 inconclusive, 0 errors" in text


def test_status_shows_history_oldest_first_with_numbers() -> None:
    lines = render.status_view(mid_canary(), NOW).splitlines()
    start = lines.index("History:")
    assert lines[start + 2].split()[:4] == ["1", "1111111111", "5b", "RolledBack"]
    assert lines[start + 3].split()[:4] == ["2", "5d8f7c0000", "6", "Promoted"]


def test_status_warns_when_generation_not_observed_and_paused_by_spec() -> None:
    obj = mid_canary()
    obj["metadata"]["generation"] = 5
    obj["spec"]["paused"] = True
    text = render.status_view(obj, NOW)
    assert "Generation: 5 (operator has seen 4)" in text
    assert "Progressing (spec.paused)" in text


def test_status_of_a_fresh_object_without_status() -> None:
    obj = mid_canary()
    del obj["status"]
    text = render.status_view(obj, NOW)
    assert "Phase:      Unknown" in text
    assert "[>]" not in text
    assert "History:" not in text


def test_healthy_object_shows_all_steps_done() -> None:
    obj = mid_canary()
    obj["status"] = {"phase": "Healthy", "stableRevision": "9b1e220000", "observedGeneration": 4}
    text = render.status_view(obj, NOW)
    assert text.count("[x]") == 5
    assert "Canary:" not in text


def test_list_view_columns() -> None:
    obj = mid_canary()
    text = render.list_view([obj], NOW, all_namespaces=True)
    header, row = text.splitlines()
    assert header.split()[:8] == [
        "NAMESPACE",
        "NAME",
        "PHASE",
        "VERSION",
        "STABLE",
        "CANARY",
        "WEIGHT",
        "STEP",
    ]
    assert row.split()[:9] == [
        "ml",
        "fraud",
        "Progressing",
        "7",
        "5d8f7c0000",
        "9b1e220000",
        "10%",
        "3/5",
        "60m",
    ]
    assert render.list_view([], NOW, all_namespaces=False) == "No modeldeployments found."


def test_age_like_kubectl() -> None:
    assert render.age("2026-11-23T11:59:00Z", NOW) == "60s"
    assert render.age("2026-11-23T10:01:00Z", NOW) == "119m"
    assert render.age("2026-11-23T10:00:00Z", NOW) == "2h"
    assert render.age("2026-11-21T12:00:00Z", NOW) == "2d"
    assert render.age(None, NOW) == "-"
    assert render.age("not a time", NOW) == "-"


def test_blue_green_shows_the_preview_and_no_steps() -> None:
    obj = mid_canary()
    obj["spec"]["strategy"] = {"blueGreen": {"autoPromotion": False}}
    obj["status"].update(
        phase="Paused", pauseReason="AwaitingPromotion", pauseStartedAt="2026-11-23T11:58:30Z"
    )
    text = render.status_view(obj, NOW)
    assert "Strategy:   blueGreen" in text
    assert "Preview:    9b1e220000 (version 7)" in text
    assert "Paused:     AwaitingPromotion for 90s" in text
    assert "Steps:" not in text
    row = render.list_view([obj], NOW, all_namespaces=False).splitlines()[1]
    assert row.split()[6] == "-"  # no canary step for blue/green
