"""status.analysis written as a merge patch: fields dropped inside it must not linger."""

from __future__ import annotations

from modelrollout.kube.status import status_patch


def test_nested_keys_dropped_from_analysis_are_nulled() -> None:
    old = {
        "phase": "Progressing",
        "analysis": {"phase": "Running", "nextMeasurementAt": "t", "measurements": 1},
    }
    new = {"phase": "Degraded", "analysis": {"phase": "Failed", "measurements": 2}}
    assert status_patch(old, new) == {
        "phase": "Degraded",
        "analysis": {"phase": "Failed", "measurements": 2, "nextMeasurementAt": None},
    }


def test_unchanged_and_unseen_keys() -> None:
    old = {"analysis": {"phase": "Running"}, "abort": "x"}
    assert status_patch(old, {"analysis": {"phase": "Running"}}) == {"abort": None}
    # A key we never saw (set by a person after our read) is left alone.
    assert status_patch({}, {"phase": "Healthy"}) == {"phase": "Healthy"}
