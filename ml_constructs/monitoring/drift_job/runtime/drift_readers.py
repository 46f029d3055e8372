"""Readers that turn captured traffic into one window of feature rows, scores and inference ids.

Every reader feeds a :class:`WindowBuilder`, which counts every row it is offered and why it is invalid:

* ``unreadable``: a line or body that is not JSON / not UTF-8 / not base64, or fields of the wrong type;
* ``wrong_width``: a row with another number of values than the model has features (dropped whole);
* ``non_numeric``: a value that is not a number (the row is kept, the value becomes missing);
* ``not_finite``: NaN or +-Inf (the row is kept, the value becomes missing).

Formats:

* SageMaker data capture (real-time): JSON Lines ``{"captureData": {"endpointInput": {...}, "endpointOutput":
  {...}}, "eventMetadata": {"inferenceId": ...}}``; bodies ``text/csv`` (one row per line, no header) or
  ``application/json`` (``{"instances": [[...]]}``, a list of rows or one flat row), encoded ``CSV``, ``JSON``
  or ``BASE64``; outputs a probability per line (CSV) or ``{"predictions": [{"probability": p}, ...]}``.
* Serverless samples: JSON Lines ``{"inference_id": str, "features": [numbers], "score": number}``.
* Batch Transform: the input CSV objects (``<id>,<features...>`` per line) and their ``.out`` objects
  (``<id>,<score>`` per line), joined by id.
* A local CSV with a header row naming the features (``ops.monitor drift``); columns are matched by name.
"""
from __future__ import annotations

import array
import base64
import binascii
import json
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

REASONS = ("unreadable", "wrong_width", "non_numeric", "not_finite")


@dataclass
class WindowBuilder:
    """The rows read so far, flat in C doubles (8 bytes a value: 1M rows x 12 features is 96 MB, where lists of
    Python floats would take about 450 MB), with their scores (NaN when unknown) and inference ids."""

    n_features: int
    rows: array.array = field(default_factory=lambda: array.array("d"))
    scores: array.array = field(default_factory=lambda: array.array("d"))
    ids: list = field(default_factory=list)
    unreadable_objects: list = field(default_factory=list)
    rows_seen: int = 0
    invalid: dict = field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    def unreadable(self, count: int = 1) -> None:
        self.rows_seen += count
        self.invalid["unreadable"] += count

    def add(self, values: Sequence[Any], *, score: float | None = None, inference_id: str | None = None,
            json_values: bool = False) -> None:
        """Offer one row; ``json_values`` accepts JSON numbers only, otherwise text is parsed as in a CSV."""
        self.rows_seen += 1
        if not isinstance(values, (list, tuple)) or len(values) != self.n_features:
            self.invalid["wrong_width"] += 1
            return
        row = _fast_row(values, json_values)
        if row is not None:
            self.rows.extend(row)
            self.scores.append(math.nan if score is None else score)
            self.ids.append(inference_id)
            return
        row, problem = [], None
        for raw in values:
            value = _number(raw, json_values)
            if value is None:
                problem = problem or "non_numeric"
                value = math.nan
            elif not math.isfinite(value):
                problem = problem or "not_finite"
                value = math.nan
            row.append(value)
        if problem:
            self.invalid[problem] += 1
        self.rows.extend(row)
        self.scores.append(math.nan if score is None else score)
        self.ids.append(inference_id)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        features = np.frombuffer(self.rows, dtype=np.float64).reshape(-1, self.n_features) if self.rows else \
            np.empty((0, self.n_features))
        return features.copy(), np.frombuffer(self.scores, dtype=np.float64).copy() if self.scores else np.empty(0)


def _fast_row(values: Sequence[Any], json_values: bool) -> list | None:
    """The row as floats when every value is a plain finite number (the common case, ~3x faster), else None.

    None sends the row down the value-by-value path, which classifies each problem exactly."""
    try:
        if json_values:
            if not all(type(raw) is float or type(raw) is int for raw in values):
                return None
        elif not all(raw.isascii() and "_" not in raw for raw in values):
            return None
        row = [float(raw) for raw in values]
    except (ValueError, OverflowError, AttributeError):
        return None
    total = sum(row)
    # NaN or +-Inf anywhere makes the sum NaN/Inf; an overflowing sum of finite values only costs the slow path.
    return row if total - total == 0.0 else None


def _number(raw: Any, json_values: bool) -> float | None:
    if json_values:
        if isinstance(raw, bool) or not isinstance(raw, (int, float)):
            return None
        try:
            return float(raw)
        except OverflowError:
            return math.inf
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text or "_" in text or not text.isascii():  # float() alone takes 1_0 and other scripts' digits
        return None
    try:
        return float(text)
    except ValueError:
        return None


