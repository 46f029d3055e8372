"""ops.async_inference: queue one request on an asynchronous endpoint and wait for its result (Stubber)."""
from __future__ import annotations

import io
import json

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import ANY, Stubber

from ops import async_inference

BUCKET = "async-bucket"
OUTPUT = "s3://async-bucket/async/output/abc.out"
FAILURE = "s3://async-bucket/async/failures/abc-error.out"


@pytest.fixture(scope="module")
def session():
    return boto3.session.Session(region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


@pytest.fixture()
def stubbed(session):
    s3, runtime = session.client("s3"), session.client("sagemaker-runtime")
    with Stubber(s3) as s3_stub, Stubber(runtime) as runtime_stub:
        yield {"s3": s3, "sagemaker-runtime": runtime}, s3_stub, runtime_stub
        s3_stub.assert_no_pending_responses()
        runtime_stub.assert_no_pending_responses()


def _queue(s3_stub, runtime_stub, body: bytes):
    s3_stub.add_response("put_object", {}, {"Bucket": BUCKET, "Key": ANY, "Body": body, "ContentType": "text/csv"})
    runtime_stub.add_response("invoke_endpoint_async",
                              {"InferenceId": "abc", "OutputLocation": OUTPUT, "FailureLocation": FAILURE},
                              {"EndpointName": "probe", "InputLocation": ANY, "ContentType": "text/csv",
                               "InferenceId": ANY})


def _body(text: str) -> StreamingBody:
    return StreamingBody(io.BytesIO(text.encode()), len(text.encode()))


def _run(tmp_path, clients, *extra: str):
    request = tmp_path / "request.csv"
    request.write_bytes(b"1,2,3\n")
    out, err = io.StringIO(), io.StringIO()
    code = async_inference.main(["--endpoint", "probe", "--bucket", BUCKET, "--file", str(request), "--poll-s",
                                 "0.01", *extra], clients=lambda name: clients[name], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_result_is_printed_once_the_output_object_exists(tmp_path, stubbed):
    clients, s3_stub, runtime_stub = stubbed
    _queue(s3_stub, runtime_stub, b"1,2,3\n")
    # GIVEN the output is missing on the first check and present on the second
    s3_stub.add_client_error("head_object", "404", http_status_code=404,
                             expected_params={"Bucket": BUCKET, "Key": "async/output/abc.out"})
    s3_stub.add_client_error("head_object", "404", http_status_code=404,
                             expected_params={"Bucket": BUCKET, "Key": "async/failures/abc-error.out"})
    s3_stub.add_response("head_object", {}, {"Bucket": BUCKET, "Key": "async/output/abc.out"})
    s3_stub.add_response("get_object", {"Body": _body("0.0123\n")}, {"Bucket": BUCKET, "Key": "async/output/abc.out"})
    # WHEN the command waits  THEN it prints the model's answer and exits 0
    code, out, _ = _run(tmp_path, clients, "--json")
    assert code == 0
    assert json.loads(out)["result"] == "0.0123\n" and json.loads(out)["output"] == OUTPUT


def test_a_failure_object_is_exit_1_with_its_reason(tmp_path, stubbed):
    clients, s3_stub, runtime_stub = stubbed
    _queue(s3_stub, runtime_stub, b"1,2,3\n")
    s3_stub.add_client_error("head_object", "404", http_status_code=404)
    s3_stub.add_response("head_object", {}, {"Bucket": BUCKET, "Key": "async/failures/abc-error.out"})
    s3_stub.add_response("get_object", {"Body": _body('{"code": "wrong_feature_count"}')},
                         {"Bucket": BUCKET, "Key": "async/failures/abc-error.out"})
    code, _, err = _run(tmp_path, clients)
    assert code == 1 and "wrong_feature_count" in err and "Traceback" not in err


def test_no_result_before_the_deadline_is_exit_1(tmp_path, stubbed):
    clients, s3_stub, runtime_stub = stubbed
    _queue(s3_stub, runtime_stub, b"1,2,3\n")
    for _ in range(2):
        s3_stub.add_client_error("head_object", "404", http_status_code=404)
    code, _, err = _run(tmp_path, clients, "--timeout-s", "0.000001")
    assert code == 1 and "may still finish" in err


@pytest.mark.parametrize("args, message", [
    (["--timeout-s", "-5"], "argument --timeout-s: must be a number of seconds above 0, got -5"),
    (["--poll-s", "nan"], "argument --poll-s: must be a number of seconds above 0, got nan"),
])
def test_bad_options_are_refused_before_any_aws_call(tmp_path, args, message, capsys):
    # GIVEN clients that would fail the test if called
    def no_aws(_):
        raise AssertionError("AWS was called")
    request = tmp_path / "r.csv"
    request.write_text("1\n")
    err = io.StringIO()
    code = async_inference.main(["--endpoint", "e", "--bucket", "b", "--file", str(request), *args],
                                clients=no_aws, err=err)
    # argparse reports option errors itself, on the process's stderr
    assert code == 2 and message in capsys.readouterr().err


def test_a_missing_file_is_a_usage_error(tmp_path):
    err = io.StringIO()
    code = async_inference.main(["--endpoint", "e", "--bucket", "b", "--file", str(tmp_path / "nope.csv")],
                                clients=lambda _: None, err=err)
    assert code == 2 and err.getvalue().startswith("error: --file")
