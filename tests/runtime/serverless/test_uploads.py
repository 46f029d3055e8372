"""Files uploaded under incoming/ through the Lambda handler: real S3 event shapes, moto's S3, the real model."""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone

import boto3
import numpy as np
import pytest

from tests.moto_aws import mocked_aws
from tests.runtime.serverless.conftest import ARTIFACTS_DIR, MAX_FILE_BYTES, METADATA, s3_event

BUCKET = "fraud-detector-serverless-data"
SAMPLES = ARTIFACTS_DIR / "samples"
VERSION = METADATA["model_version"]


@pytest.fixture
def s3(handler_module, monkeypatch):
    """A versioned bucket in moto, and the handler's S3 client pointed at it (fake credentials, this test only)."""
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    with mocked_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        client.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        monkeypatch.setattr(handler_module, "_s3_client", client)
        yield client


def upload(s3, key: str, data: bytes) -> dict:
    """Put an object and return the S3 event its upload produces."""
    version = s3.put_object(Bucket=BUCKET, Key=key, Body=data)["VersionId"]
    return s3_event(BUCKET, key, version_id=version, size=len(data))


def objects(s3) -> dict[str, list[str]]:
    """Every key in the bucket with its version ids (newest first)."""
    found: dict[str, list[str]] = {}
    for version in s3.list_object_versions(Bucket=BUCKET).get("Versions", []):
        found.setdefault(version["Key"], []).append(version["VersionId"])
    return found


def upload_name(event: dict) -> str:
    """The ``<upload>`` part of output names for the conftest event (eventTime 2026-05-09T10:11:12.345Z)."""
    version = event["Records"][0]["s3"]["object"]["versionId"]
    return f"20260509T101112345Z-{hashlib.sha256(version.encode()).hexdigest()[:12]}"


def read_jsonl(s3, key: str) -> list[dict]:
    return [json.loads(line) for line in s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode().splitlines()]


def test_csv_rows_become_predictions_under_a_dated_prefix(s3, invoke, reference_estimator):
    # GIVEN the sample CSV (no header, 12 numeric columns) uploaded under incoming/
    data = (SAMPLES / "request.csv").read_bytes()
    event = upload(s3, "incoming/batch-1.csv", data)
    # WHEN S3 notifies the function
    result = invoke(event)
    # THEN one JSON line per row lands under predictions/<upload date>/, with model version and timestamps
    (outcome,) = result["files"]
    assert outcome["status"] == "predicted"
    assert outcome["output_key"] == f"predictions/2026-05-09/batch-1.csv.{VERSION}.{upload_name(event)}.jsonl"
    lines = read_jsonl(s3, outcome["output_key"])
    rows = np.loadtxt(SAMPLES / "request.csv", delimiter=",", ndmin=2)
    assert [line["line"] for line in lines] == list(range(1, len(rows) + 1))
    probability = reference_estimator.predict_proba(rows)[:, 1]
    assert [line["prediction"] for line in lines] == [int(p >= 0.5) for p in probability]
    assert {line["model_version"] for line in lines} == {VERSION}
    assert all(line["predicted_at"].endswith("Z") for line in lines)
    head = s3.head_object(Bucket=BUCKET, Key=outcome["output_key"])
    assert head["Metadata"]["model-version"] == VERSION


def test_csv_header_selects_features_by_name_and_carries_ids(s3, invoke):
    # GIVEN the labeled sample: header "id,<features>,is_fraud" (extra columns, named)
    event = upload(s3, "incoming/labeled.csv", (SAMPLES / "labeled.csv").read_bytes())
    (outcome,) = invoke(event)["files"]
    # THEN the id column is carried into each prediction, and the label column is ignored
    lines = read_jsonl(s3, outcome["output_key"])
    expected_ids = [row.split(",")[0] for row in (SAMPLES / "labeled.csv").read_text().splitlines()[1:]]
    assert [line["id"] for line in lines] == expected_ids
    assert lines[0]["line"] == 2  # line 1 is the header


def test_json_lines_are_accepted(s3, invoke):
    event = upload(s3, "incoming/rows.jsonl", (SAMPLES / "rows.jsonl").read_bytes())
    (outcome,) = invoke(event)["files"]
    assert outcome["status"] == "predicted"
    assert len(read_jsonl(s3, outcome["output_key"])) == len((SAMPLES / "rows.jsonl").read_text().splitlines())


