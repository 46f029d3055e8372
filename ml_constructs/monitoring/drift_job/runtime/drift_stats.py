"""Drift statistics of one window against the packaging-time baseline (numpy only).

* PSI over the baseline's bins ``(-inf, e1], (e1, e2], ..., (ek, +inf)`` (numpy ``searchsorted(..., side="left")``,
  the convention of training/drift_baseline.py). Empty bins on either side are floored at ``PSI_FLOOR`` so
  one empty bin gives a large but finite index instead of infinity.
* The two-sample Kolmogorov-Smirnov statistic between the window's finite values and the baseline's sorted
  sample (the same statistic as ``scipy.stats.ks_2samp``; no p-value: with a million rows every difference
  is "significant", the statistic's size is what matters).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

PSI_FLOOR = 1e-4


@dataclass(frozen=True)
class Thresholds:
    psi: float = 0.2
    ks: float = 0.2
    prediction_psi: float = 0.2
    invalid_rate: float = 0.05

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> "Thresholds":
        return cls(psi=float(values.get("psi_threshold", cls.psi)), ks=float(values.get("ks_threshold", cls.ks)),
                   prediction_psi=float(values.get("prediction_psi_threshold", cls.prediction_psi)),
                   invalid_rate=float(values.get("invalid_rate_threshold", cls.invalid_rate)))


def bin_fractions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """The share of ``values`` in each of the ``len(edges) + 1`` bins."""
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=len(edges) + 1)
    return counts / max(values.size, 1)


def psi(expected: np.ndarray, actual: np.ndarray, floor: float = PSI_FLOOR) -> float:
    """Population stability index: sum over bins of (actual - expected) * ln(actual / expected)."""
    expected = np.maximum(np.asarray(expected, dtype=np.float64), floor)
    actual = np.maximum(np.asarray(actual, dtype=np.float64), floor)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def ks_statistic(sample: np.ndarray, reference: np.ndarray) -> float:
    """sup |F_sample - F_reference| over every observed value (both empirical CDFs right-continuous)."""
    sample = np.sort(np.asarray(sample, dtype=np.float64))
    reference = np.sort(np.asarray(reference, dtype=np.float64))
    points = np.concatenate([sample, reference])
    cdf_sample = np.searchsorted(sample, points, side="right") / sample.size
    cdf_reference = np.searchsorted(reference, points, side="right") / reference.size
    return float(np.max(np.abs(cdf_sample - cdf_reference)))


def column_drift(values: np.ndarray, reference: Mapping[str, Any], *, psi_threshold: float,
                 ks_threshold: float) -> dict[str, Any]:
    """PSI, KS, missing rate and the drift verdict of one column; ``None`` statistics when it has no finite value."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    result: dict[str, Any] = {"count": int(finite.size),
                              "missing_rate": float(1 - finite.size / values.size) if values.size else None}
    if finite.size == 0:
        return {**result, "psi": None, "ks": None, "drift": False, "status": "no data"}
    edges = np.asarray(reference["edges"], dtype=np.float64)
    value_psi = psi(np.asarray(reference["fractions"]), bin_fractions(finite, edges))
    value_ks = ks_statistic(finite, np.asarray(reference["sample"], dtype=np.float64))
    return {**result, "psi": round(value_psi, 6), "ks": round(value_ks, 6),
            "min": float(finite.min()), "max": float(finite.max()),
            "drift": bool(value_psi >= psi_threshold or value_ks >= ks_threshold), "status": "ok"}


def drift_report(features: np.ndarray, scores: np.ndarray, baseline: Mapping[str, Any], *, thresholds: Thresholds,
                 rows_seen: int, invalid: Mapping[str, int]) -> dict[str, Any]:
    """The window's report: per-feature and prediction drift, the invalid-record rate, and the verdict.

    ``features`` holds only the rows that were read whole (one column per baseline feature, NaN where a value
    was missing); ``rows_seen`` counts every row or record met, readable or not, so the invalid rate is never
    computed over the survivors only.
    """
    names = list(baseline["features"])
    invalid_rows = int(sum(invalid.values()))
    if rows_seen == 0:
        return {"status": "no data", "rows_seen": 0, "rows_valid": 0, "invalid_rate": None, "invalid": dict(invalid),
                "features": {name: {"psi": None, "ks": None, "drift": False, "status": "no data"} for name in names},
                "prediction": {"psi": None, "ks": None, "drift": False, "status": "no data"}, "drift": False,
                "drifted_features": []}
    features = np.asarray(features, dtype=np.float64).reshape(-1, len(names))
    report_features = {name: column_drift(features[:, index], baseline["features"][name],
                                          psi_threshold=thresholds.psi, ks_threshold=thresholds.ks)
                       for index, name in enumerate(names)}
    prediction = column_drift(np.asarray(scores, dtype=np.float64), baseline["prediction"],
                              psi_threshold=thresholds.prediction_psi, ks_threshold=thresholds.ks)
    invalid_rate = invalid_rows / rows_seen
    drifted = [name for name, result in report_features.items() if result["drift"]]
    return {"status": "ok", "rows_seen": int(rows_seen), "rows_valid": int(features.shape[0]),
            "invalid_rate": round(invalid_rate, 6), "invalid": dict(invalid),
            "invalid_breach": bool(invalid_rate >= thresholds.invalid_rate),
            "features": report_features, "prediction": prediction,
            "drift": bool(drifted or prediction["drift"]), "drifted_features": drifted}
