"""The synthesized state machine, executed: defaults, output paths, manifests, retries and failure handling.

The definition is the one in the template (only retry/wait timings are shortened); moto runs it against
in-memory S3 and SNS, and a scripted fake stands in for SageMaker (see workflow.py).
"""
from __future__ import annotations

import copy
import datetime as dt
import json
import re
from dataclasses import dataclass

import boto3
import pytest

from tests.moto_aws import mocked_aws
from tests.unit.batch.conftest import one
from tests.unit.batch.workflow import (
    ACCOUNT, CAPACITY_FAILURE, COMPLETED, GENERIC_ERROR, REGION, ApiError, CreatedDespiteError, FakeTransformJobs,
    JobFailed, install, render, sdk_cause, wait_for)

INPUT_BUCKET = "batch-input"
OUTPUT_BUCKET = "batch-output"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
MODEL_NAME = "fraud-detector-model-abc"
UUID_NAME = "4b69cbb7-4050-4cf0-a096-4a0307b92a1a"  # the shape of a Scheduler-started execution's name
THROTTLED = ApiError(GENERIC_ERROR, sdk_cause("Rate exceeded", "ThrottlingException"))
INVALID_MODEL = ApiError(GENERIC_ERROR, sdk_cause("Could not find model \"fraud-detector-model-abc\".",
                                                  "ValidationException"))


def substitutions_for(template_json: dict, topic_arn: str) -> dict[str, str]:
    values = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    for logical_id, resource in template_json["Resources"].items():
        if logical_id.startswith("InputStorageBucket") and resource["Type"] == "AWS::S3::Bucket":
            values[logical_id] = INPUT_BUCKET
        elif logical_id.startswith("OutputStorageBucket") and resource["Type"] == "AWS::S3::Bucket":
            values[logical_id] = OUTPUT_BUCKET
        elif resource["Type"] == "AWS::KMS::Key":
            values[f"{logical_id}.Arn"] = KEY_ARN
        elif resource["Type"] == "AWS::SNS::Topic":
            values[logical_id] = topic_arn
        elif resource["Type"] == "AWS::SageMaker::Model":
            values[f"{logical_id}.ModelName"] = MODEL_NAME
    return values


def shorten_timings(definition: dict) -> dict:
    """Same states and logic; waits cut so a test takes seconds, not hours.

    The backoff states still compute their waits (kept in the execution history); only the Wait that would
    sleep through them is made instant.
    """
    definition = copy.deepcopy(definition)
    definition["States"]["ReadRequest"]["Parameters"]["retry"]["wait_s"] = 0
    wait = definition["States"]["WaitToRetry"]
    assert wait.pop("SecondsPath") == "$.api_retry.wait_s"
    wait["Seconds"] = 0
    return definition


@dataclass
class Sandbox:
    stepfunctions: object
    s3: object
    sqs: object
    queue_url: str
    jobs: FakeTransformJobs
    state_machine_arn: str
    model_version: str

    def run(self, name: str, execution_input: dict) -> dict:
        arn = self.stepfunctions.start_execution(stateMachineArn=self.state_machine_arn, name=name,
                                                 input=json.dumps(execution_input))["executionArn"]
        return wait_for(self.stepfunctions, arn)

    def manifest(self, run_date: str, name: str, version: str | None = None) -> dict:
        key = f"predictions/{run_date}/{version or self.model_version}/{name}/manifest.json"
        body = self.s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)
        assert body["ServerSideEncryption"] == "aws:kms"
        return json.loads(body["Body"].read())

    def states_entered(self, execution_arn: str) -> list[str]:
        events = self.stepfunctions.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return [event["stateEnteredEventDetails"]["name"] for event in events if "stateEnteredEventDetails" in event]

    def api_retry_waits(self, execution_arn: str) -> list[int]:
        """The waits the backoff states chose, in order."""
        events = self.stepfunctions.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        return [json.loads(event["stateExitedEventDetails"]["output"])["api_retry"]["wait_s"] for event in events
                if event.get("stateExitedEventDetails", {}).get("name", "").startswith("BackOff")]

    def notifications(self) -> list[dict]:
        messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(message["Body"]) for message in messages]