@pytest.mark.parametrize("name, data, reason", [
    ("bad.csv", b"1,2,3\n", "3 columns, expected 12"),
    ("bad.csv", b"x" * (MAX_FILE_BYTES + 1), f"at most {MAX_FILE_BYTES}"),
    ("bad.csv", ("1," * 11 + "oops\n").encode(), "not a finite float32 number"),
    ("bad.csv", ("1," * 11 + "nan\n").encode(), "not a finite float32 number"),
    # float() reads these as 10 and 3; the real-time endpoint refuses both, so the upload path does too
    ("bad.csv", ("1," * 11 + "1_0\n").encode(), "'1_0' is not a finite float32 number"),
    ("bad.csv", ("1," * 11 + "\u0663\n").encode(), "is not a finite float32 number"),
    ("bad.csv", ("1," * 11 + "\uff11\n").encode(), "is not a finite float32 number"),  # full-width 1
    ("bad.csv", b"amount,hour_of_day\n1,2\n", "header lacks"),
    ("bad.csv", b"\n\n", "no rows"),
    ("bad.csv", b"\xff\xfe\x00garbage", "not UTF-8"),
    ("bad.jsonl", b'{"features": [1, 2]}\n', "2 features, expected 12"),
    ("bad.jsonl", b'{"features": "nope"}\n', "valid array"),
    ("bad.jsonl", b"{oops\n", "line 1"),
    ("bad.parquet", b"PAR1", "unsupported file type"),
])
def test_a_bad_file_is_copied_to_rejected_with_its_reason_and_kept(s3, invoke, name, data, reason):
    # GIVEN an unusable file uploaded under incoming/
    key = f"incoming/{name}"
    event = upload(s3, key, data)
    original_version = event["Records"][0]["s3"]["object"]["versionId"]
    # WHEN it is processed
    (outcome,) = invoke(event)["files"]
    # THEN the function records the reason under rejected/ next to a copy of the file
    assert outcome["status"] == "rejected"
    assert reason in outcome["reason"]
    folder = f"rejected/2026-05-09/{upload_name(event)}/"
    assert outcome["output_key"] == f"{folder}{name}.reason.json"
    record = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{folder}{name}.reason.json")["Body"].read())
    assert reason in record["reason"]
    assert record["source"] == {"bucket": BUCKET, "key": key, "version_id": original_version}
    assert record["copy"] == f"{folder}{name}"
    assert s3.get_object(Bucket=BUCKET, Key=f"{folder}{name}")["Body"].read() == data
    # AND the original is untouched: same single version, same bytes
    assert objects(s3)[key] == [original_version]
    assert s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == data


def test_the_function_never_writes_under_the_prefix_it_listens_to(s3, invoke):
    # GIVEN good and bad files uploaded under incoming/
    events = [upload(s3, "incoming/a.csv", (SAMPLES / "request.csv").read_bytes()),
              upload(s3, "incoming/sub/b.jsonl", (SAMPLES / "rows.jsonl").read_bytes()),
              upload(s3, "incoming/c.csv", b"not,a,number\n")]
    uploaded = objects(s3)
    # WHEN all are processed
    for event in events:
        invoke(event)
    # THEN under incoming/ exactly the uploads remain (no new keys, no new versions) ...
    after = objects(s3)
    assert {key: versions for key, versions in after.items() if key.startswith("incoming/")} == uploaded
    # ... and everything written is under predictions/ or rejected/
    written = set(after) - set(uploaded)
    assert written and all(key.startswith(("predictions/", "rejected/")) for key in written)


def test_an_event_for_a_key_outside_the_input_prefix_is_ignored(s3, invoke):
    # GIVEN a notification for one of the function's own outputs (a misconfigured trigger would send it)
    event = upload(s3, "predictions/2026-05-09/a.csv.v1.20260509T101112Z.jsonl", b'{"line": 1}\n')
    before = objects(s3)
    # THEN nothing is processed or written, so no loop can start
    (outcome,) = invoke(event)["files"]
    assert outcome["status"] == "ignored"
    assert objects(s3) == before


def test_url_encoded_keys_are_decoded(s3, invoke):
    # GIVEN a key with a space, which S3 sends as '+' in the notification
    (outcome,) = invoke(upload(s3, "incoming/my file.csv", (SAMPLES / "request.csv").read_bytes()))["files"]
    assert outcome["status"] == "predicted"
    assert outcome["output_key"].startswith("predictions/2026-05-09/my file.csv.")


def test_a_retried_event_overwrites_the_same_output(s3, invoke):
    # GIVEN the same event delivered twice (Lambda retries asynchronous invocations)
    event = upload(s3, "incoming/again.csv", (SAMPLES / "request.csv").read_bytes())
    first = invoke(event)["files"][0]["output_key"]
    second = invoke(event)["files"][0]["output_key"]
    # THEN the output key is the same: no duplicate prediction files
    assert first == second
    assert len([key for key in objects(s3) if key.startswith("predictions/")]) == 1


