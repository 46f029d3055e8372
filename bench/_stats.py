"""The one way every benchmark summarizes latencies, so figures from different benchmarks compare."""
from __future__ import annotations

from typing import Iterable

import numpy as np


def p50_p99(samples_ms: Iterable[float]) -> tuple[float, float]:
    """Median and 99th percentile (numpy's linear interpolation) of latencies in milliseconds."""
    values = np.asarray(list(samples_ms), dtype=float)
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))
