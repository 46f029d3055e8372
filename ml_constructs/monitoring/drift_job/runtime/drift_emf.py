"""CloudWatch Embedded Metric Format documents for one window's report.

Why EMF on stdout rather than PutMetricData: PutMetricData cannot be scoped to a resource (its IAM policy
needs ``Resource: "*"``), costs an API call per 1000 values on the job's critical path, and can throttle;
EMF lines are written to the function's own log group, which CloudWatch turns into metrics asynchronously
with the timestamp of the window, at no API cost. The price: the log group's ingestion (a few KB per run).

One namespace per model; per-feature metrics carry the ``Feature`` dimension; window-level metrics have
no dimension. A window with no data publishes ``RowsAnalysed = 0`` and ``WindowsAnalysed = 1`` only, never a
zero drift value: "no data" is not "no drift", and the alarms treat the gap deliberately.
"""
from __future__ import annotations

import json
from typing import Any, Iterator, Mapping

FEATURE_DIMENSION = "Feature"


def _document(namespace: str, timestamp_ms: int, values: Mapping[str, float], units: Mapping[str, str],
              dimensions: Mapping[str, str]) -> dict[str, Any]:
    present = {name: value for name, value in values.items() if value is not None}
    return {"_aws": {"Timestamp": timestamp_ms, "CloudWatchMetrics": [{
        "Namespace": namespace, "Dimensions": [list(dimensions)],
        "Metrics": [{"Name": name, "Unit": units.get(name, "None")} for name in present]}]},
        **dimensions, **present}


def documents(report: Mapping[str, Any], *, namespace: str, timestamp_ms: int) -> Iterator[dict[str, Any]]:
    """The EMF documents (one per feature, one for the window) of ``report``."""
    window = {"WindowsAnalysed": 1, "RowsAnalysed": report.get("rows_seen", 0)}
    if report.get("status") == "ok":
        prediction = report["prediction"]
        window.update({"InvalidRate": report["invalid_rate"], "PredictionPSI": prediction.get("psi"),
                       "PredictionKS": prediction.get("ks"), "DriftedFeatures": len(report["drifted_features"])})
        for name, result in report["features"].items():
            if result.get("psi") is not None:
                yield _document(namespace, timestamp_ms, {"PSI": result["psi"], "KS": result["ks"],
                                                          "MissingRate": result["missing_rate"]},
                                {}, {FEATURE_DIMENSION: name})
    quality = report.get("quality") or {}
    if quality.get("status") == "ok":
        window.update({"AUC": quality.get("auc"), "Accuracy": quality.get("accuracy"),
                       "Precision": quality.get("precision"), "LabelledPredictions": quality.get("matched")})
    yield _document(namespace, timestamp_ms, window, {"RowsAnalysed": "Count", "LabelledPredictions": "Count",
                                                      "WindowsAnalysed": "Count"}, {})


def lines(report: Mapping[str, Any], *, namespace: str, timestamp_ms: int) -> list[str]:
    return [json.dumps(document, separators=(",", ":"))
            for document in documents(report, namespace=namespace, timestamp_ms=timestamp_ms)]
