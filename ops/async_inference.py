"""Submit one request to an asynchronous endpoint and wait for its result.

    python -m ops.async_inference --endpoint fraud-detector-realtime --bucket <AsyncBucketName output> \\
        --file artifacts/fraud-detector/samples/request.csv [--content-type text/csv] [--timeout-s 900]

The file is uploaded under ``async/input/`` of the endpoint's bucket (the only prefix its role reads),
``InvokeEndpointAsync`` queues it, and the command polls the output and failure locations SageMaker returns
until one exists. The result is printed to stdout; with ``--no-wait`` only the locations are printed.

Exit codes (ops/cli.py): 0 result received, 1 the request failed or did not finish in time, 2 usage, 3 AWS.
"""
from __future__ import annotations

import json
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from ops import cli
from ops.cli import AwsError, OperationFailed, Parser, UsageError, run

INPUT_PREFIX = "async/input"
MAX_INPUT_BYTES = 1024 ** 3  # SageMaker asynchronous inference accepts payloads up to 1 GB
CONTENT_TYPES = ("text/csv", "application/json", "application/jsonlines")


@dataclass(frozen=True)
class Submitted:
    inference_id: str
    input_uri: str
    output_uri: str
    failure_uri: str | None


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def submit(*, s3: Any, runtime: Any, endpoint: str, bucket: str, body: bytes, content_type: str,
           inference_id: str | None = None) -> Submitted:
    """Upload ``body`` and queue it; returns where the result and a failure will appear."""
    inference_id = inference_id or uuid.uuid4().hex
    key = f"{INPUT_PREFIX}/{inference_id}"
    s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
    input_uri = f"s3://{bucket}/{key}"
    response = runtime.invoke_endpoint_async(EndpointName=endpoint, InputLocation=input_uri,
                                             ContentType=content_type, InferenceId=inference_id)
    return Submitted(inference_id=response.get("InferenceId", inference_id), input_uri=input_uri,
                     output_uri=response["OutputLocation"], failure_uri=response.get("FailureLocation"))


def _exists(s3: Any, uri: str) -> bool:
    from botocore.exceptions import ClientError

    bucket, key = _split(uri)
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return True
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise


def wait_for_result(*, s3: Any, submitted: Submitted, timeout_s: float, poll_s: float,
                    sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> str:
    """The result text once the output object exists; OperationFailed on a failure object or the deadline."""
    deadline = clock() + timeout_s
    while True:
        if _exists(s3, submitted.output_uri):
            bucket, key = _split(submitted.output_uri)
            return s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")
        if submitted.failure_uri and _exists(s3, submitted.failure_uri):
            bucket, key = _split(submitted.failure_uri)
            reason = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", errors="replace")
            raise OperationFailed(f"request {submitted.inference_id} failed: {reason.strip()[:500]}")
        if clock() >= deadline:
            raise OperationFailed(f"no result for {submitted.inference_id} after {timeout_s:g} s; it may still "
                                  f"finish: look for {submitted.output_uri}")
        sleep(poll_s)


def _parser() -> Parser:
    parser = Parser(prog="python -m ops.async_inference", description=__doc__.split("\n\n")[0],
                    epilog="example: python -m ops.async_inference --endpoint fraud-detector-realtime "
                           "--bucket my-async-bucket --file artifacts/fraud-detector/samples/request.csv")
    parser.add_argument("--endpoint", required=True, help="asynchronous endpoint name")
    parser.add_argument("--bucket", required=True, help="the stack's AsyncBucketName output")
    parser.add_argument("--file", required=True, type=Path, help="request body (CSV rows or JSON)")
    parser.add_argument("--content-type", default="text/csv", choices=CONTENT_TYPES)
    parser.add_argument("--timeout-s", type=cli.positive_number("seconds"), default=900.0,
                        help="how long to wait for the result")
    parser.add_argument("--poll-s", type=cli.positive_number("seconds"), default=5.0, help="seconds between checks")
    parser.add_argument("--no-wait", action="store_true", help="print the locations and return")
    parser.add_argument("--region", help="AWS region (default: the profile's)")
    parser.add_argument("--json", action="store_true", help="print a JSON object instead of text")
    return parser


def _read_body(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if size == 0:
            raise UsageError(f"--file {path} is empty")
        if size > MAX_INPUT_BYTES:
            raise UsageError(f"--file {path} is {size} bytes; asynchronous inference accepts at most 1 GB")
        return path.read_bytes()
    except OSError as error:
        raise UsageError(f"--file {path}: {error.strerror or error}") from None


def main(argv: list[str] | None = None, *, clients: Callable[[str], Any] | None = None, out=sys.stdout,
         err=sys.stderr) -> int:
    def command() -> int:
        args = _parser().parse_args(argv)
        body = _read_body(args.file)
        make = clients or _default_clients(args.region)
        s3, runtime = make("s3"), make("sagemaker-runtime")
        submitted = submit(s3=s3, runtime=runtime, endpoint=args.endpoint, bucket=args.bucket, body=body,
                           content_type=args.content_type)
        result = None if args.no_wait else wait_for_result(s3=s3, submitted=submitted, timeout_s=args.timeout_s,
                                                           poll_s=args.poll_s)
        if args.json:
            print(json.dumps({"inference_id": submitted.inference_id, "input": submitted.input_uri,
                              "output": submitted.output_uri, "failure": submitted.failure_uri,
                              "result": result}), file=out)
        else:
            print(f"queued {submitted.inference_id}: {submitted.input_uri} -> {submitted.output_uri}", file=err)
            if result is not None:
                print(result, file=out, end="" if result.endswith("\n") else "\n")
        return 0

    return run(command, err=err)


def _default_clients(region: str | None) -> Callable[[str], Any]:
    import boto3

    session = boto3.session.Session(region_name=region)
    if not session.region_name:
        raise AwsError("no AWS region: pass --region or set AWS_REGION")
    return lambda service: session.client(service)


if __name__ == "__main__":
    sys.exit(main())