def test_storage_failures_raise_so_the_event_is_retried(s3, invoke):
    # GIVEN an event for an object that does not exist (deleted, or no permission)
    event = s3_event(BUCKET, "incoming/missing.csv", version_id="null")
    # THEN the handler raises: Lambda retries, then sends the event to the on-failure queue
    with pytest.raises(Exception, match="NoSuchKey|NoSuchVersion|does not exist|Not Found"):
        invoke(event)
    assert not [key for key in objects(s3) if key.startswith(("predictions/", "rejected/"))]


def test_same_name_uploads_in_the_same_second_keep_their_own_results(s3, invoke):
    # GIVEN one name uploaded twice (good file, then a bad one, then a good one again) with identical event
    # times (S3 events carry milliseconds; identical ones are the worst case), each upload its own version
    good = (SAMPLES / "request.csv").read_bytes()
    events = [upload(s3, "incoming/daily.csv", data) for data in (good, b"1,2\n", good, b"x,y\n")]
    # WHEN every event is processed
    outcomes = [invoke(event)["files"][0] for event in events]
    # THEN each upload has its own output or rejection, and nothing was overwritten
    keys = [outcome["output_key"] for outcome in outcomes]
    assert len(set(keys)) == 4
    assert [outcome["status"] for outcome in outcomes] == ["predicted", "rejected", "predicted", "rejected"]
    stored = objects(s3)
    assert all(len(stored[key]) == 1 for key in keys)
    copies = sorted(key for key in stored if key.startswith("rejected/") and not key.endswith(".reason.json"))
    assert sorted(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() for key in copies) == [b"1,2\n", b"x,y\n"]


def test_a_retried_rejection_overwrites_the_same_record(s3, invoke):
    # GIVEN a rejected upload whose event is delivered twice
    event = upload(s3, "incoming/bad.csv", b"1,2\n")
    first, second = (invoke(event)["files"][0]["output_key"] for _ in range(2))
    # THEN both deliveries write the same copy and reason keys (the name comes from the event, not the clock)
    assert first == second
    assert len([key for key in objects(s3) if key.startswith("rejected/")]) == 2


def test_the_upload_name_uses_the_sequencer_when_the_bucket_is_unversioned(handler_module):
    from serverless_inference.uploads import upload_name
    from datetime import datetime, timezone

    # GIVEN event times with milliseconds, and events without a version id (unversioned or suspended bucket)
    at = datetime(2026, 5, 9, 10, 11, 12, 345_000, tzinfo=timezone.utc)
    unversioned = upload_name(at, None, "0A1B2C3D4E5F678901")
    # THEN the name carries the milliseconds and differs per sequencer; "null" counts as no version
    assert unversioned.startswith("20260509T101112345Z-")
    assert unversioned == upload_name(at, "null", "0A1B2C3D4E5F678901")
    assert unversioned != upload_name(at, None, "0A1B2C3D4E5F678902")
    # AND a version id holding a "/" (S3 allows it) never adds a folder to the key
    assert "/" not in upload_name(at, "3/L4kqtJlcpXroDTDmJ+rmSpXd3dIbrHY+MTRCxf3vjVBH40Nr8X8gdRQBpUMLUo", None)


S3_MAX_KEY_BYTES = 1024


