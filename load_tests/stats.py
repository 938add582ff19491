"""Latency percentiles, medians and ratios: the arithmetic every report here shares."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

import numpy as np


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (linear interpolation, as numpy); refuses an empty sample."""
    if len(values) == 0:
        raise ValueError("percentile of an empty sample: no request completed")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile q must be within [0, 100], got {q}")
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def median_of(values: Sequence[float]) -> float:
    """Median of repeated measurements (the figures on 2 cores vary run to run)."""
    if len(values) == 0:
        raise ValueError("median of an empty sample")
    return float(median(values))


def ratio(numerator: float, denominator: float) -> float | None:
    """numerator / denominator, or None when the denominator is not a positive number."""
    if denominator <= 0:
        return None
    return numerator / denominator


@dataclass(frozen=True)
class Latency:
    """p50/p95/p99 of one sample, in milliseconds."""

    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def from_seconds(cls, seconds: Sequence[float]) -> Latency:
        millis = [value * 1e3 for value in seconds]
        return cls(percentile(millis, 50), percentile(millis, 95), percentile(millis, 99))
