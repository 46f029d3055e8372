"""Writes the data files next to a model: the Model Monitor baseline and the
request samples used by demos, tests and benchmarks."""

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from training import contract

BASELINE_FILE = contract.BASELINE_CSV
BASELINE_ROWS = 5000
SAMPLES_FOLDER = "samples"
REQUEST_NEGATIVES = 3
REQUEST_POSITIVES = 2
LABELED_NEGATIVES = 90
LABELED_POSITIVES = 10
# Features are rounded to at most 4 decimals when generated; 10 significant
# digits print them exactly and drop float noise such as 12.340000000000002.
_SIGNIFICANT_DIGITS = 10


@dataclass(frozen=True, kw_only=True)
class Rows:
    """Feature rows (float64, columns in the model's order), their 0/1 labels when known,
    and a number per row that names it in labeled.csv's id column."""

    features: np.ndarray
    labels: Optional[np.ndarray] = None
    row_numbers: Optional[np.ndarray] = None

    def numbers(self) -> np.ndarray:
        return np.arange(len(self.features)) if self.row_numbers is None else self.row_numbers


def format_number(value: float) -> str:
    """The one textual form of a feature value in every CSV the build writes."""
    return f"{float(value):.{_SIGNIFICANT_DIGITS}g}"


def _json_number(value: float) -> float:
    return float(format_number(value))


def _csv_line(values: list[str]) -> str:
    return ",".join(values) + "\n"


def write_baseline(features: np.ndarray, feature_names: tuple[str, ...], folder: Path) -> Path:
    """The first BASELINE_ROWS rows with a header of feature names and no label
    column: what a Model Monitor data-quality baselining job expects (and what the
    benchmarks read as rows of features)."""
    path = folder / BASELINE_FILE
    lines = [_csv_line(list(feature_names))]
    for row in features[:BASELINE_ROWS]:
        lines.append(_csv_line([format_number(value) for value in row]))
    path.write_text("".join(lines), encoding="utf-8", newline="")
    return path


def _first_of_each_class(labels: np.ndarray, *, negatives: int, positives: int) -> np.ndarray:
    """Indices of the first ``negatives`` class-0 and ``positives`` class-1 rows, in row
    order (fewer when the data has fewer). The positive class is often rare; picking by
    class makes demos show both outcomes."""
    return np.sort(np.concatenate([np.flatnonzero(labels == 0)[:negatives],
                                   np.flatnonzero(labels == 1)[:positives]]))


def write_samples(rows: Rows, feature_names: tuple[str, ...], label_name: Optional[str], folder: Path,
                  *, id_prefix: str = "row") -> list[Path]:
    """Rows as request bodies in every format the runtimes accept, and a labeled
    upload (samples/labeled.csv) when labels are known."""
    samples = folder / SAMPLES_FOLDER
    samples.mkdir()
    if rows.labels is None:
        request_rows = np.arange(min(len(rows.features), REQUEST_NEGATIVES + REQUEST_POSITIVES))
    else:
        request_rows = _first_of_each_class(rows.labels, negatives=REQUEST_NEGATIVES, positives=REQUEST_POSITIVES)
    request = [[_json_number(v) for v in rows.features[i]] for i in request_rows]

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
    written = [request_csv, request_json, rows_jsonl]
    if rows.labels is None or label_name is None:
        return written

    labeled_rows = _first_of_each_class(rows.labels, negatives=LABELED_NEGATIVES, positives=LABELED_POSITIVES)
    numbers = rows.numbers()
    lines = [_csv_line(["id", *feature_names, label_name])]
    for i in labeled_rows:
        values = [format_number(v) for v in rows.features[i]]
        lines.append(_csv_line([f"{id_prefix}-{int(numbers[i]):06d}", *values, str(int(rows.labels[i]))]))
    labeled_csv = samples / "labeled.csv"
    labeled_csv.write_text("".join(lines), encoding="utf-8", newline="")
    return [*written, labeled_csv]
