"""Fault injection for tests and the demo: errors, latency, shifted predictions.

Only the command line / environment can switch these on; nothing in a request can.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


class InjectedFault(Exception):
    """A deliberate failure (answered with 500, counted as a failed request)."""


@dataclass(frozen=True)
class FaultConfig:
    error_rate: float = 0.0  # fraction of inference requests that fail with 500, evenly spread
    latency_ms: float = 0.0  # added to every inference request
    prediction_shift: float = 0.0  # see Faults.shift
    seed: int | None = None
    # The errors begin this long after the server started: a candidate that degrades while it
    # takes traffic (the decision-latency benchmark on real pods), not one broken from the start.
    error_after_s: float = 0.0

    @property
    def active(self) -> bool:
        return bool(self.error_rate or self.latency_ms or self.prediction_shift)


class Faults:
    def __init__(self, config: FaultConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._failures_due = 0.0
        self._clock = clock
        self._errors_from = clock() + config.error_after_s

    def maybe_fail(self) -> None:
        # Evenly spread, not random: every window of n requests holds round(n * rate) failures,
        # so a test's short analysis window sees the configured rate, not a binomial draw.
        if not self.config.error_rate or self._clock() < self._errors_from:
            return
        self._failures_due += self.config.error_rate
        if self._failures_due >= 1.0:
            self._failures_due -= 1.0
            raise InjectedFault("injected fault (--fault-error-rate)")

    def shift_probabilities(self, proba: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Move a share ``s`` (0..1) of every row's probability mass onto the last class."""
        s = min(max(self.config.prediction_shift, 0.0), 1.0)
        shifted = proba * (1.0 - s)
        shifted[:, -1] += s
        return shifted

    def shift_classes(self, indices: np.ndarray[Any, Any], n_classes: int) -> np.ndarray[Any, Any]:
        """Without probabilities: each prediction becomes the last class with chance ``s``."""
        s = self.config.prediction_shift
        flip = np.array([self._rng.random() < s for _ in range(indices.shape[0])], dtype=bool)
        return np.where(flip, n_classes - 1, indices)

    def shift_values(self, values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Regressors: add the shift to every predicted value."""
        return values + self.config.prediction_shift
