"""Start a batch scoring run by hand (what the nightly schedule does), optionally waiting for it.

    python -m ops.batch run --input s3://<input bucket>/<prefix>/ [--date YYYY-MM-DD]
                            [--stack FraudDetector-Batch | --state-machine-arn ARN] [--region REGION]
                            [--wait] [--poll-seconds 30] [--timeout-minutes 720]
                            [--model-name SAGEMAKER_MODEL --model-version LABEL]

The state machine ARN comes from the stack's ``StateMachineArn`` output unless given. Predictions land
under ``predictions/<date>/<model version>/<execution name>/`` of the output bucket, with ``manifest.json``.
``--model-name``/``--model-version`` score the input with a candidate SageMaker model instead of the deployed
one, into the candidate version's own folder, for ``python -m ops.compare`` (execution input ``"model"``).

Runs are named ``manual-<date>-<8 hex>``: the execution name becomes part of the transform job name, which
SageMaker limits to letters, digits and hyphens. Whoever calls StartExecution directly must name runs the same
way (at most 36 characters, no ``_``), or the run fails at CreateTransformJob.

Exit codes (``ops/cli.py``'s table): 0 started (or, with --wait, succeeded); 1 the run failed, timed out
or was aborted, or --wait gave up while it was still going (it keeps going); 2 invalid arguments (checked
before any AWS call); 3 no region or credentials, AWS could not be reached, or the stack/state machine
was not found. ``--json`` prints the result as one JSON document.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ops import cli

EXIT_OK = cli.EXIT_OK
EXIT_RUN_FAILED = cli.EXIT_FAILED
EXIT_USAGE = cli.EXIT_USAGE
EXIT_AWS = cli.EXIT_AWS
DEFAULT_POLL_SECONDS = 30.0
DEFAULT_TIMEOUT_MINUTES = 720.0
STATE_MACHINE_OUTPUT = "StateMachineArn"
INPUT_BUCKET_OUTPUT = "InputBucketName"
PREDICTIONS_OUTPUT = "PredictionsUri"
MODEL_VERSION_OUTPUT = "ModelVersion"
#: Execution names are kept to 36 characters, like the UUIDs Scheduler uses: transform job names
#: (``<prefix>-<execution name>-<attempt><retry>``) must fit in 63.
MAX_EXECUTION_NAME = 36
EXECUTION_NAME_PATTERN = re.compile(r"[A-Za-z0-9](-*[A-Za-z0-9])*")
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
IP_ADDRESS_PATTERN = re.compile(r"\d+\.\d+\.\d+\.\d+")
DATE_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
#: SageMaker model names; version labels become one S3 path segment, so no "/".
MODEL_NAME_PATTERN = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
MODEL_VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
STATE_MACHINE_ARN_PATTERN = re.compile(r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]+")
REPO_ROOT = Path(__file__).resolve().parents[1]


UsageError = cli.UsageError  # a mistake in the command line: one line, exit 2
AwsError = cli.AwsError  # AWS could not be reached or did not have what we looked for: exit 3


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Target:
    """The state machine to start, and what the stack says about where results go (when known)."""

    state_machine_arn: str
    input_bucket: str | None = None
    predictions_uri: str | None = None
    model_version: str | None = None

    def manifest_uri(self, run_date: str, execution_name: str, model_version: str | None = None) -> str | None:
        version = model_version or self.model_version
        if not (self.predictions_uri and version):
            return None
        return f"{self.predictions_uri.rstrip('/')}/{run_date}/{version}/{execution_name}/manifest.json"


def parse_s3_uri(text: str) -> S3Uri:
    """``s3://bucket/prefix`` with a valid bucket name and a non-empty key or prefix."""
    if not text.startswith("s3://"):
        raise UsageError(f"--input must be an S3 URI such as s3://my-bucket/input/, got {text!r}")
    bucket, _, key = text[len("s3://"):].partition("/")
    if not BUCKET_PATTERN.fullmatch(bucket) or ".." in bucket or IP_ADDRESS_PATTERN.fullmatch(bucket):
        raise UsageError(f"--input: {bucket!r} is not a valid S3 bucket name (3-63 lowercase letters, digits, dots "
                         "and hyphens, starting and ending with a letter or digit)")
    if not key:
        raise UsageError(f"--input: give a key or prefix inside the bucket (e.g. s3://{bucket}/input/); scoring a "
                         "whole bucket is refused")
    if any(character.isspace() for character in key):
        raise UsageError(f"--input: the key {key!r} contains whitespace")
    return S3Uri(bucket, key)


