"""Runs per month of an EventBridge / Scheduler / Model Monitor schedule expression."""
from __future__ import annotations

import re

from ops.cli import UsageError

HOURS_PER_MONTH = 730.0
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
_RATE_UNITS = {"minute": 1 / 60, "minutes": 1 / 60, "hour": 1.0, "hours": 1.0, "day": 24.0, "days": 24.0}
_DAY_NAMES = {name: index for index, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}


def runs_per_month(expression: str) -> float:
    """``cron(0 * ? * * *)`` -> 730.0; ``rate(6 hours)`` -> 121.7; ``at(...)`` -> 0 (a one-off).

    Month fields and years are taken as every month; a day-of-month list counts its days, a day-of-week
    list counts its share of the week. Model Monitor's ``NOW`` (one-off) counts as 0.
    """
    text = expression.strip()
    if text.startswith("at(") or text.upper() == "NOW":
        return 0.0
    rate = re.fullmatch(r"rate\(\s*(\d+)\s+(\w+)\s*\)", text)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2).lower()
        if unit not in _RATE_UNITS or value <= 0:
            raise UsageError(f"unreadable schedule {expression!r}")
        return HOURS_PER_MONTH / (value * _RATE_UNITS[unit])
    cron = re.fullmatch(r"cron\((.*)\)", text)
    fields = cron.group(1).split() if cron else []
    if len(fields) != 6:
        raise UsageError(f"unreadable schedule {expression!r} (expected cron(6 fields) or rate(...))")
    minutes, hours, day_of_month, _month, day_of_week, _year = fields
    per_day = _count(minutes, 0, 59) * _count(hours, 0, 23)
    if day_of_month not in ("*", "?"):
        days = float(min(_count(day_of_month, 1, 31), DAYS_PER_MONTH)) if re.fullmatch(r"[\d,\-/*]+", day_of_month) \
            else 1.0  # L, W: once a month
    elif day_of_week not in ("*", "?"):
        named = day_of_week.upper()
        for name, number in _DAY_NAMES.items():
            named = named.replace(name, str(number))
        days = _count(named, 1, 7) / 7 * DAYS_PER_MONTH if re.fullmatch(r"[\d,\-/*]+", named) \
            else 1.0  # 2#1, 6L: once a month
    else:
        days = DAYS_PER_MONTH
    return per_day * days


def _count(field: str, low: int, high: int) -> int:
    """How many values a cron field takes: ``*``, ``5``, ``1,2``, ``1-5``, ``*/15``, ``0-30/10``."""
    values: set[int] = set()
    for part in field.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", "?"):
            start, end = low, high
        elif "-" in part:
            start, end = (int(bound) for bound in part.split("-", 1))
        else:
            start = int(part)
            end = high if step != 1 else start
        values.update(range(start, end + 1, step))
    return len(values)
