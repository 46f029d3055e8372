"""Model Monitor record preprocessor: one captured request -> one flat record per feature row.

Model Monitor's data-quality container calls ``preprocess_handler(inference_record[, logger])`` for
every captured request. Without a preprocessor it analyses the response columns followed by the
request columns (AWS's example preprocessor rebuilds exactly ``output + "," + input``), so the
probability the endpoint returns would sit where the baseline has its first feature. This handler
keeps the request only and names each value after its feature, the names the baseline's header
carries, so captured data and baseline line up column for column:

* ``text/csv`` requests: one row per line (lines end at ``\n``, as the endpoint's), no header;
* ``application/json`` requests: ``{"instances": [[...], ...]}``, a bare list of rows, or one flat row;
* rows that the endpoint itself would refuse (wrong width, non-numeric) are skipped: a CSV value is a
  number only in ASCII without ``_`` (``float`` alone would take ``1_0`` and Arabic-Indic digits), a
  JSON value only as a JSON number, as the endpoint parses them;
* a malformed capture (invalid base64, not UTF-8, JSON nested past the decoder's recursion limit,
  fields of unexpected types) is skipped too, never raised: one bad record must not fail the hourly
  analysis of every other record.

``FEATURE_NAMES`` is rendered at synth from the model's ``metadata.json``; this file runs inside the
analyzer container with the standard library only.
"""
from __future__ import annotations

import base64
import json
import math

FEATURE_NAMES: tuple = ()  # rendered at synth from metadata.json
BOM = "\ufeff"


def _log(logger, message):
    if logger is not None:
        logger.info(message)


def _text(captured):
    """The captured body as text, or None when it is not text (bad base64, not UTF-8, not a string).

    A leading byte order mark is dropped: the endpoint ignores it in JSON (json.loads of bytes) and CSV.
    """
    data = getattr(captured, "data", None) or ""
    if getattr(captured, "encoding", "") == "BASE64":
        try:
            data = base64.b64decode(data, validate=True).decode("utf-8")
        except (ValueError, TypeError):  # binascii.Error and UnicodeDecodeError are ValueErrors
            return None
    if not isinstance(data, str):
        return None
    return data[1:] if data.startswith(BOM) else data


def _rows_from_json(text):
    payload = json.loads(text)
    if isinstance(payload, dict):
        payload = payload.get("instances")
    if isinstance(payload, list) and payload and not isinstance(payload[0], list):
        payload = [payload]
    return payload if isinstance(payload, list) else []


def _rows_from_csv(text):
    # The endpoint's lines: split at "\n" only (a "\r" before it is whitespace around the last value).
    # str.splitlines() would also split at a bare "\r" (and \x0b, \x1c, U+2028...), which the endpoint
    # reads as part of a value, so it would find rows in requests the endpoint refused.
    return [line.split(",") for line in text.split("\n") if line.strip()]


def _csv_number(raw):
    if not isinstance(raw, str) or "_" in raw or not raw.isascii():
        raise ValueError(raw)
    return float(raw)


def _json_number(raw):
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        raise ValueError(raw)
    return float(raw)  # OverflowError for an integer past float's range: the endpoint refuses it as infinite


def _record(row, names, number):
    if not isinstance(row, list) or len(row) != len(names):
        return None
    values = []
    for raw in row:
        try:
            value = number(raw)
        except (ValueError, OverflowError):
            return None
        if not math.isfinite(value):
            return None
        values.append(value)
    return dict(zip(names, values))


def records(captured_input, names=None):
    """The feature records in one captured request (empty when it holds none the model would accept)."""
    names = tuple(names if names is not None else FEATURE_NAMES)
    text = _text(captured_input)
    if text is None or not text.strip():
        return []
    kind = getattr(captured_input, "observed_content_type", "") or ""
    kind = kind.lower() if isinstance(kind, str) else ""
    looks_json = getattr(captured_input, "encoding", "") == "JSON" or "json" in kind or text.lstrip()[:1] in "[{"
    try:
        rows = _rows_from_json(text) if looks_json else _rows_from_csv(text)
    except (ValueError, RecursionError):  # a deeply nested body exhausts the JSON decoder's recursion
        return []
    number = _json_number if looks_json else _csv_number
    found = [_record(row, names, number) for row in rows]
    return [record for record in found if record is not None]


def preprocess_handler(inference_record, logger=None):
    """Model Monitor's entry point: a list of ``{feature: value}`` records (an empty list skips the request)."""
    found = records(inference_record.endpoint_input)
    if not found:
        _log(logger, "skipped a captured request with no valid feature row")
    return found
