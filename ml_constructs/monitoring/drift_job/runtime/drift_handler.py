"""The drift job's Lambda entry point: read one window from S3, compare it to the baseline, publish, report.

Configuration (environment, set by the DriftMonitor construct):

``SOURCE_FORMAT``   ``capture`` (SageMaker data capture), ``samples`` (serverless) or ``batch``
``SOURCE_BUCKET``/``SOURCE_PREFIX``   where the captured objects are
``REPORT_BUCKET``/``REPORT_PREFIX``   where each window's ``report.json`` and prediction index go
``LABELS_BUCKET``/``LABELS_PREFIX``   ground-truth labels (``ops.labels``); optional
``OUTPUT_BUCKET``/``OUTPUT_PREFIX``   batch only: where the transform's ``.out`` files are (default: the source bucket)
``BASELINE_PATH``   drift_baseline.json (shipped in the function's baseline layer under /opt)
``METRIC_NAMESPACE``  ``SETTINGS``  JSON: thresholds, ``decision_threshold``, ``window_minutes``, ``label_lookback_hours``

Event (all optional): ``{"window_end" or "scheduled_time": ISO time (default now), "window_minutes": int,
"keys": [object keys to read instead of listing the window], "input_prefix"/"output_prefix": a Batch Transform
run's input and output prefixes (``<output_prefix><key relative to input_prefix>.out``; default OUTPUT_PREFIX)}``.
An object belongs to the window when its LastModified falls in ``[end - window, end)``.

A batch run (the step after a Batch Transform, ``ml_constructs.batch.scoring``) sends ``{"input_uri":
"s3://<source bucket>/<prefix>/", "output_uri": "s3://<output bucket>/<run prefix>/", "window_end": ...}``: the
job then reads every object under the input prefix, whatever its age (the transform read them all), joins each to
``<output prefix><key relative to the input prefix>.out``, and stamps its metrics at ``window_end`` (the run time)
rather than at the window's start, so a daily alarm sees the night's datapoint. URIs outside the configured
buckets are refused with a one-line error (the job may not read them anyway).
"""
from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from typing import Any, Iterable


import drift_stats as drift
import drift_emf as emf
import drift_quality as quality
import drift_readers as readers

DEFAULT_WINDOW_MINUTES = 60
DEFAULT_LABEL_LOOKBACK_HOURS = 24 * 7


def _settings() -> dict[str, Any]:
    return json.loads(os.environ.get("SETTINGS") or "{}")


def _window_end(event: dict) -> dt.datetime:
    text = event.get("window_end") or event.get("scheduled_time")
    if isinstance(text, str):
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    return dt.datetime.now(dt.timezone.utc).replace(second=0, microsecond=0)


def list_keys(s3: Any, bucket: str, prefix: str, start: dt.datetime | None, end: dt.datetime | None) -> list[str]:
    """Keys under ``prefix`` modified in ``[start, end)``; every key when ``start`` is None."""
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [item["Key"] for item in page.get("Contents", [])
                 if start is None or start <= item["LastModified"] < end]
    return sorted(keys)


def split_uri(uri: Any, *, expected_bucket: str, what: str) -> str:
    """The key prefix of ``s3://<expected_bucket>/<prefix>``; ValueError naming the problem otherwise."""
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise ValueError(f"{what} {uri!r} is not an s3:// URI")
    bucket, _, prefix = uri[len("s3://"):].partition("/")
    if bucket != expected_bucket:
        raise ValueError(f"{what} {uri} is not in the monitored bucket {expected_bucket}")
    return prefix


SOURCE_FORMATS = ("capture", "samples", "batch")