@pytest.fixture
def sandbox(monkeypatch, batch_json):
    for variable, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(variable, value)  # moto's fake credentials, for this test only
    jobs = FakeTransformJobs()
    install(monkeypatch, jobs)
    with mocked_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        s3, sns, sqs = boto3.client("s3"), boto3.client("sns"), boto3.client("sqs")
        for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
            s3.create_bucket(Bucket=bucket)
        topic_arn = sns.create_topic(Name="alerts")["TopicArn"]
        queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        _, machine = one(batch_json, "AWS::StepFunctions::StateMachine")
        definition = json.loads(render(machine["Properties"]["DefinitionString"],
                                       substitutions_for(batch_json, topic_arn)))
        stepfunctions = boto3.client("stepfunctions")
        arn = stepfunctions.create_state_machine(name="batch", definition=json.dumps(shorten_timings(definition)),
                                                 roleArn=f"arn:aws:iam::{ACCOUNT}:role/batch")["stateMachineArn"]
        version = definition["States"]["ReadRequest"]["Parameters"]["defaults"]["model"]["version"]
        yield Sandbox(stepfunctions, s3, sqs, queue_url, jobs, arn, version)


def test_scheduled_run_scores_the_default_input_into_a_dated_versioned_folder(sandbox):
    # GIVEN the input EventBridge Scheduler sends (no input_uri, no run_date) and a Scheduler-shaped name
    # WHEN the run completes
    description = sandbox.run(UUID_NAME, {"trigger": "schedule", "scheduled_time": "2024-05-01T02:00:00Z"})
    assert description["status"] == "SUCCEEDED", description
    run_date = description["startDate"].astimezone(dt.timezone.utc).date().isoformat()
    # THEN one transform job read the default input and wrote under predictions/<date>/<version>/<execution>/
    (request,) = sandbox.jobs.requests
    assert request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == f"s3://{INPUT_BUCKET}/input/"
    assert request["TransformOutput"]["S3OutputPath"] == (
        f"s3://{OUTPUT_BUCKET}/predictions/{run_date}/{sandbox.model_version}/{UUID_NAME}/")
    assert request["ModelName"] == MODEL_NAME
    assert request["Tags"] == [{"Key": "execution", "Value": UUID_NAME}]
    # AND the job name is derived from the execution and fits SageMaker's 63 characters
    assert request["TransformJobName"] == f"fraud-detector-{UUID_NAME}-0"
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", request["TransformJobName"])
    # AND a manifest beside the predictions records the provenance; the execution returns it
    manifest = sandbox.manifest(run_date, UUID_NAME)
    assert manifest["status"] == "SUCCEEDED"
    assert manifest["model_name"] == "fraud-detector"
    assert manifest["model_version"] == sandbox.model_version
    assert manifest["sagemaker_model_name"] == MODEL_NAME
    assert manifest["input_uri"] == f"s3://{INPUT_BUCKET}/input/"
    assert manifest["output_uri"] == request["TransformOutput"]["S3OutputPath"]
    assert manifest["execution_arn"] == description["executionArn"]
    assert manifest["transform_job_name"] == request["TransformJobName"]
    assert manifest["start_time"] <= manifest["end_time"]
    assert dt.datetime.fromisoformat(manifest["start_time"].replace("Z", "+00:00")).date().isoformat() == run_date
    assert json.loads(description["output"]) == manifest
    assert sandbox.notifications() == []


def test_manual_run_uses_the_given_input_and_date(sandbox):
    # GIVEN what `python -m ops.batch run --input ... --date 2024-05-01` sends
    execution_input = {"input_uri": f"s3://{INPUT_BUCKET}/exports/2024-05-01/", "run_date": "2024-05-01",
                       "trigger": "manual"}
    # WHEN it runs
    description = sandbox.run("manual-2024-05-01-0a1b2c3d", execution_input)
    # THEN that input is scored and the output folder is named by that date
    assert description["status"] == "SUCCEEDED"
    (request,) = sandbox.jobs.requests
    assert request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"] == execution_input["input_uri"]
    assert request["TransformOutput"]["S3OutputPath"].startswith(
        f"s3://{OUTPUT_BUCKET}/predictions/2024-05-01/{sandbox.model_version}/manual-2024-05-01-0a1b2c3d/")
    assert sandbox.manifest("2024-05-01", "manual-2024-05-01-0a1b2c3d")["input_uri"] == execution_input["input_uri"]


def test_reruns_of_the_same_input_never_reuse_a_job_name(sandbox):
    # GIVEN two runs of the same input and date
    for name in ("manual-2024-05-01-aaaaaaaa", "manual-2024-05-01-bbbbbbbb"):
        assert sandbox.run(name, {"input_uri": f"s3://{INPUT_BUCKET}/input/", "run_date": "2024-05-01"})[
            "status"] == "SUCCEEDED"
    # THEN each started its own transform job and wrote its own folder
    assert len(set(sandbox.jobs.job_names)) == 2
    assert sandbox.manifest("2024-05-01", "manual-2024-05-01-bbbbbbbb")["status"] == "SUCCEEDED"


