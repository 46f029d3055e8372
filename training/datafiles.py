"""Writes the data files next to a model: the Model Monitor baseline and the
request samples used by demos, tests and benchmarks."""

import json
from pathlib import Path

import numpy as np

from training.data import LABEL_NAME, Dataset

BASELINE_FILE = "baseline.csv"
BASELINE_ROWS = 5000
SAMPLES_FOLDER = "samples"
REQUEST_NEGATIVES = 3
REQUEST_POSITIVES = 2
LABELED_NEGATIVES = 90
LABELED_POSITIVES = 10
# Features are rounded to at most 4 decimals when generated; 10 significant
# digits print them exactly and drop float noise such as 12.340000000000002.
_SIGNIFICANT_DIGITS = 10


def format_number(value: float) -> str:
    """The one textual form of a feature value in every CSV the build writes."""
    return f"{float(value):.{_SIGNIFICANT_DIGITS}g}"


def _json_number(value: float) -> float:
    return float(format_number(value))


def _csv_line(values: list[str]) -> str:
    return ",".join(values) + "\n"


def write_baseline(
    dataset: Dataset, train_rows: np.ndarray, feature_names: tuple[str, ...], folder: Path
) -> Path:
    """Training rows with a header of feature names and no label column: what a
    Model Monitor data-quality baselining job expects."""
    path = folder / BASELINE_FILE
    lines = [_csv_line(list(feature_names))]
    for row in dataset.features[train_rows[:BASELINE_ROWS]]:
        lines.append(_csv_line([format_number(value) for value in row]))
    path.write_text("".join(lines), encoding="utf-8", newline="")
    return path


def _first_of_each_class(
    labels: np.ndarray, rows: np.ndarray, *, negatives: int, positives: int
) -> np.ndarray:
    """The first ``negatives`` legitimate and ``positives`` fraud rows, in row order.
    Fraud is rare; picking by class guarantees demos show both outcomes."""
    chosen = np.concatenate(
        [rows[labels[rows] == 0][:negatives], rows[labels[rows] == 1][:positives]]
    )
    if len(chosen) != negatives + positives:
        raise ValueError("not enough rows of each class for the samples")
    return np.sort(chosen)


def write_samples(
    dataset: Dataset, test_rows: np.ndarray, feature_names: tuple[str, ...], folder: Path
) -> list[Path]:
    """Hold-out rows as request bodies in every format the runtimes accept."""
    samples = folder / SAMPLES_FOLDER
    samples.mkdir()
    request_rows = _first_of_each_class(
        dataset.labels, test_rows, negatives=REQUEST_NEGATIVES, positives=REQUEST_POSITIVES
    )
    request = [[_json_number(v) for v in dataset.features[i]] for i in request_rows]

    request_csv = samples / "request.csv"
    request_csv.write_text(
        "".join(_csv_line([format_number(v) for v in row]) for row in request),
        encoding="utf-8",
        newline="",
    )
    request_json = samples / "request.json"
    request_json.write_text(json.dumps({"instances": request}) + "\n", encoding="utf-8")
    rows_jsonl = samples / "rows.jsonl"
    rows_jsonl.write_text(
        "".join(json.dumps({"features": row}) + "\n" for row in request), encoding="utf-8"
    )

    labeled_rows = _first_of_each_class(
        dataset.labels, test_rows, negatives=LABELED_NEGATIVES, positives=LABELED_POSITIVES
    )
    lines = [_csv_line(["id", *feature_names, LABEL_NAME])]
    for i in labeled_rows:
        values = [format_number(v) for v in dataset.features[i]]
        lines.append(_csv_line([f"txn-{i:06d}", *values, str(int(dataset.labels[i]))]))
    labeled_csv = samples / "labeled.csv"
    labeled_csv.write_text("".join(lines), encoding="utf-8", newline="")
    return [request_csv, request_json, rows_jsonl, labeled_csv]
