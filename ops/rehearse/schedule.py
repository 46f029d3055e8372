"""When each request is due: a constant rate or a linear ramp, as offsets from the start (open loop)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterator


@dataclass(frozen=True, kw_only=True)
class LoadProfile:
    """``rps_start`` rising (or falling) linearly to ``rps_end`` over ``ramp_s``, then ``rps_end`` until ``duration_s``.

    A constant rate is ``rps_start == rps_end`` with ``ramp_s == 0``.
    """

    rps_start: float
    rps_end: float
    ramp_s: float
    duration_s: float

    @classmethod
    def constant(cls, rps: float, duration_s: float) -> "LoadProfile":
        return cls(rps_start=rps, rps_end=rps, ramp_s=0.0, duration_s=duration_s)

    def rate_at(self, t: float) -> float:
        if self.ramp_s <= 0 or t >= self.ramp_s:
            return self.rps_end
        return self.rps_start + (self.rps_end - self.rps_start) * t / self.ramp_s

    def expected_requests(self) -> int:
        """How many requests the schedule holds without a cap (the integral of the rate)."""
        return self._count_before(self.duration_s)

    def _count_before(self, t: float) -> int:
        ramp = min(self.ramp_s, t)
        during = self.rps_start * ramp + (self.rps_end - self.rps_start) * ramp * ramp / (2 * self.ramp_s) if ramp else 0.0
        return math.ceil(during + self.rps_end * max(0.0, t - self.ramp_s) - 1e-9)

    def offsets(self, max_requests: int) -> Iterator[float]:
        """Due time of request n (0, 1, ...) in seconds from the start: where the rate's integral reaches n.

        Exact for the ramp (a quadratic), so a ramp sends the count its area promises, not one that
        drifts with a step size.
        """
        ramp_total = (self.rps_start + self.rps_end) * self.ramp_s / 2 if self.ramp_s > 0 else 0.0
        a = (self.rps_end - self.rps_start) / (2 * self.ramp_s) if self.ramp_s > 0 else 0.0
        b = self.rps_start
        n = 0
        while n < max_requests:
            if n < ramp_total:
                if abs(a) < 1e-12:
                    t = n / b
                else:
                    # a*t^2 + b*t = n; the discriminant stays >= 0 inside the ramp (it ends at rps_end^2).
                    t = (-b + math.sqrt(max(0.0, b * b + 4 * a * n))) / (2 * a)
            else:
                t = self.ramp_s + (n - ramp_total) / self.rps_end
            if t >= self.duration_s:
                return
            yield t
            n += 1
