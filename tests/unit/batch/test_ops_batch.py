"""`python -m ops.batch run`: argument checks, stack lookup, start, wait; exit codes. AWS is stubbed (real shapes)."""
from __future__ import annotations

import datetime as dt
import io
import json
import re

import pytest
from botocore.stub import Stubber

from ops import batch as ops_batch
from tests.conftest import shared_botocore_session

REGION = "eu-west-1"
ACCOUNT = "123456789012"
STATE_MACHINE = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:fraud-detector-batch"
INPUT_BUCKET = "frauddetector-batch-inputstoragebucket-abc123"
OUTPUT_URI = "s3://frauddetector-batch-outputstoragebucket-def456/predictions/"
VERSION = "v1-0123456789ab"  # any model version: the stack output is stubbed
TOKEN = "0a1b2c3d"
NAME = f"manual-2024-05-01-{TOKEN}"
EXECUTION = f"arn:aws:states:{REGION}:{ACCOUNT}:execution:fraud-detector-batch:{NAME}"
STACK_OUTPUTS = [
    {"OutputKey": "StateMachineArn", "OutputValue": STATE_MACHINE},
    {"OutputKey": "InputBucketName", "OutputValue": INPUT_BUCKET},
    {"OutputKey": "PredictionsUri", "OutputValue": OUTPUT_URI},
    {"OutputKey": "ModelVersion", "OutputValue": VERSION},
]
NOW = dt.datetime(2024, 5, 1, 2, 0, tzinfo=dt.timezone.utc)


class Aws:
    """Stubbed CloudFormation and Step Functions clients; every expected call must happen, nothing else."""

    def __init__(self) -> None:
        session = shared_botocore_session()
        self.clients = {service: session.create_client(service, region_name=REGION)
                        for service in ("cloudformation", "stepfunctions")}
        self.stubs = {service: Stubber(client) for service, client in self.clients.items()}
        for stub in self.stubs.values():
            stub.activate()

    def __call__(self, service: str):
        return self.clients[service]

    def stack(self, outputs=STACK_OUTPUTS, name: str = "FraudDetector-Batch") -> None:
        self.stubs["cloudformation"].add_response("describe_stacks", {"Stacks": [{
            "StackName": name, "CreationTime": NOW, "StackStatus": "CREATE_COMPLETE", "Outputs": outputs}]},
            {"StackName": name})

    def start(self, input_uri: str, run_date: str = "2024-05-01", name: str = NAME, model: dict | None = None) -> None:
        execution_input = {"input_uri": input_uri, "run_date": run_date, "trigger": "manual"}
        if model:
            execution_input["model"] = model
        self.stubs["stepfunctions"].add_response(
            "start_execution", {"executionArn": EXECUTION, "startDate": NOW},
            {"stateMachineArn": STATE_MACHINE, "name": name, "input": json.dumps(execution_input)})

    def describe(self, status: str, **extra) -> None:
        self.stubs["stepfunctions"].add_response("describe_execution", {
            "executionArn": EXECUTION, "stateMachineArn": STATE_MACHINE, "status": status, "startDate": NOW, **extra},
            {"executionArn": EXECUTION})

    def verify(self) -> None:
        for stub in self.stubs.values():
            stub.assert_no_pending_responses()


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setattr(ops_batch.uuid, "uuid4", lambda: type("U", (), {"hex": TOKEN + "f" * 24})())
    return Aws()


