"""A slice of the fault matrix (make faults runs all of it): a canary with analysis survives the
API server killed, API Priority and Fairness answering 429, and the network to Prometheus cut,
each in the middle of its analysis: the outcome, the routing path and the analysis are those of
the fault-free rollout before it, no request fails, and the rollout steps forward again after the
fault ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.fault_matrix import FAULTS, judge, lab, roll
from tests.testenv.controlplane import ControlPlane

pytestmark = pytest.mark.timeout(900)


def test_a_canary_survives_api_server_prometheus_and_throttling_faults(
    e2e_crds: None, control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    with lab(control_plane, namespace, tmp_path, "canary") as the_lab:
        baseline = roll(the_lab, None, None)
        fault_free = judge("canary", None, "-", baseline, None)
        assert fault_free.outcome == "Promoted", fault_free
        assert not fault_free.promoted_on_missing_data, fault_free
        for name in ("kube-apiserver killed", "API server throttling",
                     "network to Prometheus dropped"):  # fmt: skip
            record = roll(the_lab, FAULTS[name], "mid-analysis")
            row = judge("canary", FAULTS[name], "mid-analysis", record, baseline)
            print(row)
            assert row.survived, row
            assert row.recovered_s is not None, row
            if name == "API server throttling":
                assert row.rejected > 0, row
        # An outage is a warning line and a retry, never a traceback (which means a bug).
        assert "Traceback" not in the_lab.env.operator.log()
