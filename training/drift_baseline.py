"""drift_baseline.json: the reference distribution of every feature and of the model's score.

Written next to the model at packaging time; the drift runtime compares live traffic with it.
Pure numpy and deterministic: every value written is rounded to :data:`SIGNIFICANT_DIGITS` significant
digits, so last-bit differences between BLAS kernels in the scores never reach the file.

Layout (schema_version 1)::

    {"schema_version": 1, "n_rows": int,
     "features": {"<name>": {"edges": [...], "fractions": [...], "missing_rate": float,
                             "min": float, "max": float, "sample": [...]}},
     "prediction": {same fields, for the positive-class score}}

``edges`` are the interior decile edges (strictly increasing, duplicates removed); ``fractions`` has
``len(edges) + 1`` entries for the bins ``(-inf, e1], (e1, e2], ..., (ek, +inf)``; ``sample`` is at most
:data:`SAMPLE_SIZE` finite reference values, evenly spaced in sorted order, sorted.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

SCHEMA_VERSION = 1
FILE_NAME = "drift_baseline.json"
SAMPLE_SIZE = 1000
SIGNIFICANT_DIGITS = 10
FRACTION_DIGITS = 12
_DECILES = np.arange(1, 10) / 10.0


def _round(values: np.ndarray) -> np.ndarray:
    """Round to SIGNIFICANT_DIGITS significant digits through their decimal text (exact and portable)."""
    return np.array([float(f"{value:.{SIGNIFICANT_DIGITS}g}") for value in values.tolist()], dtype=np.float64)


def column_summary(values: np.ndarray) -> dict:
    """The reference distribution of one column (NaN and infinities count as missing)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    finite_mask = np.isfinite(values)
    missing_rate = float(1.0 - finite_mask.mean()) if len(values) else 0.0
    finite = np.sort(values[finite_mask])
    if not len(finite):
        return {"edges": [], "fractions": [0.0], "missing_rate": round(missing_rate, FRACTION_DIGITS),
                "min": None, "max": None, "sample": []}
    edges = np.unique(_round(np.quantile(finite, _DECILES)))
    # Counted against the rounded edges: a value would have to lie within a BLAS kernel's last-bit
    # difference of a 10-digit decimal edge to land in another bin on another CPU.
    # searchsorted 'right' counts the values <= each edge, so bin i is (e_{i-1}, e_i].
    counts = np.diff(np.concatenate([[0], np.searchsorted(finite, edges, side="right"), [len(finite)]]))
    fractions = [round(float(count) / len(finite), FRACTION_DIGITS) for count in counts]
    if len(finite) > SAMPLE_SIZE:
        picks = np.round(np.linspace(0, len(finite) - 1, SAMPLE_SIZE)).astype(np.int64)
        sample = _round(finite[picks])
    else:
        sample = _round(finite)
    return {
        "edges": edges.tolist(),
        "fractions": fractions,
        "missing_rate": round(missing_rate, FRACTION_DIGITS),
        "min": float(_round(finite[:1])[0]),
        "max": float(_round(finite[-1:])[0]),
        "sample": sample.tolist(),
    }


def build_drift_baseline(features: np.ndarray, feature_names: list[str], scores: np.ndarray) -> dict:
    """The drift baseline document for a feature matrix (rows x features) and the model's scores."""
    features = np.asarray(features, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if features.ndim != 2 or features.shape[1] != len(feature_names):
        raise ValueError(f"features must be 2-D with {len(feature_names)} columns, got shape {features.shape}")
    if len(scores) != features.shape[0]:
        raise ValueError(f"{len(scores)} scores for {features.shape[0]} rows")
    return {
        "schema_version": SCHEMA_VERSION,
        "n_rows": int(features.shape[0]),
        "features": {name: column_summary(features[:, index]) for index, name in enumerate(feature_names)},
        "prediction": column_summary(scores),
    }


def write_drift_baseline(document: dict, folder: Path) -> Path:
    """Write the document as canonical JSON (sorted keys, trailing newline)."""
    path = folder / FILE_NAME
    path.write_text(json.dumps(document, sort_keys=True, separators=(",", ":")) + "\n", encoding="utf-8")
    return path