def run(aws, *argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = ops_batch.main(["run", *argv], clients=aws, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_starts_a_run_for_the_stack_and_says_where_results_will_be(aws):
    # GIVEN the deployed stack's outputs
    aws.stack()
    aws.start(f"s3://{INPUT_BUCKET}/exports/2024-05-01/")
    # WHEN a run is started for an input and a date
    code, out, err = run(aws, "--input", f"s3://{INPUT_BUCKET}/exports/2024-05-01/", "--date", "2024-05-01")
    # THEN the state machine from the stack outputs is started with that input, and the results folder is named
    assert (code, err) == (0, "")
    assert f"started {EXECUTION}" in out
    assert f"{OUTPUT_URI}2024-05-01/{VERSION}/{NAME}/" in out
    aws.verify()


def test_a_candidate_model_is_passed_in_the_execution_input_and_gets_its_own_folder(aws):
    # GIVEN a candidate SageMaker model and its version label
    candidate = {"name": "fraud-detector-candidate", "version": "v2-490fc0dd6ebe"}
    aws.stack()
    aws.start(f"s3://{INPUT_BUCKET}/input/", model=candidate)
    # WHEN the nightly input is scored with it
    code, out, err = run(aws, "--input", f"s3://{INPUT_BUCKET}/input/", "--date", "2024-05-01",
                         "--model-name", candidate["name"], "--model-version", candidate["version"])
    # THEN the execution input names the candidate, and its results go under the candidate's version
    assert (code, err) == (0, "")
    assert f"model   {candidate['name']} (candidate {candidate['version']})" in out
    assert f"{OUTPUT_URI}2024-05-01/{candidate['version']}/{NAME}/" in out
    aws.verify()


@pytest.mark.parametrize("argv, message", [
    (["--model-name", "candidate"], "--model-name and --model-version go together"),
    (["--model-version", "v2"], "--model-name and --model-version go together"),
    (["--model-name", "bad_name", "--model-version", "v2"], "is not a SageMaker model name"),
    (["--model-name", "candidate", "--model-version", "v2/evil"], "no '/'"),
])
def test_candidate_mistakes_exit_2_and_start_nothing(aws, argv, message):
    code, out, err = run(aws, "--input", f"s3://{INPUT_BUCKET}/input/", *argv)
    assert code == ops_batch.EXIT_USAGE and message in err and err.count("\n") == 1 and out == ""
    aws.verify()


def test_a_candidate_labelled_with_the_deployed_version_is_refused(aws):
    aws.stack()
    code, _, err = run(aws, "--input", f"s3://{INPUT_BUCKET}/input/", "--model-name", "candidate",
                       "--model-version", VERSION)
    assert code == ops_batch.EXIT_USAGE and "is the deployed model's version" in err
    aws.verify()


def test_waits_for_success_and_prints_the_manifest(aws):
    aws.stack()
    aws.start(f"s3://{INPUT_BUCKET}/input/")
    manifest_uri = f"{OUTPUT_URI}2024-05-01/{VERSION}/{NAME}/manifest.json"
    aws.describe("RUNNING")
    aws.describe("SUCCEEDED", stopDate=NOW, output=json.dumps({
        "status": "SUCCEEDED", "manifest_uri": manifest_uri, "output_uri": manifest_uri.rsplit("/", 1)[0] + "/"}))
    code, out, _ = run(aws, "--input", f"s3://{INPUT_BUCKET}/input/", "--date", "2024-05-01", "--wait",
                       "--poll-seconds", "0.01")
    assert code == 0
    assert f"SUCCEEDED manifest {manifest_uri}" in out
    aws.verify()


def test_a_failed_run_exits_1_with_the_reason_and_the_failed_manifest(aws):
    aws.stack()
    aws.start(f"s3://{INPUT_BUCKET}/input/")
    aws.describe("FAILED", stopDate=NOW, error="BatchScoringFailed", cause="ClientError: line 7 has 3 values")
    code, out, err = run(aws, "--input", f"s3://{INPUT_BUCKET}/input/", "--date", "2024-05-01", "--wait",
                       "--poll-seconds", "0.01")
    assert code == ops_batch.EXIT_RUN_FAILED
    assert "FAILED: BatchScoringFailed ClientError: line 7 has 3 values" in out
    assert err == "error: the run ended FAILED: BatchScoringFailed ClientError: line 7 has 3 values\n"
    assert f"manifest {OUTPUT_URI}2024-05-01/{VERSION}/{NAME}/manifest.json" in out


def test_giving_up_the_wait_exits_1_with_a_clear_line_and_leaves_the_run_going(aws):
    aws.stack()
    aws.start(f"s3://{INPUT_BUCKET}/input/")
    aws.describe("RUNNING")
    code, out, err = run(aws, "--input", f"s3://{INPUT_BUCKET}/input/", "--date", "2024-05-01", "--wait",
                         "--poll-seconds", "60", "--timeout-minutes", "0.5")
    # THEN exit 1 (the table has no 4), one stderr line saying the run goes on and how to check it
    assert code == ops_batch.EXIT_RUN_FAILED
    assert err.count("\n") == 1 and err.startswith("error: gave up waiting after 0.5 minutes; the run is still going")
    assert f"describe-execution --execution-arn {EXECUTION}" in err


def test_json_prints_one_document_with_where_results_go(aws):
    aws.stack()
    aws.start(f"s3://{INPUT_BUCKET}/input/")
    code, out, _ = run(aws, "--input", f"s3://{INPUT_BUCKET}/input/", "--date", "2024-05-01", "--json")
    assert code == 0
    document = json.loads(out)
    assert document["execution_arn"] == EXECUTION and document["status"] == "RUNNING"
    assert document["manifest"] == f"{OUTPUT_URI}2024-05-01/{VERSION}/{NAME}/manifest.json"
    aws.verify()


def test_a_usage_error_is_reported_before_a_missing_region(monkeypatch):
    # GIVEN no region configured anywhere, and an --input that is not an S3 URI
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    err = io.StringIO()
    # WHEN the command runs THEN the usage error (exit 2) is what it reports, not the region (exit 3)
    code = ops_batch.main(["run", "--input", "notanuri"], err=err)
    assert code == ops_batch.EXIT_USAGE
    assert err.getvalue().startswith("error: --input must be an S3 URI")


def test_state_machine_arn_skips_the_stack_lookup_and_defaults_the_date_to_today(aws):
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    aws.start("s3://other-bucket/input/", run_date=today, name=f"manual-{today}-{TOKEN}")
    code, out, _ = run(aws, "--input", "s3://other-bucket/input/", "--state-machine-arn", STATE_MACHINE)
    assert code == 0
    assert "results" not in out  # without the stack outputs, the output folder is not known here
    aws.verify()


@pytest.mark.parametrize("argv, message", [
    (["--input", "/data/rows.csv"], "--input must be an S3 URI such as s3://my-bucket/input/, got '/data/rows.csv'"),
    (["--input", "s3://My_Bucket/input/"], "'My_Bucket' is not a valid S3 bucket name"),
    (["--input", "s3://192.168.1.10/input/"], "'192.168.1.10' is not a valid S3 bucket name"),
    (["--input", f"s3://{INPUT_BUCKET}"], "give a key or prefix inside the bucket"),
    (["--input", f"s3://{INPUT_BUCKET}/my input/"], "contains whitespace"),
    (["--input", f"s3://{INPUT_BUCKET}/x/", "--date", "2024/05/01"], "--date must be written YYYY-MM-DD"),
    (["--input", f"s3://{INPUT_BUCKET}/x/", "--date", "2024-02-30"], "--date '2024-02-30' is not a calendar date"),
    (["--input", f"s3://{INPUT_BUCKET}/x/", "--state-machine-arn", "fraud-detector-batch"],
     "is not a state machine ARN"),
    (["--input", f"s3://{INPUT_BUCKET}/x/", "--wait", "--poll-seconds", "0"], "must be positive"),
])
def test_argument_mistakes_exit_2_with_one_clear_line_and_call_nothing(aws, argv, message):
    code, out, err = run(aws, *argv)
    assert code == ops_batch.EXIT_USAGE
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and out == ""
    aws.verify()


def test_an_input_outside_the_input_bucket_is_refused_before_starting(aws):
    # GIVEN the batch job may only read its own input bucket
    aws.stack()
    # WHEN the input is elsewhere  THEN nothing starts and the message says which bucket is readable
    code, _, err = run(aws, "--input", "s3://someone-elses-bucket/input/", "--date", "2024-05-01")
    assert code == ops_batch.EXIT_USAGE
    assert f"may only read s3://{INPUT_BUCKET}/" in err
    aws.verify()


def test_a_missing_stack_exits_3_with_what_to_do(aws):
    aws.stubs["cloudformation"].add_client_error(
        "describe_stacks", service_error_code="ValidationError", http_status_code=400,
        service_message="Stack with id FraudDetector-Batch does not exist", expected_params={
            "StackName": "FraudDetector-Batch"})
    code, _, err = run(aws, "--input", f"s3://{INPUT_BUCKET}/input/")
    assert code == ops_batch.EXIT_AWS
    assert "stack FraudDetector-Batch was not found" in err and "--state-machine-arn" in err


def test_a_stack_without_the_state_machine_output_exits_3(aws):
    aws.stack(outputs=[], name="FraudDetector-Realtime")
    code, _, err = run(aws, "--input", f"s3://{INPUT_BUCKET}/input/", "--stack", "FraudDetector-Realtime")
    assert code == ops_batch.EXIT_AWS
    assert "has no StateMachineArn output" in err


def test_a_refused_start_exits_3_with_the_service_message(aws):
    aws.stack()
    aws.stubs["stepfunctions"].add_client_error(
        "start_execution", service_error_code="ExecutionAlreadyExists", http_status_code=400,
        service_message=f"Execution Already Exists: '{EXECUTION}'")
    code, _, err = run(aws, "--input", f"s3://{INPUT_BUCKET}/input/", "--date", "2024-05-01")
    assert code == ops_batch.EXIT_AWS
    assert "ExecutionAlreadyExists: Execution Already Exists" in err


def test_no_region_configured_exits_3(monkeypatch):
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(variable, raising=False)
    err = io.StringIO()
    code = ops_batch.main(["run", "--input", f"s3://{INPUT_BUCKET}/input/", "--state-machine-arn", STATE_MACHINE],
                          err=err)
    assert code == ops_batch.EXIT_AWS
    assert "no AWS region configured" in err.getvalue()


def test_execution_names_fit_transform_job_names():
    # GIVEN SageMaker's own constraints on TransformJobName (from the API model)
    constraints = shared_botocore_session().get_service_model("sagemaker").operation_model(
        "CreateTransformJob").input_shape.members["TransformJobName"].metadata
    name = ops_batch.execution_name("2024-05-01")
    # THEN the job name built from the longest allowed prefix (23), the run name and the suffix is valid
    job_name = f"{'p' * 23}-{name}-99"
    assert re.fullmatch(constraints["pattern"], job_name) and len(job_name) <= constraints["max"]
    assert len(name) <= ops_batch.MAX_EXECUTION_NAME
    assert ops_batch.execution_name("2024-05-01") != name


@pytest.mark.parametrize("token", ["a_b", "x" * 20, "x-"])
def test_a_name_that_would_break_the_job_name_is_refused(token):
    with pytest.raises(ops_batch.UsageError, match="letters, digits and hyphens"):
        ops_batch.execution_name("2024-05-01", token)


def test_default_stack_name_follows_the_app_naming(tmp_path):
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"deploy": {"model": {"name": "churn-scorer"}}}}))
    assert ops_batch.default_stack_name(cdk_json) == "ChurnScorer-Batch"
    assert ops_batch.default_stack_name(tmp_path / "missing.json") is None


def test_default_stack_name_comes_from_the_models_metadata_when_cdk_json_names_no_model(tmp_path):
    # GIVEN cdk.json pointing at a packaged model, without a name of its own
    (tmp_path / "models" / "churn").mkdir(parents=True)
    (tmp_path / "models" / "churn" / "metadata.json").write_text(json.dumps({"model_name": "churn-scorer"}))
    cdk_json = tmp_path / "cdk.json"
    cdk_json.write_text(json.dumps({"context": {"deploy": {"model": {"artifacts_dir": "models/churn"}}}}))
    # THEN the stack is named after the model in its metadata.json, like the app names it
    assert ops_batch.default_stack_name(cdk_json) == "ChurnScorer-Batch"
