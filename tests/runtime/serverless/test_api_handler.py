"""POST /predict through the Lambda handler: real API Gateway proxy events, the real ONNX model."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tests.runtime.serverless.conftest import MAX_INSTANCES, MAX_REQUEST_BYTES, METADATA, N_FEATURES, api_event

ROW = [7.54, 14.0, 0.0692, 4.767, 1.49, 0.5424, 1.0, 1194.0, 1.0, 0.0, 0.0, 0.0]


def expected_rows(estimator, rows):
    """Prediction and confidence from the scikit-learn pipeline (threshold 0.5 on the fraud probability)."""
    probability = estimator.predict_proba(np.asarray(rows, dtype=np.float64))[:, 1]
    return [(int(p >= 0.5), p if p >= 0.5 else 1 - p) for p in probability]


def test_single_row_in_the_seed_shape(invoke, reference_estimator):
    # GIVEN the seed's request shape {"features": [...]}
    response = invoke(api_event(json.dumps({"features": ROW})))
    # THEN a 200 with one {"prediction", "confidence", "model_version"} matching scikit-learn's own answer
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "application/json"
    body = json.loads(response["body"])
    assert set(body) == {"prediction", "confidence", "model_version"}
    (prediction, confidence), = expected_rows(reference_estimator, [ROW])
    assert body["prediction"] == prediction
    assert body["confidence"] == pytest.approx(confidence, abs=1e-5)
    assert body["model_version"] == METADATA["model_version"]


def test_instances_return_one_prediction_per_row_in_order(invoke, reference_estimator, sample_rows):
    # GIVEN the sample request's rows, plus one row the model flags as fraud
    fraud_row = [2500.0, 3.0, 0.9, 900.0, 850.0, 40.0, 25.0, 3.0, 1.0, 0.0, 0.0, 1.0]
    rows = [*sample_rows, fraud_row]
    # WHEN they are sent as instances
    response = invoke(api_event(json.dumps({"instances": rows})))
    # THEN every row gets its own prediction, in order, equal to scikit-learn's
    assert response["statusCode"] == 200
    predictions = json.loads(response["body"])["predictions"]
    expected = expected_rows(reference_estimator, rows)
    assert [item["prediction"] for item in predictions] == [label for label, _ in expected]
    assert [item["confidence"] for item in predictions] == pytest.approx([c for _, c in expected], abs=1e-5)
    assert {item["model_version"] for item in predictions} == {METADATA["model_version"]}
    assert predictions[-1]["prediction"] == 1, "the test needs one positive row to mean anything"


def test_base64_encoded_body_is_decoded(invoke):
    # GIVEN a binary-media API that delivers the body base64-encoded
    response = invoke(api_event(json.dumps({"features": ROW}).encode(), base64_encoded=True))
    # THEN it is decoded and answered like text
    assert response["statusCode"] == 200


@pytest.mark.parametrize("body, code, says", [
    ("{not json", "invalid_json", "not valid JSON"),
    ("", "empty_body", "no body"),
    (None, "empty_body", "no body"),
    ("[1, 2, 3]", "invalid_request", "object"),
    ('{"features": [1, 2, 3]}', "invalid_request", f"the model takes {N_FEATURES}"),
    (json.dumps({"features": ["1"] * N_FEATURES}), "invalid_request", "valid number"),
    (json.dumps({"features": [True] * N_FEATURES}), "invalid_request", "valid number"),
    (json.dumps({"features": [None] * N_FEATURES}), "invalid_request", "valid number"),
    ('{"features": [NaN' + ", 1" * (N_FEATURES - 1) + "]}", "invalid_request", "finite"),
    ('{"features": [Infinity' + ", 1" * (N_FEATURES - 1) + "]}", "invalid_request", "finite"),
    ('{"features": [1e400' + ", 1" * (N_FEATURES - 1) + "]}", "invalid_request", "finite"),
    ('{"features": [1e39' + ", 1" * (N_FEATURES - 1) + "]}", "invalid_request", "float32"),
    (json.dumps({"instances": []}), "invalid_request", "empty"),
    (json.dumps({"instances": [ROW, ROW[:3]]}), "invalid_request", "do not have"),
    (json.dumps({"instances": [ROW] * (MAX_INSTANCES + 1)}), "invalid_request", f"at most {MAX_INSTANCES}"),
    (json.dumps({"features": ROW, "instances": [ROW]}), "invalid_request", "exactly one"),
    (json.dumps({}), "invalid_request", "exactly one"),
    (json.dumps({"features": ROW, "extra": 1}), "invalid_request", "not permitted"),
    (json.dumps({"features": [ROW]}), "invalid_request", "valid number"),
    ("[" * 5000 + "]" * 5000, "invalid_json", "recursion"),
    (json.dumps({"features": ROW}) + " trailing", "invalid_json", "trailing"),
])
def test_bad_requests_get_400_with_a_reason(invoke, body, code, says):
    # GIVEN a request body a client got wrong
    response = invoke(api_event(body))
    # THEN the answer is 400 with a JSON reason, never a 5xx
    assert response["statusCode"] == 400
    error = json.loads(response["body"])
    assert error["code"] == code
    assert says in error["error"]


def test_oversized_body_is_refused_before_parsing(invoke):
    # GIVEN a body one byte over the configured limit
    body = json.dumps({"features": ROW}).ljust(MAX_REQUEST_BYTES + 1)
    # THEN 400 body_too_large
    response = invoke(api_event(body))
    assert (response["statusCode"], json.loads(response["body"])["code"]) == (400, "body_too_large")


def test_values_too_extreme_for_the_model_are_a_client_error(invoke):
    # GIVEN finite float32 values whose scaled sum overflows (inf - inf = NaN inside the model)
    row = [3e38 if index % 2 == 0 else -3e38 for index in range(N_FEATURES)]
    response = invoke(api_event(json.dumps({"features": row})))
    # THEN the NaN score is not returned as a prediction: 400 out_of_range
    assert response["statusCode"] == 400
    assert json.loads(response["body"])["code"] == "out_of_range"


def test_invalid_base64_and_non_utf8_bodies_are_400(invoke):
    assert invoke(api_event("***not base64***", base64_encoded=True))["statusCode"] == 400
    # GIVEN bytes that are not UTF-8, delivered base64-encoded by a binary-media API
    response = invoke(api_event(b'{"features": [\xff]}', base64_encoded=True))
    assert (response["statusCode"], json.loads(response["body"])["code"]) == (400, "invalid_json")


@pytest.mark.parametrize("method, path, status", [("GET", "/predict", 405), ("POST", "/other", 404)])
def test_other_routes_are_client_errors(invoke, method, path, status):
    response = invoke(api_event(json.dumps({"features": ROW}), method=method, path=path))
    assert response["statusCode"] == status


def test_logs_carry_the_api_request_id_as_correlation_id(invoke, read_logs):
    # GIVEN a refused request with a known API Gateway request id
    invoke(api_event("{oops", request_id="req-1234"))
    # THEN its structured log line is correlated to that request
    refused = [line for line in read_logs() if line["message"] == "request refused"]
    assert refused and refused[-1]["correlation_id"] == "req-1234"
    assert refused[-1]["code"] == "invalid_json"
    assert refused[-1]["function_request_id"]


def test_metrics_are_emitted_in_embedded_metric_format(invoke, capsys):
    # WHEN one good and one bad request are served
    invoke(api_event(json.dumps({"instances": [ROW, ROW, ROW]})))
    invoke(api_event("{oops"))
    # THEN each invocation prints an EMF document with the handler's metrics
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    emf = [document for document in documents if "_aws" in document]
    assert any(document.get("Predictions") == [3.0] or document.get("Predictions") == 3.0 for document in emf)
    assert any("PredictionLatency" in document for document in emf)
    assert any(document.get("ClientErrors") in (1.0, [1.0]) for document in emf)
    namespaces = {metric["Namespace"] for document in emf for metric in document["_aws"]["CloudWatchMetrics"]}
    assert namespaces == {"MLDeployPatterns/Serverless"}


def test_an_internal_fault_is_a_500_without_internals(invoke, handler_module, monkeypatch, read_logs):
    # GIVEN a model that breaks (a fault of ours, not the client's)
    def broken(rows):
        raise RuntimeError("onnxruntime exploded")
    monkeypatch.setattr(handler_module.MODEL, "predict", broken)
    response = invoke(api_event(json.dumps({"features": ROW})))
    # THEN 500 with a generic reason (details stay in the log)
    assert response["statusCode"] == 500
    assert "exploded" not in response["body"]
    assert any("exploded" in line.get("exception", "") for line in read_logs())


def test_unknown_event_sources_fail_loudly(invoke):
    with pytest.raises(ValueError, match="unsupported event"):
        invoke({"hello": "world"})


@pytest.mark.parametrize("request_context", ["not-an-object", ["requestId"], 7, None])
def test_a_request_context_that_is_not_an_object_is_answered_not_crashed(invoke, request_context):
    # GIVEN a direct invoke shaped like an API event whose requestContext is not an object
    event = api_event(json.dumps({"features": ROW}))
    event["requestContext"] = request_context
    # WHEN the handler answers it
    response = invoke(event)
    # THEN the row is scored as usual (there is simply no request id to correlate with)
    assert response["statusCode"] == 200
    assert set(json.loads(response["body"])) == {"prediction", "confidence", "model_version"}
