"""The drift Lambda end to end against moto's S3: a window in, a report and EMF metrics out."""
from __future__ import annotations

import datetime as dt
import io
import json

import boto3
import numpy as np
import pytest

from tests.moto_aws import mocked_aws
from tests.runtime.monitoring.test_readers import CSV_ROW, capture
from tests.unit.monitoring.demo import model_scores, reference_rows, write_model_dir

BUCKET = "capture-bucket"


@pytest.fixture
def s3(monkeypatch, tmp_path):
    model_dir = write_model_dir(tmp_path / "model")
    environment = {"SOURCE_FORMAT": "capture", "SOURCE_BUCKET": BUCKET, "SOURCE_PREFIX": "datacapture/",
                   "REPORT_BUCKET": BUCKET, "REPORT_PREFIX": "monitoring/drift/",
                   "LABELS_BUCKET": BUCKET, "LABELS_PREFIX": "monitoring/ground-truth/",
                   "BASELINE_PATH": str(model_dir / "drift_baseline.json"), "METRIC_NAMESPACE": "MLDrift/fraud-detector",
                   "SETTINGS": json.dumps({"psi_threshold": 0.2, "decision_threshold": 0.5}),
                   "AWS_DEFAULT_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with mocked_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
        yield client


def later() -> str:
    return (dt.datetime.now(dt.timezone.utc) + dt.timedelta(minutes=1)).isoformat()


def run(handler_module, s3, event):
    out = io.StringIO()
    result = handler_module.run(event, s3, out=out)
    return result, [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_window_of_baseline_traffic_reports_no_drift_and_publishes_per_feature_metrics(handler_module, s3):
    # GIVEN 400 captured requests drawn from the training sample, with the model's scores, in two objects
    rows = reference_rows()[np.random.default_rng(0).choice(5000, 400, replace=False)]
    scores = model_scores(rows)
    lines = [capture(",".join(f"{value:g}" for value in row), output=f"{score!r}\n", inference_id=f"id-{index}")
             for index, (row, score) in enumerate(zip(rows, scores))]
    s3.put_object(Bucket=BUCKET, Key="datacapture/ep/AllTraffic/a.jsonl", Body="\n".join(lines[:200]).encode())
    s3.put_object(Bucket=BUCKET, Key="datacapture/ep/AllTraffic/b.jsonl", Body="\n".join(lines[200:] + ["junk"]).encode())
    # WHEN the job runs over the window
    result, documents = run(handler_module, s3, {"window_end": later()})
    # THEN nothing drifted, the junk line is counted, and the report is in S3
    assert result["status"] == "ok" and result["drift"] is False and result["rows_seen"] == 401
    assert result["invalid_rate"] == pytest.approx(1 / 401, abs=1e-6)
    bucket, key = result["report"].removeprefix("s3://").split("/", 1)
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert key.startswith("monitoring/drift/reports/") and report["objects"] == 2
    # AND one EMF document per feature (Feature dimension) plus one for the window, in the model's namespace
    per_feature = [document for document in documents if "Feature" in document]
    assert sorted(document["Feature"] for document in per_feature) == sorted(report["features"])
    for document in documents:
        metrics = document["_aws"]["CloudWatchMetrics"][0]
        assert metrics["Namespace"] == "MLDrift/fraud-detector"
        assert all(metric["Name"] in document for metric in metrics["Metrics"])
    window = [document for document in documents if "Feature" not in document][0]
    assert window["RowsAnalysed"] == 401 and window["WindowsAnalysed"] == 1 and window["PredictionPSI"] < 0.2


def test_delayed_labels_are_joined_to_an_earlier_windows_predictions(handler_module, s3):
    # GIVEN a window whose captured predictions carry inference ids
    lines = [capture(CSV_ROW, output=f"{score}\n", inference_id=f"id-{index}")
             for index, score in enumerate([0.9, 0.2, 0.7, 0.1])]
    s3.put_object(Bucket=BUCKET, Key="datacapture/ep/a.jsonl", Body="\n".join(lines).encode())
    run(handler_module, s3, {"window_end": later()})
    # WHEN labels for them arrive and the next window runs (the captures are no longer in its window)
    labels = "".join(json.dumps({"groundTruthData": {"data": label, "encoding": "CSV"},
                                 "eventMetadata": {"eventId": f"id-{index}"}, "eventVersion": "0"}) + "\n"
                     for index, label in enumerate(["1", "0", "0", "0"]))
    s3.delete_object(Bucket=BUCKET, Key="datacapture/ep/a.jsonl")
    s3.put_object(Bucket=BUCKET, Key="monitoring/ground-truth/2026/01/01/00/labels.jsonl", Body=labels.encode())
    _, documents = run(handler_module, s3, {"window_end": later()})
    # THEN quality is published from the joined labels
    window = [document for document in documents if "Feature" not in document][0]
    assert window["AUC"] == 1.0 and window["Accuracy"] == 0.75 and window["Precision"] == 0.5
    assert window["LabelledPredictions"] == 4 and window["RowsAnalysed"] == 0


def test_an_empty_window_publishes_no_data_not_zero_drift(handler_module, s3):
    result, documents = run(handler_module, s3, {"window_end": later()})
    assert result["status"] == "no data" and result["invalid_rate"] is None
    assert len(documents) == 1
    names = {metric["Name"] for metric in documents[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert names == {"WindowsAnalysed", "RowsAnalysed"} and documents[0]["RowsAnalysed"] == 0


def test_objects_outside_the_window_are_not_read(handler_module, s3):
    s3.put_object(Bucket=BUCKET, Key="datacapture/ep/a.jsonl", Body=capture(CSV_ROW).encode())
    past = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2)).isoformat()
    result, _ = run(handler_module, s3, {"window_end": past})
    assert result["status"] == "no data"


def test_a_batch_run_joins_its_inputs_to_the_transform_outputs(handler_module, s3, monkeypatch):
    # GIVEN a batch source: an input object and the transform's .out for it under the run's output prefix
    monkeypatch.setenv("SOURCE_FORMAT", "batch")
    monkeypatch.setenv("SOURCE_PREFIX", "batch/input/")
    s3.put_object(Bucket=BUCKET, Key="batch/input/2026-01-01/a.csv", Body=f"t1,{CSV_ROW}\nt2,{CSV_ROW}\nt3,1\n".encode())
    s3.put_object(Bucket=BUCKET, Key="batch/predictions/run-1/2026-01-01/a.csv.out", Body=b"t1,0.5\nt2,0.25\n")
    # WHEN the step after the transform runs the job over that run's objects
    result, documents = run(handler_module, s3, {"window_end": later(), "keys": ["batch/input/2026-01-01/a.csv"],
                                                 "input_prefix": "batch/input/",
                                                 "output_prefix": "batch/predictions/run-1/"})
    # THEN every row is counted, the short one as invalid, and the scores come from the outputs
    assert result["rows_seen"] == 3 and result["invalid_rate"] == pytest.approx(1 / 3, abs=1e-6)
    bucket, key = result["report"].removeprefix("s3://").split("/", 1)
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report["prediction"]["count"] == 2 and report["invalid"]["wrong_width"] == 1


def test_an_object_that_cannot_be_read_is_counted_and_named_not_fatal(handler_module, s3):
    s3.put_object(Bucket=BUCKET, Key="datacapture/ep/a.jsonl", Body=capture(CSV_ROW).encode())
    result, _ = run(handler_module, s3, {"window_end": later(), "keys": ["datacapture/ep/a.jsonl",
                                                                         "datacapture/ep/expired.jsonl"]})
    bucket, key = result["report"].removeprefix("s3://").split("/", 1)
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert result["rows_seen"] == 2 and report["invalid"]["unreadable"] == 1
    assert report["unreadable_objects"] == ["datacapture/ep/expired.jsonl: NoSuchKey"]


def test_a_batch_run_by_uri_reads_its_whole_input_prefix_and_the_output_bucket(handler_module, s3, monkeypatch):
    # GIVEN a batch source whose predictions live in another bucket, and an input object written days ago
    monkeypatch.setenv("SOURCE_FORMAT", "batch")
    monkeypatch.setenv("SOURCE_PREFIX", "batch/input/")
    monkeypatch.setenv("OUTPUT_BUCKET", "predictions-bucket")
    s3.create_bucket(Bucket="predictions-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    s3.put_object(Bucket=BUCKET, Key="batch/input/night/a.csv", Body=f"t1,{CSV_ROW}\nt2,{CSV_ROW}\n".encode())
    s3.put_object(Bucket="predictions-bucket", Key="predictions/run-1/night/a.csv.out", Body=b"t1,0.5\nt2,0.25\n")
    run_time = dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=3)
    # WHEN the workflow's step sends the run's URIs, three days after the input was written
    result, documents = run(handler_module, s3, {
        "input_uri": f"s3://{BUCKET}/batch/input/", "output_uri": "s3://predictions-bucket/predictions/run-1/",
        "window_end": run_time.isoformat()})
    # THEN the object is read whatever its age, joined to its .out in the output bucket
    assert result["rows_seen"] == 2 and result["invalid_rate"] == 0
    bucket, key = result["report"].removeprefix("s3://").split("/", 1)
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report["prediction"]["count"] == 2 and report["source"] == f"s3://{BUCKET}/batch/input/"
    # AND the metrics are stamped at the run, not a window's start, so the daily alarm sees them
    assert {document["_aws"]["Timestamp"] for document in documents} == {int(run_time.timestamp() * 1000)}


@pytest.mark.parametrize("event, problem", [
    ({"input_uri": "s3://other-bucket/in/"}, "input_uri s3://other-bucket/in/ is not in the monitored bucket"),
    ({"input_uri": "batch/input/"}, "input_uri 'batch/input/' is not an s3:// URI"),
    ({"input_uri": f"s3://{BUCKET}/in/", "output_uri": "s3://other/out/"}, "output_uri s3://other/out/ is not in"),
])
def test_a_batch_uri_outside_the_monitored_buckets_is_refused_in_one_line(handler_module, s3, monkeypatch, event,
                                                                           problem):
    # GIVEN a batch source WHEN a run names URIs the job is not configured (nor allowed) to read
    monkeypatch.setenv("SOURCE_FORMAT", "batch")
    # THEN it stops with one line naming the URI, before reading anything
    with pytest.raises(ValueError, match=problem.replace("(", r"\(")):
        run(handler_module, s3, event)


def test_an_unknown_source_format_fails_even_when_the_window_is_empty(handler_module):
    # GIVEN a job configured with a format it cannot read, and nothing captured this window
    # WHEN the window is built  THEN it fails at once instead of reporting "no data"
    with pytest.raises(ValueError, match="SOURCE_FORMAT 'parquet' is not capture, samples or batch"):
        handler_module.build_window(None, fmt="parquet", bucket="b", keys=[], n_features=3)
