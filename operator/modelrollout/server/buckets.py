"""Histogram buckets as Prometheus exposes them: cumulative, labelled by upper bound."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

# Request durations: 0.5 ms .. 10 s, dense below 100 ms, where scikit-learn models live (the
# server's own answers, and a candidate's answers to mirrored requests).
DURATION_BUCKETS: tuple[float, ...] = (
    0.0005, 0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1,
    0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


def cumulative(bounds: Sequence[float], counts: np.ndarray[Any, Any]) -> list[tuple[str, float]]:
    """`counts` has one entry per bound and a last one for +Inf."""
    running = np.cumsum(counts)
    pairs = [(repr(float(b)), float(n)) for b, n in zip(bounds, running[:-1], strict=True)]
    return [*pairs, ("+Inf", float(running[-1]))]
