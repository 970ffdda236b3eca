"""What stepping a strategy once did to the candidate (StepOutcome), and what it hands back to
`decide` with it (StepResult)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import Enum

from modelrollout.core.plan import AnalysisRequest


class StepOutcome(Enum):
    IN_PROGRESS = "in-progress"
    ABORTED = "aborted"
    PROMOTED = "promoted"


@dataclass(frozen=True)
class StepResult:
    """One step of a strategy: the outcome and the outputs that belong to it.

    `promotion_reason` (PROMOTED only) goes into the history entry; None leaves the reason to
    `decide` (a fast rollback, else "all steps completed"). `analysis_due` (IN_PROGRESS only) is
    the analysis run to measure before the next decision (Plan.analysis_due).
    """

    outcome: StepOutcome
    promotion_reason: str | None = None
    analysis_due: AnalysisRequest | None = None

    def promoted_for(self, reason: str) -> StepResult:
        """This result with `reason` for a promotion, unless the step gave a later reason itself.

        For a request that moved the rollout on (promote, promoteFull) before the steps ran: a
        reason found by the steps afterwards (a passed post-promotion analysis) wins.
        """
        if self.outcome != StepOutcome.PROMOTED or self.promotion_reason is not None:
            return self
        return replace(self, promotion_reason=reason)


# The plain results, without outputs.
IN_PROGRESS = StepResult(StepOutcome.IN_PROGRESS)
ABORTED = StepResult(StepOutcome.ABORTED)
PROMOTED = StepResult(StepOutcome.PROMOTED)