def _score(raw: Any) -> float | None:
    value = _number(raw, isinstance(raw, (int, float)) and not isinstance(raw, bool))
    return value if value is not None and math.isfinite(value) else None


def _body_text(captured: Any) -> str | None:
    if not isinstance(captured, dict):
        return None
    data = captured.get("data")
    if not isinstance(data, str):
        return None
    if captured.get("encoding") == "BASE64":
        try:
            return base64.b64decode(data, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
    return data


def _input_rows(captured: dict) -> tuple[list, bool] | None:
    """(rows, json_values) of a captured request body, or None when it cannot be read."""
    text = _body_text(captured)
    if text is None:
        return None
    kind = str(captured.get("observedContentType") or "").lower()
    if "json" in kind or captured.get("encoding") == "JSON" or text.lstrip()[:1] in ("[", "{"):
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            return None
        if isinstance(payload, dict):
            payload = payload.get("instances")
        if isinstance(payload, list) and payload and not isinstance(payload[0], list):
            payload = [payload]
        return (payload, True) if isinstance(payload, list) else None
    return [line.split(",") for line in text.splitlines() if line.strip()], False


def _output_scores(captured: Any) -> list | None:
    text = _body_text(captured)
    if text is None:
        return None
    stripped = text.lstrip()
    if stripped[:1] in ("[", "{"):
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            return None
        predictions = payload.get("predictions") if isinstance(payload, dict) else payload
        if not isinstance(predictions, list):
            return None
        return [_score(item.get("probability")) if isinstance(item, dict) else _score(item) for item in predictions]
    return [_score(line.split(",")[-1]) for line in text.splitlines() if line.strip()]


def read_capture_lines(lines: Iterable[bytes | str], window: WindowBuilder) -> None:
    """SageMaker data-capture JSON Lines into ``window`` (scores kept when the response matches the request)."""
    for line in lines:
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                window.unreadable()
                continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            capture = record["captureData"]
            request = capture["endpointInput"]
        except (ValueError, RecursionError, KeyError, TypeError):
            window.unreadable()
            continue
        parsed = _input_rows(request)
        if parsed is None or not parsed[0]:
            window.unreadable()
            continue
        rows, json_values = parsed
        scores = _output_scores(capture.get("endpointOutput")) or []
        if len(scores) != len(rows):
            scores = [None] * len(rows)
        metadata = record.get("eventMetadata") if isinstance(record.get("eventMetadata"), dict) else {}
        inference_id = metadata.get("inferenceId") if len(rows) == 1 else None
        for row, score in zip(rows, scores):
            window.add(row, score=score, inference_id=inference_id if isinstance(inference_id, str) else None,
                       json_values=json_values)


def read_sample_lines(lines: Iterable[bytes | str], window: WindowBuilder) -> None:
    """Serverless samples, one ``{"inference_id", "features", "score"}`` object per line."""
    for line in lines:
        try:
            record = json.loads(line)
            features = record["features"]
        except (ValueError, RecursionError, KeyError, TypeError):
            if (line.strip() if isinstance(line, (str, bytes)) else True):
                window.unreadable()
            continue
        inference_id = record.get("inference_id")
        window.add(features, score=_score(record.get("score")), json_values=True,
                   inference_id=inference_id if isinstance(inference_id, str) else None)


def read_batch(input_text: str, output_text: str | None, window: WindowBuilder) -> None:
    """One Batch Transform input object (``id,features...``) and its ``.out`` (``id,score``), joined by id."""
    scores: dict[str, float | None] = {}
    for line in (output_text or "").splitlines():
        identifier, _, score = line.partition(",")
        if identifier.strip():
            scores[identifier.strip()] = _score(score)
    for line in input_text.splitlines():
        if not line.strip():
            continue
        identifier, _, rest = line.partition(",")
        window.add(rest.split(",") if rest else [], score=scores.get(identifier.strip()),
                   inference_id=identifier.strip() or None)


def read_header_csv(text: str, feature_names: Sequence[str], window: WindowBuilder) -> None:
    """A CSV whose header names the features (any order, extra columns ignored); rows offered by name."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return
    header = [name.strip() for name in lines[0].split(",")]
    missing = [name for name in feature_names if name not in header]
    if missing:
        raise ValueError(f"the CSV header lacks feature(s) {', '.join(missing)}")
    positions = [header.index(name) for name in feature_names]
    score_position = header.index("score") if "score" in header else None
    for line in lines[1:]:
        values = line.split(",")
        if len(values) != len(header):
            window.add([], json_values=False)
            continue
        score = _score(values[score_position]) if score_position is not None else None
        window.add([values[position] for position in positions], score=score)
