"""Sampled request capture: through the real handler and model, into moto's S3, read back by the drift job's reader."""
from __future__ import annotations

import importlib
import json
import random
import sys

import boto3
import numpy as np
import pytest

from tests.moto_aws import mocked_aws
from tests.runtime.serverless.conftest import N_FEATURES, LambdaContext, api_event
from tests.unit.monitoring.demo import RUNTIME_DIR

BUCKET = "capture-bucket"
ROW = [7.54, 14.0, 0.0692, 4.767, 1.49, 0.5424, 1.0, 1194.0, 1.0, 0.0, 0.0, 0.0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ShortContext(LambdaContext):
    def get_remaining_time_in_millis(self) -> int:
        return 1_000


@pytest.fixture
def capture_module(handler_module):
    return sys.modules["serverless_inference.capture"]


@pytest.fixture
def s3():
    with mocked_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


@pytest.fixture
def use_capture(handler_module, capture_module, s3, monkeypatch):
    """Replaces the handler's capture (off in the test environment) with one writing to moto's S3."""
    metrics: list[tuple[str, float]] = []
    errors: list[str] = []

    def install(*, percent=100.0, max_records=3, max_age=60.0, client=s3, clock=None):
        settings = capture_module.CaptureSettings(bucket=BUCKET, prefix="capture/serverless/", percent=percent,
                                                  max_records=max_records, max_age_seconds=max_age)
        capture = capture_module.RequestCapture(settings, positive_class=1, on_metric=lambda n, v: metrics.append((n, v)),
                                                log_error=errors.append, s3_client_factory=lambda: client,
                                                clock=clock or FakeClock(), rng=random.Random(7))
        monkeypatch.setattr(handler_module, "CAPTURE", capture)
        return capture
    install.metrics, install.errors = metrics, errors
    return install


def objects(s3) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


def drift_window(s3, keys):
    if str(RUNTIME_DIR) not in sys.path:
        sys.path.append(str(RUNTIME_DIR))
    readers = importlib.import_module("drift_readers")
    window = readers.WindowBuilder(N_FEATURES)
    for key in keys:
        readers.read_sample_lines(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().splitlines(), window)
    return window


def test_batched_records_are_what_the_drift_job_reads(invoke, use_capture, s3, reference_estimator):
    # GIVEN capture at 100% in batches of 3 records
    use_capture(percent=100, max_records=3)
    # WHEN one single-row request and one two-row request are answered
    first = invoke(api_event(json.dumps({"features": ROW}), request_id="req-1"))
    assert objects(s3) == []  # one record buffered: no PUT on this request
    second_row = [value * 1.1 for value in ROW]
    invoke(api_event(json.dumps({"instances": [ROW, second_row]}), request_id="req-2"))
    # THEN the third record fills the batch and exactly one object is written, under the prefix
    keys = objects(s3)
    assert len(keys) == 1 and keys[0].startswith("capture/serverless/") and keys[0].endswith(".jsonl")
    assert ("CapturedRecords", 3) in use_capture.metrics
    # AND the drift job's own reader takes every record: ids, features and the positive-class score
    window = drift_window(s3, keys)
    assert window.rows_seen == 3 and sum(window.invalid.values()) == 0
    assert window.ids == ["req-1", "req-2:0", "req-2:1"]
    features, scores = window.arrays()
    assert np.allclose(features, [ROW, ROW, second_row])
    expected = reference_estimator.predict_proba(np.asarray([ROW, ROW, second_row]))[:, 1]
    assert np.allclose(scores, expected, atol=2e-6)
    assert json.loads(first["body"])["prediction"] in (0, 1)


def test_sampling_takes_about_the_configured_share(invoke, use_capture):
    # GIVEN capture at 10% with a large batch (nothing flushes)
    capture = use_capture(percent=10, max_records=10_000)
    # WHEN 1,000 single-row requests are answered
    for index in range(1000):
        invoke(api_event(json.dumps({"features": ROW}), request_id=f"r{index}"))
    # THEN roughly 100 are buffered (binomial: 3 sigma is about 28)
    assert 70 <= capture.buffered <= 130


def test_refused_requests_are_not_captured(invoke, use_capture):
    # GIVEN capture at 100%
    capture = use_capture(percent=100, max_records=100)
    # WHEN a request with the wrong feature count is refused
    response = invoke(api_event(json.dumps({"features": [1.0]})))
    # THEN the client gets its 400 and nothing is buffered
    assert response["statusCode"] == 400
    assert capture.buffered == 0


def test_old_records_flush_on_time_even_below_the_batch_size(invoke, use_capture, s3):
    # GIVEN a batch of 500 and a maximum age of 60 s
    clock = FakeClock()
    use_capture(percent=100, max_records=500, max_age=60, clock=clock)
    invoke(api_event(json.dumps({"features": ROW})))
    assert objects(s3) == []
    # WHEN the next request comes 61 s after the first record
    clock.now += 61
    invoke(api_event(json.dumps({"features": ROW})))
    # THEN both records go out in one object
    keys = objects(s3)
    assert len(keys) == 1 and drift_window(s3, keys).rows_seen == 2


def test_a_flush_waits_when_the_invocation_is_nearly_out_of_time(handler_module, use_capture, s3):
    # GIVEN a full batch and an invocation with 1 s left (below the flush margin)
    capture = use_capture(percent=100, max_records=1)
    response = handler_module.lambda_handler(api_event(json.dumps({"features": ROW})), ShortContext())
    # THEN the answer is served, nothing is written, and the record waits for the next invocation
    assert response["statusCode"] == 200
    assert objects(s3) == [] and capture.buffered == 1
    handler_module.lambda_handler(api_event(json.dumps({"features": ROW})), LambdaContext())
    assert drift_window(s3, objects(s3)).rows_seen == 2


class BrokenS3:
    def put_object(self, **kwargs):
        raise ConnectionError("S3 is unreachable")


def test_a_failed_flush_never_costs_the_client_its_answer(invoke, use_capture, reference_estimator):
    # GIVEN capture whose S3 writes fail
    capture = use_capture(percent=100, max_records=1, client=BrokenS3())
    # WHEN a request is answered and the flush fails
    response = invoke(api_event(json.dumps({"features": ROW})))
    # THEN the client still gets the model's answer
    assert response["statusCode"] == 200
    probability = reference_estimator.predict_proba(np.asarray([ROW]))[0, 1]
    assert json.loads(response["body"])["prediction"] == int(probability >= 0.5)
    # AND the loss is logged and counted, and the buffer does not grow
    assert any("capture flush failed, 1 record(s) lost" in message for message in use_capture.errors)
    assert ("CaptureErrors", 1) in use_capture.metrics and ("CaptureDroppedRecords", 1) in use_capture.metrics
    assert capture.buffered == 0


def test_the_buffer_is_bounded_when_flushes_cannot_run(handler_module, use_capture):
    # GIVEN a batch of 2 and invocations that never have time left to flush
    capture = use_capture(percent=100, max_records=2)
    for _ in range(10):
        handler_module.lambda_handler(api_event(json.dumps({"features": ROW})), ShortContext())
    # THEN at most 4 batches are kept, the oldest dropped and counted
    assert capture.buffered == 8
    assert sum(value for name, value in use_capture.metrics if name == "CaptureDroppedRecords") == 2


def test_base64_bodies_are_captured(invoke, use_capture, s3):
    # GIVEN capture at 100%
    use_capture(percent=100, max_records=1)
    # WHEN the body arrives base64-encoded (binary media types)
    invoke(api_event(json.dumps({"features": ROW}).encode(), base64_encoded=True, request_id="b64"))
    # THEN the record holds the decoded features
    window = drift_window(s3, objects(s3))
    assert window.ids == ["b64"] and np.allclose(window.arrays()[0], [ROW])


@pytest.mark.parametrize("environ, problem", [
    ({"CAPTURE_S3_BUCKET": "b", "CAPTURE_SAMPLE_PERCENT": "150"}, "CAPTURE_SAMPLE_PERCENT 150 is outside 0..100"),
    ({"CAPTURE_S3_BUCKET": "b", "CAPTURE_SAMPLE_PERCENT": "five"}, "capture settings are not numbers"),
    ({"CAPTURE_S3_BUCKET": "b", "CAPTURE_SAMPLE_PERCENT": "5", "CAPTURE_MAX_RECORDS": "0"}, "CAPTURE_MAX_RECORDS"),
])
def test_bad_settings_turn_capture_off_with_one_error(capture_module, environ, problem):
    # GIVEN capture settings out of range
    errors: list[str] = []
    # WHEN the capture is built from the environment
    capture = capture_module.from_environment(environ, log_error=errors.append)
    # THEN it is off (the function still serves) and one error line says why
    assert not capture.settings.enabled
    assert len(errors) == 1 and errors[0].startswith("capture disabled: ") and problem in errors[0]


def test_no_settings_means_no_capture(capture_module):
    # GIVEN the environment of a function without capture
    capture = capture_module.from_environment({})
    # WHEN a request is offered THEN nothing is buffered and nothing is due
    capture.offer(api_event(json.dumps({"features": ROW})), {"statusCode": 200, "body": "{}"})
    assert capture.buffered == 0 and capture.flush_if_due(LambdaContext()) == 0


def test_the_handler_reads_capture_settings_from_its_environment(handler_module):
    # GIVEN the test environment sets no CAPTURE_* variable THEN the handler's capture is off
    assert not handler_module.CAPTURE.settings.enabled
