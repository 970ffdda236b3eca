"""StepOutcome: what stepping a strategy once did to the candidate."""

from __future__ import annotations

from enum import Enum


class StepOutcome(Enum):
    IN_PROGRESS = "in-progress"
    ABORTED = "aborted"
    PROMOTED = "promoted"
