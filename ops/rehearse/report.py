"""The rehearsal's outputs: the JSON document and a picture of latency and instance count over time."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ops.cli import UsageError


def write_json(path: Path, document: dict[str, Any]) -> None:
    try:
        path.write_text(json.dumps(document, indent=2) + "\n")
    except OSError as error:
        raise UsageError(f"cannot write {path}: {error.strerror or error}") from None


def plot(path: Path, document: dict[str, Any]) -> None:
    """Two panels sharing time: p50/p99 latency on top; instances per variant (steps) and achieved rate below."""
    from ops.pictures import pyplot, save_png

    plt = pyplot()

    series = document["series"]
    times = [entry["t"] for entry in series]
    figure, (latency_axis, capacity_axis) = plt.subplots(2, 1, sharex=True, figsize=(9, 6),
                                                         gridspec_kw={"height_ratios": [3, 2]})
    latency_axis.plot(times, [entry["p50_ms"] for entry in series], marker="o", label="p50")
    latency_axis.plot(times, [entry["p99_ms"] for entry in series], marker="o", label="p99")
    errors = [(entry["t"], entry["p99_ms"]) for entry in series if entry["errors"] and entry["p99_ms"] is not None]
    if errors:
        latency_axis.scatter(*zip(*errors), color="red", zorder=3, label="interval with errors")
    latency_axis.set_ylim(bottom=0)
    latency_axis.set_ylabel("latency (ms, from due time)")
    latency_axis.set_title(f"Rehearsal against {document['target']['description']}")
    latency_axis.grid(alpha=0.3)
    latency_axis.legend(loc="upper left")

    rate_axis = capacity_axis.twinx()
    rate_axis.plot(times, [entry["rps"] for entry in series], color="grey", linestyle="--", label="achieved req/s")
    rate_axis.set_ylim(bottom=0, top=max([entry["rps"] for entry in series] + [1.0]) * 1.2)
    rate_axis.set_ylabel("requests/s")
    variant_names = sorted({name for entry in series for name in entry.get("variants", {})})
    for name in variant_names:
        counts = [entry.get("variants", {}).get(name, {}).get("instances") for entry in series]
        capacity_axis.step(times, counts, where="post", label=f"{name} instances")
    if variant_names:
        capacity_axis.set_ylim(bottom=0, top=max([c or 0 for entry in series for c in
                                                  [v.get("instances") for v in entry.get("variants", {}).values()]]
                                                 + [1]) + 1)
        capacity_axis.set_ylabel("instances")
        capacity_axis.legend(loc="upper left")
    else:
        capacity_axis.set_yticks([])
        capacity_axis.text(0.01, 0.85, "instances: n/a (URL target)", transform=capacity_axis.transAxes)
    rate_axis.legend(loc="upper right")
    capacity_axis.set_xlabel("seconds since start")
    capacity_axis.grid(alpha=0.3)
    figure.tight_layout()
    save_png(figure, path)
