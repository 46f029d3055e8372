"""The built-in drift engine's reference statistics, computed once at packaging time (pure numpy).

``build_drift_baseline(features, feature_names, scores)`` returns the ``drift_baseline.json`` document
(schema_version 1) that the drift job compares every window against:

* ``edges``: the interior decile edges of the finite reference values, strictly increasing (a feature
  with few distinct values, e.g. a 0/1 flag, keeps only its distinct edges);
* ``fractions``: the reference share per bin, ``len(edges) + 1`` bins ``(-inf, e1], (e1, e2], ..., (ek, +inf)``;
* ``missing_rate``: the share of NaN/Inf reference values; ``min``/``max`` of the finite ones;
* ``sample``: at most 1000 finite reference values, sorted, taken at evenly spaced ranks (a quantile
  sketch: deterministic, and it keeps the distribution's shape for the two-sample KS statistic).

The same binning convention (numpy ``searchsorted(edges, x, side="left")``) is used by the drift job in
``ml_constructs/monitoring/drift_job/runtime/drift_stats.py``; both must change together.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from training import contract

SCHEMA_VERSION = 1
FILE_NAME = contract.DRIFT_BASELINE
DECILES = tuple(q / 10 for q in range(1, 10))
MAX_SAMPLE = 1000
#: Every value written is rounded to this many significant digits, so last-bit differences between BLAS
#: kernels in the scores never reach the file (the same commit writes the same bytes on every CPU).
SIGNIFICANT_DIGITS = 10


def _round(values: np.ndarray) -> np.ndarray:
    """Round to SIGNIFICANT_DIGITS significant digits through their decimal text (exact and portable)."""
    return np.array([float(f"{value:.{SIGNIFICANT_DIGITS}g}") for value in np.asarray(values).tolist()],
                    dtype=np.float64)


class DriftBaselineError(ValueError):
    """The reference data cannot make a baseline; the message says why."""


def reference_statistics(values: np.ndarray) -> dict[str, Any]:
    """Bins, fractions, missing rate, range and a sorted sample of one column (NaN/Inf count as missing)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    finite = np.sort(values[np.isfinite(values)])
    if finite.size == 0:
        raise DriftBaselineError("a column has no finite reference value")
    # Fractions are counted against the rounded edges: a value would have to lie within a kernel's last-bit
    # difference of a 10-digit decimal edge to land in another bin on another CPU.
    edges = np.unique(_round(np.quantile(finite, DECILES)))
    bins = np.searchsorted(edges, finite, side="left")
    fractions = np.bincount(bins, minlength=edges.size + 1) / finite.size
    ranks = np.unique(np.round(np.linspace(0, finite.size - 1, min(MAX_SAMPLE, finite.size))).astype(np.int64))
    return {"edges": [float(edge) for edge in edges],
            "fractions": [float(fraction) for fraction in _round(fractions)],
            "missing_rate": float(_round([1.0 - finite.size / values.size])[0]),
            "min": float(_round(finite[:1])[0]), "max": float(_round(finite[-1:])[0]),
            "sample": [float(value) for value in _round(finite[ranks])]}


def build_drift_baseline(features: np.ndarray, feature_names: Sequence[str], scores: np.ndarray) -> dict[str, Any]:
    """The drift baseline of a reference sample (rows x features) and the model's positive-class scores on it."""
    features = np.asarray(features, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    names = list(feature_names)
    if features.ndim != 2 or features.shape[0] == 0:
        raise DriftBaselineError(f"features must be a non-empty 2-D array, got shape {features.shape}")
    if features.shape[1] != len(names) or len(set(names)) != len(names):
        raise DriftBaselineError(f"{features.shape[1]} feature columns but {len(names)} names (names must be unique)")
    if scores.shape[0] != features.shape[0]:
        raise DriftBaselineError(f"{scores.shape[0]} scores for {features.shape[0]} rows")
    statistics = {}
    for index, name in enumerate(names):
        try:
            statistics[name] = reference_statistics(features[:, index])
        except DriftBaselineError:
            raise DriftBaselineError(f"feature {name!r} has no finite reference value") from None
    try:
        prediction = reference_statistics(scores)
    except DriftBaselineError:
        raise DriftBaselineError("the scores have no finite value") from None
    return {"schema_version": SCHEMA_VERSION, "n_rows": int(features.shape[0]), "features": statistics,
            "prediction": prediction}


def write_drift_baseline(document: dict, folder: Path) -> Path:
    """Write the document as canonical JSON (sorted keys, trailing newline)."""
    path = folder / FILE_NAME
    path.write_text(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    return path