def test_a_candidate_model_scores_the_same_input_into_its_own_version_folder(sandbox):
    # GIVEN what `python -m ops.batch run --model-name ... --model-version ...` sends for a candidate
    candidate = {"name": "fraud-detector-candidate", "version": "v2-490fc0dd6ebe"}
    execution_input = {"input_uri": f"s3://{INPUT_BUCKET}/input/", "run_date": "2024-05-01", "trigger": "manual",
                       "model": candidate}
    # WHEN it runs
    description = sandbox.run("manual-2024-05-01-c0ffee00", execution_input)
    # THEN the candidate model scored the input, into predictions/<date>/<candidate version>/<execution>/
    assert description["status"] == "SUCCEEDED"
    (request,) = sandbox.jobs.requests
    assert request["ModelName"] == candidate["name"]
    assert request["TransformOutput"]["S3OutputPath"] == (
        f"s3://{OUTPUT_BUCKET}/predictions/2024-05-01/{candidate['version']}/manual-2024-05-01-c0ffee00/")
    # AND its manifest records the candidate, not the deployed model
    manifest = sandbox.manifest("2024-05-01", "manual-2024-05-01-c0ffee00", version=candidate["version"])
    assert (manifest["sagemaker_model_name"], manifest["model_version"]) == (candidate["name"], candidate["version"])


def test_a_candidate_without_a_version_fails_before_any_job(sandbox):
    # GIVEN a model name without the version label its outputs would be filed under
    description = sandbox.run("manual-2024-05-01-c0ffee01", {"model": {"name": "fraud-detector-candidate"}})
    # THEN the run fails at once and nothing is scored under the deployed model's version
    assert description["status"] == "FAILED"
    assert sandbox.jobs.requests == []


def test_throttled_create_is_retried_under_the_same_job_name_with_backoff(sandbox):
    # GIVEN SageMaker throttles the first two CreateTransformJob calls (the generic error, throttling cause)
    sandbox.jobs.script = [THROTTLED, THROTTLED]
    # WHEN a run starts
    description = sandbox.run(UUID_NAME, {"run_date": "2024-05-01"})
    # THEN the task is retried after 30 s, then 60 s, and the run succeeds; the retries keep the job name, so a
    # call that did create a job despite its error could never lead to a second one
    assert description["status"] == "SUCCEEDED", description
    assert sandbox.jobs.job_names == [f"fraud-detector-{UUID_NAME}-0"] * 3
    assert sandbox.jobs.created_names == [f"fraud-detector-{UUID_NAME}-0"]
    assert sandbox.api_retry_waits(description["executionArn"]) == [30, 60]
    assert sandbox.manifest("2024-05-01", UUID_NAME)["api_retries"] == 2
    assert sandbox.notifications() == []


def test_a_service_fault_is_retried_too(sandbox):
    # GIVEN a 500 from SageMaker on the first call
    sandbox.jobs.script = [ApiError(GENERIC_ERROR, sdk_cause("We encountered an internal error.", "InternalFailure",
                                                             status=500))]
    # WHEN a run starts  THEN it is retried and succeeds
    description = sandbox.run(UUID_NAME, {})
    assert description["status"] == "SUCCEEDED"
    assert len(sandbox.jobs.requests) == 2


def test_a_validation_error_goes_straight_to_the_failure_path(sandbox):
    # GIVEN SageMaker refuses the request itself (same generic error name as throttling, ValidationException cause)
    sandbox.jobs.script = [INVALID_MODEL]
    # WHEN a run starts
    description = sandbox.run(UUID_NAME, {"run_date": "2024-05-05"})
    # THEN nothing is retried or waited for: the run is reported and fails at once
    assert description["status"] == "FAILED"
    assert len(sandbox.jobs.requests) == 1
    entered = sandbox.states_entered(description["executionArn"])
    after_choice = entered.index("RetryableFailure?") + 1
    assert entered[after_choice:after_choice + 3] == ["ErrorDefaults", "CompleteError", "NotifyFailure"]
    assert not {"WaitToRetry", "WaitForCapacity"} & set(entered)
    (notification,) = sandbox.notifications()
    assert "ValidationException" in json.loads(notification["Message"])["reason"]
    manifest = sandbox.manifest("2024-05-05", UUID_NAME)
    assert (manifest["status"], manifest["error"], manifest["api_retries"]) == ("FAILED", GENERIC_ERROR, 0)