def parse_run_date(text: str) -> str:
    """A calendar date written YYYY-MM-DD."""
    if not DATE_PATTERN.fullmatch(text):
        raise UsageError(f"--date must be written YYYY-MM-DD, got {text!r}")
    try:
        dt.date.fromisoformat(text)
    except ValueError as error:
        raise UsageError(f"--date {text!r} is not a calendar date ({error})") from None
    return text


def execution_name(run_date: str, token: str | None = None) -> str:
    """``manual-<date>-<8 hex>``: unique, readable and short enough for the transform job name."""
    name = f"manual-{run_date}-{token or uuid.uuid4().hex[:8]}"
    if len(name) > MAX_EXECUTION_NAME or not EXECUTION_NAME_PATTERN.fullmatch(name):
        raise UsageError(f"execution name {name!r} must be letters, digits and hyphens, at most {MAX_EXECUTION_NAME}")
    return name


def default_stack_name(cdk_json: Path = REPO_ROOT / "cdk.json") -> str | None:
    """``<Model>-Batch`` the way the app names the stack: cdk.json's ``deploy.model.name``, else the name in the
    metadata.json of the model it deploys (``deploy.model.artifacts_dir``)."""
    from ml_constructs.common.naming import pascal_case
    from stacks.config.common import DEFAULT_ARTIFACTS_DIR

    try:
        model = json.loads(cdk_json.read_text())["context"]["deploy"].get("model") or {}
        model_name = model.get("name")
        if not model_name:
            folder = Path(model.get("artifacts_dir") or DEFAULT_ARTIFACTS_DIR)
            folder = folder if folder.is_absolute() else cdk_json.parent / folder
            model_name = json.loads((folder / "metadata.json").read_text())["model_name"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return f"{pascal_case(model_name)}-Batch"  # as Deployment.stack_prefix names it


def _error_text(error: Exception) -> str:
    response = getattr(error, "response", None)
    if isinstance(response, dict) and "Error" in response:
        return f"{response['Error'].get('Code')}: {response['Error'].get('Message')}"
    return str(error)


def find_target(cloudformation: Any, stack_name: str) -> Target:
    """Read the batch stack's outputs."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as error:
        if "does not exist" in _error_text(error):
            raise AwsError(f"stack {stack_name} was not found in this account and region; deploy it (make synth, "
                           "cdk deploy) or pass --state-machine-arn") from None
        raise AwsError(f"could not describe stack {stack_name}: {_error_text(error)}") from None
    except BotoCoreError as error:
        raise AwsError(f"could not describe stack {stack_name}: {error}") from None
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    if STATE_MACHINE_OUTPUT not in outputs:
        raise AwsError(f"stack {stack_name} has no {STATE_MACHINE_OUTPUT} output; is it the batch stack "
                       f"(status {stacks[0].get('StackStatus')})?")
    return Target(state_machine_arn=outputs[STATE_MACHINE_OUTPUT], input_bucket=outputs.get(INPUT_BUCKET_OUTPUT),
                  predictions_uri=outputs.get(PREDICTIONS_OUTPUT), model_version=outputs.get(MODEL_VERSION_OUTPUT))


def parse_candidate(model_name: str | None, model_version: str | None) -> dict | None:
    """The execution input's ``"model"`` for a candidate: both a SageMaker model name and a version label."""
    if model_name is None and model_version is None:
        return None
    if model_name is None or model_version is None:
        raise UsageError("--model-name and --model-version go together: the version names the candidate's output "
                         "folder (predictions/<date>/<version>/...)")
    if not MODEL_NAME_PATTERN.fullmatch(model_name):
        raise UsageError(f"--model-name {model_name!r} is not a SageMaker model name (letters, digits and hyphens, "
                         "at most 63)")
    if not MODEL_VERSION_PATTERN.fullmatch(model_version):
        raise UsageError(f"--model-version {model_version!r} must be letters, digits, '.', '_' and '-' (at most 64, "
                         "no '/'): it becomes one folder name")
    return {"name": model_name, "version": model_version}


def start_run(stepfunctions: Any, target: Target, *, input_uri: S3Uri, run_date: str, name: str,
              model: dict | None = None) -> str:
    """StartExecution with ``{"input_uri", "run_date", "trigger"}`` (and ``"model"`` for a candidate)."""
    from botocore.exceptions import BotoCoreError, ClientError

    payload: dict[str, Any] = {"input_uri": str(input_uri), "run_date": run_date, "trigger": "manual"}
    if model:
        payload["model"] = model
    try:
        response = stepfunctions.start_execution(stateMachineArn=target.state_machine_arn, name=name,
                                                 input=json.dumps(payload))
    except ClientError as error:
        raise AwsError(f"could not start {target.state_machine_arn}: {_error_text(error)}") from None
    except BotoCoreError as error:
        raise AwsError(f"could not start {target.state_machine_arn}: {error}") from None
    return response["executionArn"]


def wait_for_run(stepfunctions: Any, execution_arn: str, *, poll_seconds: float, timeout_seconds: float,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> dict | None:
    """Poll DescribeExecution until the run ends; None if ``timeout_seconds`` passes first."""
    from botocore.exceptions import BotoCoreError, ClientError

    deadline = clock() + timeout_seconds
    while True:
        try:
            description = stepfunctions.describe_execution(executionArn=execution_arn)
        except ClientError as error:
            raise AwsError(f"could not describe {execution_arn}: {_error_text(error)}") from None
        except BotoCoreError as error:
            raise AwsError(f"could not describe {execution_arn}: {error}") from None
        if description["status"] not in ("RUNNING", "PENDING_REDRIVE"):
            return description
        if clock() + poll_seconds > deadline:
            return None
        sleep(poll_seconds)


EXAMPLES = """examples:
  python -m ops.batch run --input s3://<input bucket>/2024-05-01/ --wait
  python -m ops.batch run --input s3://<input bucket>/2024-05-01/ --date 2024-05-01 --json
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = cli.Parser(prog="python -m ops.batch", description=__doc__.split("\n\n")[0], epilog=EXAMPLES)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="start a scoring run for an S3 input", epilog=EXAMPLES)
    run.add_argument("--input", required=True, help="s3://bucket/prefix/ (every object under it is scored)")
    run.add_argument("--date", help="run date YYYY-MM-DD naming the output folder (default: today, UTC)")
    where = run.add_mutually_exclusive_group()
    where.add_argument("--stack", help="batch stack name (default: <Model>-Batch from cdk.json)")
    where.add_argument("--state-machine-arn", help="state machine ARN, instead of reading the stack outputs")
    run.add_argument("--region", help="AWS region (default: the AWS CLI/SDK configuration)")
    run.add_argument("--model-name", help="score with this SageMaker model (a candidate) instead of the deployed one")
    run.add_argument("--model-version", help="the candidate's version label: its outputs go to "
                                             "predictions/<date>/<this>/<run>/ (required with --model-name)")
    run.add_argument("--wait", action="store_true", help="wait for the run to end and report where results are")
    run.add_argument("--poll-seconds", type=float, default=DEFAULT_POLL_SECONDS)
    run.add_argument("--timeout-minutes", type=float, default=DEFAULT_TIMEOUT_MINUTES,
                     help="how long --wait waits before giving up (the run keeps going)")
    run.add_argument("--json", action="store_true", help="print the result as one JSON document")
    return parser


def _default_clients(region: str | None) -> Callable[[str], Any]:
    """A client factory that needs a region only when the first client is made: after the arguments are checked."""
    session = None

    def client(service: str) -> Any:
        nonlocal session
        if session is None:
            import boto3

            session = boto3.session.Session(region_name=region)
            if session.region_name is None:
                raise AwsError("no AWS region configured: pass --region or set AWS_REGION")
        return session.client(service)

    return client


def run_command(args: argparse.Namespace, clients: Callable[[str], Any], out=sys.stdout) -> int:
    input_uri = parse_s3_uri(args.input)
    run_date = parse_run_date(args.date) if args.date else dt.datetime.now(dt.timezone.utc).date().isoformat()
    if args.poll_seconds <= 0 or args.timeout_minutes <= 0:
        raise UsageError("--poll-seconds and --timeout-minutes must be positive")
    model = parse_candidate(args.model_name, args.model_version)
    if args.state_machine_arn:
        if not STATE_MACHINE_ARN_PATTERN.fullmatch(args.state_machine_arn):
            raise UsageError(f"--state-machine-arn {args.state_machine_arn!r} is not a state machine ARN "
                             "(arn:aws:states:<region>:<account>:stateMachine:<name>)")
        target = Target(state_machine_arn=args.state_machine_arn)
    else:
        stack_name = args.stack or default_stack_name()
        if not stack_name:
            raise UsageError("could not read the model name from cdk.json: pass --stack or --state-machine-arn")
        target = find_target(clients("cloudformation"), stack_name)
    if target.input_bucket and input_uri.bucket != target.input_bucket:
        raise UsageError(f"--input is in bucket {input_uri.bucket}, but the batch job may only read "
                         f"s3://{target.input_bucket}/ (set deploy.batch.storage.input_bucket_name to use another)")
    if model and model["version"] == target.model_version:
        raise UsageError(f"--model-version {model['version']} is the deployed model's version: give the candidate "
                         "its own label, or its outputs would be filed as the deployed model's")

    stepfunctions = clients("stepfunctions")
    name = execution_name(run_date)
    execution_arn = start_run(stepfunctions, target, input_uri=input_uri, run_date=run_date, name=name, model=model)
    manifest = target.manifest_uri(run_date, name, model["version"] if model else None)
    report: dict[str, Any] = {"execution_arn": execution_arn, "input": str(input_uri), "run_date": run_date,
                              "results": manifest.rsplit("/", 1)[0] + "/" if manifest else None,
                              "manifest": manifest, "status": "RUNNING"}
    if model:
        report["model"] = model

    def say(line: str) -> None:
        if not args.json:
            print(line, file=out)

    say(f"started {execution_arn}")
    say(f"input   {input_uri}")
    if model:
        say(f"model   {model['name']} (candidate {model['version']})")
    if manifest:
        say(f"results {report['results']} (manifest.json when the run ends)")
    try:
        if not args.wait:
            return EXIT_OK
        description = wait_for_run(stepfunctions, execution_arn, poll_seconds=args.poll_seconds,
                                   timeout_seconds=args.timeout_minutes * 60)
        if description is None:
            report["status"] = "STILL_RUNNING"
            raise cli.OperationFailed(f"gave up waiting after {args.timeout_minutes:g} minutes; the run is still going: "
                                      f"check it with aws stepfunctions describe-execution --execution-arn "
                                      f"{execution_arn}")
        status = report["status"] = description["status"]
        if status == "SUCCEEDED":
            result = json.loads(description.get("output") or "{}")
            report["manifest"] = result.get("manifest_uri", manifest)
            report["predictions"] = result.get("output_uri")
            say(f"SUCCEEDED manifest {report['manifest']}")
            say(f"predictions {result.get('output_uri', '(see manifest)')}")
            return EXIT_OK
        report["error"], report["cause"] = description.get("error", ""), description.get("cause", "")
        say(f"{status}: {report['error']} {report['cause']}".rstrip())
        if manifest:
            say(f"manifest {manifest}")
        raise cli.OperationFailed(f"the run ended {status}: {report['error']} {report['cause']}".rstrip())
    finally:
        if args.json:
            print(json.dumps(report, indent=2), file=out)


def main(argv: list[str] | None = None, *, clients: Callable[[str], Any] | None = None, out=None,
         err=None) -> int:
    """Parse ``argv`` and run the command; ``clients(service)`` makes boto3 clients (tests pass stubs)."""
    out = out or sys.stdout

    def command() -> int:
        args = _build_parser().parse_args(argv)
        # Clients are made lazily, so every argument is checked (exit 2) before a missing region (exit 3).
        return run_command(args, clients or _default_clients(args.region), out=out)

    return cli.run(command, err=err)


if __name__ == "__main__":
    sys.exit(main())