def key_of_bytes(prefix: str, total_bytes: int, suffix: str, filler: str) -> str:
    """A key of exactly ``total_bytes`` UTF-8 bytes: prefix, repeated filler (1 or 2 bytes), suffix."""
    room = total_bytes - len(prefix.encode()) - len(suffix.encode())
    stem = filler * (room // len(filler.encode()))
    stem += "a" * (room - len(stem.encode()))
    key = f"{prefix}{stem}{suffix}"
    assert len(key.encode()) == total_bytes
    return key


@pytest.mark.parametrize("filler", ["n", "\u00e9"], ids=["ascii", "two-byte characters"])
def test_an_input_key_at_the_s3_limit_still_gets_its_predictions(s3, invoke, filler):
    # GIVEN a good CSV whose key is exactly S3's 1024-byte maximum (deep folders, a long name)
    key = key_of_bytes("incoming/", S3_MAX_KEY_BYTES, ".csv", filler)
    data = (SAMPLES / "request.csv").read_bytes()
    event = upload(s3, key, data)
    # WHEN it is processed
    (outcome,) = invoke(event)["files"]
    # THEN the predictions land under a key S3 accepts, which still starts with the date and the name's head
    assert outcome["status"] == "predicted", outcome
    assert len(outcome["output_key"].encode()) <= S3_MAX_KEY_BYTES
    assert outcome["output_key"].startswith(f"predictions/2026-05-09/{key[len('incoming/'):][:100]}")
    assert outcome["output_key"].endswith(f".{VERSION}.{upload_name(event)}.jsonl")
    assert len(read_jsonl(s3, outcome["output_key"])) == len(data.decode().strip().splitlines())


@pytest.mark.parametrize("filler", ["n", "\u00e9"], ids=["ascii", "two-byte characters"])
def test_a_bad_file_at_the_s3_key_limit_still_gets_its_rejection_record(s3, invoke, filler):
    # GIVEN an unusable file whose key is exactly S3's 1024-byte maximum
    key = key_of_bytes("incoming/", S3_MAX_KEY_BYTES, ".csv", filler)
    event = upload(s3, key, b"1,2\n")
    # WHEN it is processed
    (outcome,) = invoke(event)["files"]
    # THEN the copy and the reason record land under keys S3 accepts, and the record names the full source key
    assert outcome["status"] == "rejected", outcome
    assert len(outcome["output_key"].encode()) <= S3_MAX_KEY_BYTES
    record = json.loads(s3.get_object(Bucket=BUCKET, Key=outcome["output_key"])["Body"].read())
    assert record["source"]["key"] == key
    assert len(record["copy"].encode()) <= S3_MAX_KEY_BYTES
    assert s3.get_object(Bucket=BUCKET, Key=record["copy"])["Body"].read() == b"1,2\n"


def test_short_keys_are_not_shortened(s3, invoke):
    # GIVEN a key well under the limit  WHEN it is processed  THEN its output name is the plain one
    event = upload(s3, "incoming/short.csv", (SAMPLES / "request.csv").read_bytes())
    (outcome,) = invoke(event)["files"]
    assert outcome["output_key"] == f"predictions/2026-05-09/short.csv.{VERSION}.{upload_name(event)}.jsonl"


def test_a_large_output_is_written_in_parts_and_equals_the_single_put(s3, handler_module, monkeypatch):
    # GIVEN a CSV whose predictions (~9 MiB) exceed one 8 MiB output part
    from serverless_inference import uploads

    row = b"7,1,0,4,1,0,1,9,1,0,0,0\n"
    data = row * 90_000
    event = upload(s3, "incoming/big.csv", data)
    settings = uploads.UploadSettings(max_file_bytes=len(data) + 1)
    calls = []
    monkeypatch.setattr(s3, "upload_part", _recording(s3.upload_part, calls))
    # WHEN it is processed
    now = datetime(2026, 5, 9, 10, 12, tzinfo=timezone.utc)
    (outcome,) = uploads.handle_s3_event(event, model=handler_module.MODEL, settings=settings, s3=s3, now=now)
    streamed = s3.get_object(Bucket=BUCKET, Key=outcome.output_key)["Body"].read()
    # THEN it went up as a multipart upload of at least two parts, none above the part size
    assert len(calls) >= 2 and all(len(call["Body"]) <= uploads.OUTPUT_PART_BYTES + 2**20 for call in calls)
    # AND the object is byte for byte what one PutObject of the whole output writes
    monkeypatch.setattr(uploads, "OUTPUT_PART_BYTES", 2**40)
    (again,) = uploads.handle_s3_event(event, model=handler_module.MODEL, settings=settings, s3=s3, now=now)
    assert again.output_key == outcome.output_key
    assert s3.get_object(Bucket=BUCKET, Key=again.output_key)["Body"].read() == streamed
    lines = streamed.decode().splitlines()
    assert len(lines) == outcome.rows == 90_000
    assert json.loads(lines[-1])["line"] == 90_000


def _recording(method, calls):
    def call(**request):
        calls.append(request)
        return method(**request)
    return call


def test_a_failed_part_aborts_the_multipart_upload_and_raises(handler_module, monkeypatch):
    # GIVEN an S3 client whose second part upload fails
    from serverless_inference import uploads

    class FlakyS3:
        def __init__(self):
            self.calls = []

        def create_multipart_upload(self, **request):
            self.calls.append("create")
            return {"UploadId": "u-1"}

        def upload_part(self, **request):
            self.calls.append("part")
            if request["PartNumber"] == 2:
                raise ConnectionError("connection reset")
            return {"ETag": '"e"'}

        def abort_multipart_upload(self, **request):
            self.calls.append(("abort", request["UploadId"]))

    monkeypatch.setattr(uploads, "OUTPUT_PART_BYTES", 10)
    flaky = FlakyS3()
    # WHEN chunks are written THEN the error is raised (the event is retried) and the upload is aborted
    with pytest.raises(ConnectionError):
        uploads._write(flaky, uploads.UploadSettings(), iter([b"x" * 12, b"y" * 12, b"z" * 12]),
                       Bucket=BUCKET, Key="predictions/x.jsonl")
    assert flaky.calls == ["create", "part", "part", ("abort", "u-1")]