def test_api_retries_are_bounded_then_the_run_fails_and_notifies(sandbox):
    # GIVEN SageMaker throttles every call
    sandbox.jobs.script = [THROTTLED] * 10
    # WHEN a run starts
    description = sandbox.run(UUID_NAME, {})
    # THEN it tries once plus the configured 4 retries (waits capped by the backoff schedule), then fails
    assert description["status"] == "FAILED"
    assert len(sandbox.jobs.requests) == 5
    assert sandbox.api_retry_waits(description["executionArn"]) == [30, 60, 120, 240]
    (notification,) = sandbox.notifications()
    assert "ThrottlingException" in json.loads(notification["Message"])["reason"]


def test_a_quota_error_is_retried_after_minutes(sandbox):
    # GIVEN the account's instance quota is in use by other jobs on the first call
    sandbox.jobs.script = [ApiError("SageMaker.ResourceLimitExceededException", "The account-level service limit "
                                    "'ml.m5.xlarge for transform job usage' is 4 Instances")]
    # WHEN a run starts  THEN it waits 5 minutes and tries again (same name: the first call created nothing)
    description = sandbox.run(UUID_NAME, {})
    assert description["status"] == "SUCCEEDED"
    assert sandbox.jobs.job_names == [f"fraud-detector-{UUID_NAME}-0"] * 2
    assert sandbox.api_retry_waits(description["executionArn"]) == [300]


@pytest.mark.parametrize("name", ["nightly_2024_05_01", "backfill-2024-05-01-for-the-card-issuer-audit-x"])
def test_an_execution_name_sagemaker_cannot_use_fails_the_run_at_once(sandbox, name):
    # GIVEN a StartExecution caller naming the run with "_" (allowed by Step Functions) or beyond 36 characters
    # WHEN it runs
    description = sandbox.run(name, {"run_date": "2024-05-06"})
    # THEN SageMaker refuses the derived job name, and the run is reported at once with that reason
    assert description["status"] == "FAILED"
    assert len(sandbox.jobs.requests) == 1
    (notification,) = sandbox.notifications()
    assert "transformJobName" in json.loads(notification["Message"])["reason"]
    assert sandbox.manifest("2024-05-06", name)["status"] == "FAILED"


def test_a_job_without_capacity_is_started_again_after_a_wait(sandbox):
    # GIVEN the first job ends FAILED for lack of instances, the second gets them
    sandbox.jobs.script = [JobFailed(CAPACITY_FAILURE), COMPLETED]
    # WHEN a run starts
    description = sandbox.run(UUID_NAME, {"run_date": "2024-05-02"})
    # THEN a new job (new name) is started and the run succeeds without paging anyone
    assert description["status"] == "SUCCEEDED"
    assert sandbox.jobs.job_names == [f"fraud-detector-{UUID_NAME}-0", f"fraud-detector-{UUID_NAME}-1"]
    assert sandbox.manifest("2024-05-02", UUID_NAME)["capacity_attempts"] == 1
    assert sandbox.notifications() == []


def test_capacity_retries_are_bounded_then_the_run_fails_and_notifies(sandbox):
    # GIVEN no capacity at all
    sandbox.jobs.script = [JobFailed(CAPACITY_FAILURE)] * 5
    # WHEN a run starts
    description = sandbox.run(UUID_NAME, {"run_date": "2024-05-03"})
    # THEN it gives up after the configured capacity retries (2) and fails
    assert description["status"] == "FAILED"
    assert len(sandbox.jobs.requests) == 3
    (notification,) = sandbox.notifications()
    assert "CapacityError" in json.loads(notification["Message"])["reason"]
    assert sandbox.manifest("2024-05-03", UUID_NAME)["status"] == "FAILED"


def test_a_failed_job_notifies_with_execution_and_reason_writes_a_failed_manifest_and_fails(sandbox):
    # GIVEN the job fails on a bad row (a client error: retrying would fail again)
    reason = "ClientError: See job logs for more information: line 7 has 3 values; expected 12"
    sandbox.jobs.script = [JobFailed(reason)]
    # WHEN a run starts
    description = sandbox.run("manual-2024-05-04-deadbeef", {"run_date": "2024-05-04"})
    # THEN it is not retried, and the execution fails with the job's description as its cause
    assert description["status"] == "FAILED"
    assert description["error"] == "BatchScoringFailed"
    assert reason in json.loads(description["cause"])["FailureReason"]
    assert len(sandbox.jobs.requests) == 1
    # AND the alert topic got the execution, the input and the reason
    (notification,) = sandbox.notifications()
    assert notification["Subject"] == "fraud-detector batch scoring run failed"
    message = json.loads(notification["Message"])
    assert message["execution_arn"] == description["executionArn"]
    assert message["input_uri"] == f"s3://{INPUT_BUCKET}/input/"
    assert reason in message["reason"]
    assert "manual-2024-05-04-deadbeef" in message["summary"]
    # AND a FAILED manifest sits where the predictions would have been
    manifest = sandbox.manifest("2024-05-04", "manual-2024-05-04-deadbeef")
    assert manifest["status"] == "FAILED"
    assert manifest["error"] == "States.TaskFailed"
    assert reason in manifest["cause"]
    assert manifest["execution_arn"] == description["executionArn"]


