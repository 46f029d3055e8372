"""Fixtures for the Lambda handler: loaded by file path with the real ONNX model, real event shapes."""
from __future__ import annotations

import base64
import importlib.util
import io
import json
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import joblib
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
LAMBDA_SRC = REPO_ROOT / "lambda_src"
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
METADATA = json.loads((ARTIFACTS_DIR / "metadata.json").read_text())
N_FEATURES = len(METADATA["feature_names"])
#: Small limits so "too many rows" and "too large" are cheap to reach.
MAX_INSTANCES = 50
MAX_REQUEST_BYTES = 64 * 1024
MAX_FILE_BYTES = 256 * 1024
HANDLER_ENV = {
    "MODEL_LOCAL_PATH": str(ARTIFACTS_DIR),
    "MODEL_VERSION": METADATA["model_version"],
    "POWERTOOLS_SERVICE_NAME": "fraud-detector-serverless",
    "POWERTOOLS_METRICS_NAMESPACE": "MLDeployPatterns/Serverless",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "MAX_INSTANCES": str(MAX_INSTANCES),
    "MAX_REQUEST_BYTES": str(MAX_REQUEST_BYTES),
    "MAX_FILE_BYTES": str(MAX_FILE_BYTES),
    "INPUT_PREFIX": "incoming/",
    "OUTPUT_PREFIX": "predictions/",
    "REJECTED_PREFIX": "rejected/",
}


@dataclass
class LambdaContext:
    """The attributes of the Lambda context object that Powertools reads."""

    function_name: str = "FraudDetector-Serverless-ModelFunction"
    function_version: str = "3"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = ("arn:aws:lambda:eu-west-1:123456789012:function:"
                                 "FraudDetector-Serverless-ModelFunction:live")
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    log_group_name: str = "/aws/lambda/FraudDetector-Serverless-ModelFunction"
    log_stream_name: str = "2026/05/09/[3]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def api_event(body: str | bytes | None, *, method: str = "POST", path: str = "/predict",
              base64_encoded: bool = False, request_id: str | None = None) -> dict[str, Any]:
    """An API Gateway REST proxy integration event (payload format 1.0), as API Gateway sends it."""
    if isinstance(body, bytes):
        body = base64.b64encode(body).decode() if base64_encoded else body.decode("utf-8")
    request_id = request_id or str(uuid.uuid4())
    headers = {"Content-Type": "application/json", "Host": "abcdef1234.execute-api.eu-west-1.amazonaws.com",
               "User-Agent": "python-requests/2.32", "X-Amzn-Trace-Id": "Root=1-6650f0e1-0123456789abcdef01234567",
               "X-Forwarded-For": "198.51.100.7", "X-Forwarded-Port": "443", "X-Forwarded-Proto": "https"}
    return {
        "resource": path, "path": path, "httpMethod": method, "headers": headers,
        "multiValueHeaders": {name: [value] for name, value in headers.items()},
        "queryStringParameters": None, "multiValueQueryStringParameters": None, "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "a1b2c3", "resourcePath": path, "httpMethod": method,
            "extendedRequestId": "XyZ1aEXAMPLE=", "requestTime": "09/May/2026:10:11:12 +0000",
            "path": f"/prod{path}", "accountId": "123456789012", "protocol": "HTTP/1.1", "stage": "prod",
            "domainPrefix": "abcdef1234", "requestTimeEpoch": 1778321472000, "requestId": request_id,
            "identity": {"cognitoIdentityPoolId": None, "accountId": "123456789012", "cognitoIdentityId": None,
                         "caller": "AROAEXAMPLE:client", "sourceIp": "198.51.100.7",
                         "principalOrgId": None, "accessKey": "ASIAEXAMPLE", "cognitoAuthenticationType": None,
                         "cognitoAuthenticationProvider": None,
                         "userArn": "arn:aws:sts::123456789012:assumed-role/client/session",
                         "userAgent": "python-requests/2.32", "user": "AROAEXAMPLE:client"},
            "domainName": "abcdef1234.execute-api.eu-west-1.amazonaws.com", "apiId": "abcdef1234"},
        "body": body, "isBase64Encoded": base64_encoded,
    }


def s3_event(bucket: str, key: str, *, version_id: str | None = None, size: int = 1024,
             event_name: str = "ObjectCreated:Put", event_time: str = "2026-05-09T10:11:12.345Z") -> dict[str, Any]:
    """An S3 event notification as S3 delivers it to Lambda (the key URL-encoded, as S3 does)."""
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": "0123456789abcdef0123456789abcdef",
                           "sequencer": "0A1B2C3D4E5F678901"}
    if version_id:
        obj["versionId"] = version_id
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1", "eventTime": event_time,
        "eventName": event_name, "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "198.51.100.7"},
        "responseElements": {"x-amz-request-id": "C3D13FE58DE4C810", "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "upload-trigger",
               "bucket": {"name": bucket, "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                          "arn": f"arn:aws:s3:::{bucket}"},
               "object": obj}}]}


@pytest.fixture(scope="session")
def handler_module():
    """lambda_src/handler.py imported by file path under the test environment (its init loads the model)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in HANDLER_ENV.items():
            patch.setenv(name, value)
        for name in ("LAMBDA_TASK_ROOT", "POWERTOOLS_TRACE_DISABLED"):
            patch.delenv(name, raising=False)
        patch.syspath_prepend(str(LAMBDA_SRC))
        spec = importlib.util.spec_from_file_location("serverless_lambda_handler", LAMBDA_SRC / "handler.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module
        for name in [name for name in sys.modules if name == "serverless_inference" or
                     name.startswith("serverless_inference.")]:
            del sys.modules[name]


@pytest.fixture
def invoke(handler_module):
    """Call the handler the way Lambda does: (event, context) -> result."""
    def call(event: Any) -> Any:
        return handler_module.lambda_handler(event, LambdaContext())
    return call


@pytest.fixture
def read_logs(handler_module):
    """Returns the handler's structured log lines written so far in this test (parsed JSON)."""
    stream = io.StringIO()
    registered = handler_module.logger.registered_handler
    previous = registered.setStream(stream)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]
    registered.setStream(previous)


@pytest.fixture(scope="session")
def reference_estimator():
    """The scikit-learn pipeline the ONNX file was exported from: an oracle independent of onnxruntime."""
    return joblib.load(ARTIFACTS_DIR / "model.joblib")


@pytest.fixture(scope="session")
def sample_rows() -> list[list[float]]:
    return json.loads((ARTIFACTS_DIR / "samples" / "request.json").read_text())["instances"]
