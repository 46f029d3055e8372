"""``python -m ops.labels``: ground-truth records in Model Monitor's merge format, and clear refusals."""
from __future__ import annotations

import datetime as dt
import io
import json
import subprocess
import sys

import boto3
import pytest
from botocore.stub import ANY, Stubber

from ops import labels as ops_labels
from tests.conftest import REPO_ROOT

COLLECTED = dt.datetime(2025, 1, 31, 14, 25, tzinfo=dt.timezone.utc)


def run(argv, **kwargs):
    out, err = io.StringIO(), io.StringIO()
    code = ops_labels.main(argv, out=out, err=err, **kwargs)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def labels_file(tmp_path):
    def write(text: str, name: str = "labels.csv"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


def test_each_label_becomes_one_ground_truth_record(labels_file):
    # GIVEN two labels keyed by inference id
    path = labels_file("inference_id,label\ntxn-1,1\ntxn-2,0\n")
    # WHEN formatted
    code, out, _ = run(["format", "--file", path])
    # THEN each line is the record Model Monitor merges with the capture whose InferenceId matches
    assert code == 0
    assert [json.loads(line) for line in out.splitlines()] == [
        {"groundTruthData": {"data": "1", "encoding": "CSV"}, "eventMetadata": {"eventId": "txn-1"}, "eventVersion": "0"},
        {"groundTruthData": {"data": "0", "encoding": "CSV"}, "eventMetadata": {"eventId": "txn-2"}, "eventVersion": "0"}]


def test_the_training_samples_labelled_file_is_accepted_as_is():
    # GIVEN samples/labeled.csv (id, 12 features, is_fraud): the columns are found by their names
    code, out, err = run(["format", "--file", str(REPO_ROOT / "artifacts/fraud-detector/samples/labeled.csv")])
    assert code == 0, err
    assert len(out.splitlines()) == 100
    assert json.loads(out.splitlines()[0])["eventMetadata"]["eventId"] == "txn-000002"


def test_upload_writes_under_the_collection_hour(labels_file, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", region_name="eu-west-1")
    path = labels_file("id,is_fraud\ntxn-1,1\n")
    expected_body = ops_labels.to_jsonl([ops_labels.Label("txn-1", "1")])
    with Stubber(client) as stubber:
        stubber.add_response("put_object", {"ETag": '"x"'}, {
            "Bucket": "capture-bucket", "Key": ANY, "Body": expected_body, "ContentType": "application/jsonlines"})
        # WHEN uploaded
        code, out, _ = run(["upload", "--file", path, "--bucket", "capture-bucket"], s3_client=client, now=COLLECTED)
        stubber.assert_no_pending_responses()
    # THEN it lands under <prefix>/yyyy/mm/dd/hh/ of the hour the labels were collected
    assert code == 0
    assert "s3://capture-bucket/monitoring/ground-truth/2025/01/31/14/labels-20250131T14-" in out


def test_same_file_in_the_same_hour_has_the_same_key():
    body = ops_labels.to_jsonl([ops_labels.Label("a", "1")])
    later = COLLECTED + dt.timedelta(minutes=20)
    assert ops_labels.object_key("p", COLLECTED, body) == ops_labels.object_key("p", later, body)
    assert ops_labels.object_key("p/", COLLECTED, body).startswith("p/2025/01/31/14/")


def test_explicit_time_and_prefix_are_honoured_in_a_dry_run(labels_file):
    path = labels_file("inference_id,label\ntxn-1,1\n")
    code, out, _ = run(["upload", "--file", path, "--bucket", "b-1", "--prefix", "gt/", "--time",
                        "2024-12-24T23:59+01:00", "--dry-run"])
    assert code == 0 and "s3://b-1/gt/2024/12/24/22/labels-" in out


@pytest.mark.parametrize("text, messages", [
    ("", ["the file is empty"]),
    ("txn,outcome\nx,1\n", ["no id column", "no label column"]),
    ("inference_id,label\n", ["no label rows after the header"]),
    ("inference_id,label\ntxn-1,yes\ntxn-2,2\n", ["line 2: label 'yes' is not 0 or 1", "line 3: label '2'"]),
    ("inference_id,label\ntxn-1,1\ntxn-1,0\n", ["line 3: inference id 'txn-1' repeats line 2"]),
    ("inference_id,label\n,1\n", ["line 2: empty inference id"]),
    ("inference_id,label\ntxn-1\n", ["line 2: 1 values, the header has 2"]),
    ("inference_id,label\n" + "x" * 65 + ",1\n", ["is not 1..64 printable characters"]),
    # a field over the csv module's 131072-character limit: reported with its line, later lines still checked
    ("inference_id,label\ntxn-1,1\n" + "x" * 131_073 + ",1\ntxn-2,maybe\n",
     ["line 3: not a CSV row (field larger than field limit (131072))", "line 4: label 'maybe'"]),
    ("x" * 131_073 + ",label\ntxn-1,1\n", ["line 1: not a CSV row (field larger than field limit"]),
    # a quoted id spanning two lines: the next row keeps its own line number
    ('inference_id,label\n"txn\n1",1\ntxn-2,maybe\n', ["line 4: label 'maybe'"]),
])
def test_malformed_label_files_are_refused_with_every_problem(labels_file, text, messages):
    code, out, err = run(["format", "--file", labels_file(text)])
    assert code == 2 and out == ""
    for message in messages:
        assert message in err
    assert "Traceback" not in err


def test_all_problems_are_listed_not_just_the_first(labels_file):
    rows = "".join(f"t{i},maybe\n" for i in range(30))
    code, _, err = run(["format", "--file", labels_file("id,label\n" + rows)])
    assert code == 2 and "30 problem(s)" in err and "... and 10 more" in err


def test_named_columns_must_exist(labels_file):
    code, _, err = run(["format", "--file", labels_file("id,label\nx,1\n"), "--label-column", "truth"])
    assert code == 2 and "no column 'truth' for the label" in err


def test_missing_file_and_bad_bucket_are_user_errors(labels_file, tmp_path):
    code, _, err = run(["format", "--file", str(tmp_path / "absent.csv")])
    assert code == 2 and "file not found" in err
    code, _, err = run(["upload", "--file", labels_file("id,label\nx,1\n"), "--bucket", "s3://bucket/prefix"])
    assert code == 2 and "not an S3 bucket name" in err


def test_s3_refusal_is_reported_without_a_traceback(labels_file, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("s3", region_name="eu-west-1")
    with Stubber(client) as stubber:
        stubber.add_client_error("put_object", "AccessDenied", "not allowed by the bucket policy")
        code, _, err = run(["upload", "--file", labels_file("id,label\nx,1\n"), "--bucket", "capture-bucket"],
                           s3_client=client, now=COLLECTED)
    assert code == 3 and "AccessDenied: not allowed by the bucket policy" in err


def test_runs_as_a_module(labels_file):
    result = subprocess.run([sys.executable, "-m", "ops.labels", "format", "--file", labels_file("id,label\nx,1\n")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and '"eventId":"x"' in result.stdout