@pytest.mark.parametrize("error", [ApiError(GENERIC_ERROR, cause=None), ApiError("States.Timeout", cause=None),
                                   ApiError("SageMaker.SomethingNew", cause="")],
                         ids=["generic-without-cause", "timeout-without-cause", "empty-cause"])
def test_an_error_of_any_shape_still_notifies_and_writes_a_failed_manifest(sandbox, error):
    # GIVEN the task fails with an error that has no Cause field at all (or an empty one)
    sandbox.jobs.script = [error]
    # WHEN a run starts
    description = sandbox.run(UUID_NAME, {"run_date": "2024-05-07"})
    # THEN the run is reported like any other failure: it fails as the batch run, not with States.Runtime
    assert description["status"] == "FAILED"
    assert description.get("error") == "BatchScoringFailed", description
    # AND the alert names the execution and the error
    (notification,) = sandbox.notifications()
    message = json.loads(notification["Message"])
    assert message["error"] == error.error
    assert message["execution_arn"] == description["executionArn"]
    # AND a FAILED manifest records the error
    manifest = sandbox.manifest("2024-05-07", UUID_NAME)
    assert (manifest["status"], manifest["error"]) == ("FAILED", error.error)


def test_a_5xx_after_the_job_was_created_does_not_start_a_second_job(sandbox):
    # GIVEN CreateTransformJob answers 500 although SageMaker did create the job (a timeout on its side)
    fault = ApiError(GENERIC_ERROR, sdk_cause("We encountered an internal error.", "InternalFailure", status=500))
    sandbox.jobs.script = [CreatedDespiteError(fault)]
    # WHEN a run starts
    description = sandbox.run(UUID_NAME, {"run_date": "2024-05-08"})
    # THEN the retry finds the job the first call created and waits for it: one job, one set of predictions
    assert description["status"] == "SUCCEEDED", description
    assert sandbox.jobs.created_names == [f"fraud-detector-{UUID_NAME}-0"]
    assert sandbox.jobs.describe_calls == [f"fraud-detector-{UUID_NAME}-0"]
    manifest = sandbox.manifest("2024-05-08", UUID_NAME)
    assert manifest["transform_job_name"] == f"fraud-detector-{UUID_NAME}-0"
    assert sandbox.notifications() == []


def test_the_name_conflict_is_recognised_under_the_generic_error_name_too(sandbox, monkeypatch):
    # GIVEN the integration reports ResourceInUse as the generic error, SageMaker's code only in the cause
    fault = ApiError(GENERIC_ERROR, sdk_cause("We encountered an internal error.", "InternalFailure", status=500))
    original = sandbox.jobs.create

    def generic_conflict(parameters):
        outcome = original(parameters)
        if isinstance(outcome, ApiError) and outcome.error == "SageMaker.ResourceInUseException":
            return ApiError(GENERIC_ERROR, outcome.cause)
        return outcome

    monkeypatch.setattr(sandbox.jobs, "create", generic_conflict)
    sandbox.jobs.script = [CreatedDespiteError(fault)]
    # WHEN a run starts  THEN it still waits for the one job instead of failing or starting another
    description = sandbox.run(UUID_NAME, {"run_date": "2024-05-10"})
    assert description["status"] == "SUCCEEDED", description
    assert sandbox.jobs.created_names == [f"fraud-detector-{UUID_NAME}-0"]


def test_an_existing_job_that_failed_for_capacity_starts_a_new_attempt(sandbox):
    # GIVEN the first create is answered 500 but made a job, which then fails for lack of instances
    fault = ApiError(GENERIC_ERROR, sdk_cause("We encountered an internal error.", "InternalFailure", status=500))
    sandbox.jobs.script = [CreatedDespiteError(fault, outcome=JobFailed(CAPACITY_FAILURE))]
    description = sandbox.run(UUID_NAME, {"run_date": "2024-05-09"})
    # THEN the run treats it like a job that failed for capacity: a new job under the next attempt's name
    assert description["status"] == "SUCCEEDED", description
    assert sandbox.jobs.created_names == [f"fraud-detector-{UUID_NAME}-0", f"fraud-detector-{UUID_NAME}-1"]
