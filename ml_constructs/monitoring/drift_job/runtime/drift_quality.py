"""Model quality from delayed labels: AUC, accuracy and precision at the decision threshold.

Labels arrive in ``ops.labels``' ground-truth format, one JSON object per line::

    {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "<inference id>"}, ...}

and are joined to captured predictions by inference id (the id passed to InvokeEndpoint, or the
serverless sample's ``inference_id``). Unreadable label lines are counted, never raised.
"""
from __future__ import annotations

import json
from typing import Any, Iterable, Mapping

import numpy as np


def read_labels(lines: Iterable[bytes | str]) -> tuple[dict[str, int], int]:
    """``({inference id: 0|1}, unreadable lines)``; a later label for the same id replaces an earlier one."""
    labels, unreadable = {}, 0
    for line in lines:
        if not (line.strip() if isinstance(line, (str, bytes)) else line):
            continue
        try:
            record = json.loads(line)
            identifier = record["eventMetadata"]["eventId"]
            value = str(record["groundTruthData"]["data"]).strip()
        except (ValueError, RecursionError, KeyError, TypeError):
            unreadable += 1
            continue
        if not isinstance(identifier, str) or value not in ("0", "1"):
            unreadable += 1
            continue
        labels[identifier] = int(value)
    return labels, unreadable


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties); None with one class only."""
    labels = np.asarray(labels, dtype=np.int64)
    scores = np.asarray(scores, dtype=np.float64)
    positives = int(labels.sum())
    negatives = labels.size - positives
    if positives == 0 or negatives == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(scores.size, dtype=np.float64)
    sorted_scores = scores[order]
    # average rank over each run of tied scores
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], scores.size]
    average = (starts + ends + 1) / 2.0  # ranks are 1-based: mean of start+1..end
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[labels == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def quality_report(predictions: Mapping[str, float], labels: Mapping[str, int], *, threshold: float) -> dict[str, Any]:
    """Quality over the labelled inferences that have a captured prediction."""
    joined = [(labels[key], predictions[key]) for key in labels if key in predictions]
    result: dict[str, Any] = {"labels": len(labels), "matched": len(joined), "threshold": threshold}
    if not joined:
        return {**result, "status": "no data", "auc": None, "accuracy": None, "precision": None}
    truth = np.asarray([label for label, _ in joined], dtype=np.int64)
    scores = np.asarray([score for _, score in joined], dtype=np.float64)
    predicted = scores >= threshold
    flagged = int(predicted.sum())
    true_positive = int((predicted & (truth == 1)).sum())
    value_auc = auc(truth, scores)
    return {**result, "status": "ok", "auc": None if value_auc is None else round(value_auc, 6),
            "accuracy": round(float((predicted == (truth == 1)).mean()), 6),
            "precision": round(true_positive / flagged, 6) if flagged else None}
