"""Histogram buckets as Prometheus exposes them: cumulative, labelled by upper bound."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def cumulative(bounds: Sequence[float], counts: np.ndarray[Any, Any]) -> list[tuple[str, float]]:
    """`counts` has one entry per bound and a last one for +Inf."""
    running = np.cumsum(counts)
    pairs = [(repr(float(b)), float(n)) for b, n in zip(bounds, running[:-1], strict=True)]
    return [*pairs, ("+Inf", float(running[-1]))]
