"""Monthly cost against requests per day, one line per pattern as deployed, break-even points marked."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Callable

import numpy as np

#: requests/day the picture spans (log scale)
LOW, HIGH, POINTS = 1e2, 1e8, 241
#: matplotlib reads text between two dollar signs as TeX: prices are escaped
DOLLAR = "\\$"
#: crossings of the same two lines closer than this factor in traffic are one break-even
MERGE_FACTOR = 2.0
COLOURS = {"realtime": "tab:red", "batch": "tab:blue", "serverless": "tab:green", "edge": "tab:purple"}
LABELS = {"realtime": "real-time endpoint", "batch": "batch transform (nightly)", "serverless": "Lambda + API Gateway",
          "edge": "Greengrass edge"}


def curves(cost_at: Callable[[float], dict[str, float]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    traffic = np.logspace(math.log10(LOW), math.log10(HIGH), POINTS)
    by_pattern: dict[str, list[float]] = {}
    for requests in traffic:
        for pattern, usd in cost_at(float(requests)).items():
            by_pattern.setdefault(pattern, []).append(usd)
    return traffic, {pattern: np.array(values) for pattern, values in by_pattern.items()}


def break_evens(cost_at: Callable[[float], dict[str, float]], traffic: np.ndarray,
                lines: dict[str, np.ndarray]) -> list[tuple[str, str, float, float]]:
    """(pattern a, pattern b, requests/day, USD/month) wherever two curves cross, refined by bisection."""
    found = []
    names = sorted(lines)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            difference = lines[first] - lines[second]
            for index in np.nonzero(np.diff(np.sign(difference)))[0]:
                low, high = float(traffic[index]), float(traffic[index + 1])
                sign_low = math.copysign(1, difference[index])
                for _ in range(40):
                    middle = math.sqrt(low * high)
                    costs = cost_at(middle)
                    if math.copysign(1, costs[first] - costs[second]) == sign_low:
                        low = middle
                    else:
                        high = middle
                costs = cost_at(high)
                # a step of the autoscaled fleet can cross the same line again a little further on: keep the first
                if not any(a == first and b == second and high < r * MERGE_FACTOR for a, b, r, _ in found):
                    found.append((first, second, high, (costs[first] + costs[second]) / 2))
    return found


def draw(path: Path, cost_at: Callable[[float], dict[str, float]], *, today: float, title: str,
         limits: dict[str, float] | None = None, labels: dict[str, str] | None = None) -> list[tuple]:
    """Write the PNG; returns the break-even points it marked.

    ``limits``: requests/day a pattern can serve as deployed (API throttle, autoscaling maximum); the line
    goes on dashed beyond it, where the deployment would have to change.
    """
    limits = limits or {}
    names = {**LABELS, **(labels or {})}
    from matplotlib.ticker import FuncFormatter

    from ops.pictures import pyplot, save_png

    plt = pyplot()

    traffic, lines = curves(cost_at)
    crossings = break_evens(cost_at, traffic, lines)
    figure, axes = plt.subplots(figsize=(10, 6.5), dpi=110)
    dashed_label = False
    for pattern, values in lines.items():
        values = np.maximum(values, 0.01)
        inside = traffic <= limits.get(pattern, math.inf)
        axes.plot(traffic[inside], values[inside], color=COLOURS.get(pattern), linewidth=2.2,
                  label=names.get(pattern, pattern))
        if not inside.all():
            start = max(int(np.argmin(inside)) - 1, 0)
            axes.plot(traffic[start:], values[start:], color=COLOURS.get(pattern), linewidth=1.6, linestyle=":",
                      label=None if dashed_label else "beyond the deployed limit (throttle / max capacity)")
            dashed_label = True
    for first, second, requests, usd in crossings:
        axes.plot([requests], [usd], "o", color="black", markersize=6, zorder=5)
        axes.annotate(f"{names.get(first, first).split(' ')[0]} = {names.get(second, second).split(' ')[0]}\n"
                      f"{requests:,.0f}/day, {DOLLAR}{usd:,.0f}/month", (requests, usd), textcoords="offset points",
                      xytext=(10, -34), fontsize=9,
                      bbox={"boxstyle": "round,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})
    axes.axvline(today, color="grey", linestyle="--", linewidth=1.2)
    axes.annotate(f"assumed today: {today:,.0f}/day", (today, 0.98), xycoords=("data", "axes fraction"),
                  textcoords="offset points", xytext=(4, 0), fontsize=9, color="dimgrey", rotation=90,
                  va="top", ha="left")
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlim(LOW, HIGH)
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: _short(value)))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{DOLLAR}{value:,.0f}" if value >= 1
                                                 else f"{DOLLAR}{value:g}"))
    axes.set_xlabel("predictions per day (batch: rows scored nightly)", fontsize=11)
    axes.set_ylabel("USD per month", fontsize=11)
    axes.set_title(title, fontsize=12)
    axes.grid(True, which="major", alpha=0.35)
    axes.grid(True, which="minor", alpha=0.12)
    axes.legend(loc="upper left", fontsize=9)
    figure.tight_layout()
    save_png(figure, path, dpi=110)
    return crossings


def _short(value: float) -> str:
    """Tick labels people read at a glance: 100, 10k, 1M."""
    for size, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if value >= size:
            return f"{value / size:g}{suffix}"
    return f"{value:g}"