def _read(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def _lines(body: bytes) -> Iterable[bytes]:
    return body.splitlines()


def build_window(s3: Any, *, fmt: str, bucket: str, keys: list[str], n_features: int,
                 output_prefix: str | None = None, input_prefix: str = "",
                 output_bucket: str | None = None) -> readers.WindowBuilder:
    if fmt not in SOURCE_FORMATS:  # before any read: a misconfigured job must not report an empty window as "no data"
        raise ValueError(f"SOURCE_FORMAT {fmt!r} is not capture, samples or batch")
    window = readers.WindowBuilder(n_features)
    for key in keys:
        try:
            body = _read(s3, bucket, key)
        except s3.exceptions.ClientError as exc:  # expired by lifecycle since the listing, or not readable to us
            # One unreadable object is one unreadable record and a named entry in the report, not a failed run.
            window.unreadable()
            window.unreadable_objects.append(f"{key}: {exc.response.get('Error', {}).get('Code')}")
            continue
        if fmt == "capture":
            readers.read_capture_lines(_lines(body), window)
        elif fmt == "samples":
            readers.read_sample_lines(_lines(body), window)
        else:  # batch
            output = None
            if output_prefix is not None:
                out_key = output_prefix + key[len(input_prefix):] + ".out"
                try:
                    output = _read(s3, output_bucket or bucket, out_key).decode("utf-8", "replace")
                except s3.exceptions.NoSuchKey:
                    output = None
            try:
                text = body.decode("utf-8")
            except UnicodeDecodeError:
                window.unreadable(max(body.count(b"\n"), 1))
                continue
            readers.read_batch(text, output, window)
    return window


def predictions_index(window: readers.WindowBuilder) -> bytes:
    """``{"id", "score"}`` lines for the window's predictions that carry an inference id (for later labels)."""
    return "".join(json.dumps({"id": identifier, "score": score}) + "\n"
                   for identifier, score in zip(window.ids, window.scores)
                   if identifier is not None and not math.isnan(score)).encode()


def window_quality(s3: Any, *, start: dt.datetime, end: dt.datetime, settings: dict) -> dict[str, Any] | None:
    bucket, prefix = os.environ.get("LABELS_BUCKET"), os.environ.get("LABELS_PREFIX")
    if not bucket or prefix is None:
        return None
    label_keys = list_keys(s3, bucket, prefix, start, end)
    labels: dict[str, int] = {}
    unreadable = 0
    for key in label_keys:
        found, bad = quality.read_labels(_lines(_read(s3, bucket, key)))
        labels.update(found)
        unreadable += bad
    if not labels:
        return {"status": "no data", "labels": 0, "matched": 0, "unreadable_labels": unreadable}
    lookback = dt.timedelta(hours=int(settings.get("label_lookback_hours", DEFAULT_LABEL_LOOKBACK_HOURS)))
    report_bucket, report_prefix = os.environ["REPORT_BUCKET"], os.environ.get("REPORT_PREFIX", "")
    predictions: dict[str, float] = {}
    for key in list_keys(s3, report_bucket, f"{report_prefix}predictions/", end - lookback, end + lookback):
        for line in _lines(_read(s3, report_bucket, key)):
            try:
                record = json.loads(line)
                predictions[str(record["id"])] = float(record["score"])
            except (ValueError, KeyError, TypeError):
                continue
    result = quality.quality_report(predictions, labels, threshold=float(settings.get("decision_threshold", 0.5)))
    return {**result, "unreadable_labels": unreadable}


def run(event: dict, s3: Any, *, out=sys.stdout) -> dict[str, Any]:
    settings = _settings()
    with open(os.environ["BASELINE_PATH"], encoding="utf-8") as handle:
        baseline = json.load(handle)
    end = _window_end(event)
    minutes = int(event.get("window_minutes") or settings.get("window_minutes") or DEFAULT_WINDOW_MINUTES)
    start = end - dt.timedelta(minutes=minutes)
    fmt, bucket, prefix = os.environ["SOURCE_FORMAT"], os.environ["SOURCE_BUCKET"], os.environ.get("SOURCE_PREFIX", "")
    output_bucket = os.environ.get("OUTPUT_BUCKET") or bucket
    input_prefix, output_prefix = event.get("input_prefix"), event.get("output_prefix")
    if "input_uri" in event:
        input_prefix = split_uri(event["input_uri"], expected_bucket=bucket, what="input_uri")
    if "output_uri" in event:
        output_prefix = split_uri(event["output_uri"], expected_bucket=output_bucket, what="output_uri")
    batch_run = input_prefix is not None
    if event.get("keys"):
        keys = event["keys"]
    elif batch_run:
        keys = [key for key in list_keys(s3, bucket, input_prefix, None, None) if not key.endswith("/")]
    else:
        keys = list_keys(s3, bucket, prefix, start, end)
    window = build_window(s3, fmt=fmt, bucket=bucket, keys=keys, n_features=len(baseline["features"]),
                          output_prefix=output_prefix or os.environ.get("OUTPUT_PREFIX"),
                          input_prefix=prefix if input_prefix is None else input_prefix, output_bucket=output_bucket)
    features, scores = window.arrays()
    report = drift.drift_report(features, scores, baseline, thresholds=drift.Thresholds.from_mapping(settings),
                                rows_seen=window.rows_seen, invalid=window.invalid)
    report_bucket, report_prefix = os.environ["REPORT_BUCKET"], os.environ.get("REPORT_PREFIX", "")
    stamp = f"{end:%Y/%m/%d/%H%M}"
    index = predictions_index(window)
    if index:
        s3.put_object(Bucket=report_bucket, Key=f"{report_prefix}predictions/{stamp}.jsonl", Body=index)
    report["quality"] = window_quality(s3, start=start, end=end, settings=settings)
    report.update({"window_start": start.isoformat(), "window_end": end.isoformat(), "objects": len(keys),
                   "unreadable_objects": window.unreadable_objects[:100],
                   "source": f"s3://{bucket}/{prefix if input_prefix is None else input_prefix}"})
    report_key = f"{report_prefix}reports/{stamp}/report.json"
    s3.put_object(Bucket=report_bucket, Key=report_key, Body=json.dumps(report, indent=1).encode(),
                  ContentType="application/json")
    # Stamped at the window's start: the hourly datapoint lands in the period the window covers, which is
    # complete (and evaluable by the alarms) by the time the job runs. A batch run covers no time window: its
    # datapoint is stamped at the run, so the daily alarm evaluates it during the following day.
    stamped = end if batch_run else start
    for line in emf.lines(report, namespace=os.environ["METRIC_NAMESPACE"], timestamp_ms=int(stamped.timestamp() * 1000)):
        print(line, file=out)
    return {"status": report["status"], "drift": report["drift"], "drifted_features": report["drifted_features"],
            "invalid_rate": report["invalid_rate"], "rows_seen": report["rows_seen"],
            "report": f"s3://{report_bucket}/{report_key}"}


_S3 = None


def handler(event: dict, context: Any = None) -> dict[str, Any]:
    global _S3
    if _S3 is None:
        import boto3

        _S3 = boto3.client("s3")
    return run(event or {}, _S3)
