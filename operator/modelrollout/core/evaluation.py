"""The hook between the rollout state machines and analysis verdict aggregation.

The state machines only need to know whether an analysis run is still running, passed, failed or
is inconclusive. The analysis helper's outcome policy implements `AnalysisEvaluator`; `decide`
takes one as a keyword argument (`evaluate=`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from modelrollout.api import AnalysisRunPhase

if TYPE_CHECKING:
    from modelrollout.api import AnalysisStatus
    from modelrollout.core.observation import AnalysisMeasurements
    from modelrollout.core.plan import AnalysisRequest


@dataclass(frozen=True)
class AnalysisOutcome:
    """Result of folding new measurements into a run.

    `analysis`: the new value of status.analysis (bounded). `next_measure_at`: when the next
    measurement is due while the run is RUNNING. `message` names the failing metric and value.
    """

    verdict: AnalysisRunPhase
    message: str
    analysis: AnalysisStatus | None
    next_measure_at: datetime | None


class AnalysisEvaluator(Protocol):
    """Pure: (request, previous status.analysis, fresh measurements or None, now) -> outcome.

    `previous` belongs to another run when its key differs from `request.key`: start afresh.
    `measurements` is None or carries `request.key`.
    """

    def __call__(
        self,
        request: AnalysisRequest,
        previous: AnalysisStatus | None,
        measurements: AnalysisMeasurements | None,
        now: datetime,
    ) -> AnalysisOutcome: ...
