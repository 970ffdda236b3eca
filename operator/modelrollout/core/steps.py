"""Outcome of stepping a state machine once."""

from __future__ import annotations

from enum import Enum


class Step(Enum):
    IN_PROGRESS = "in-progress"
    ABORTED = "aborted"
    PROMOTED = "promoted"
