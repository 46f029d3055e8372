"""The drift step after each transform, executed in moto's Step Functions interpreter.

A standalone stack holds BatchScoring with a DriftCheck and the DriftMonitor whose function it invokes. The
synthesized definition runs in moto (as in test_workflow.py); the scripted SageMaker also writes each input
object's ``.out`` (scored by the demo model's ONNX export), and the Lambda integration runs the real drift job
in-process, configured with the environment the template gives the function, against the same moto S3.
"""
from __future__ import annotations

import importlib
import json
import shutil
import sys
from dataclasses import dataclass

import aws_cdk as cdk
import boto3
import numpy as np
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint
from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

from ml_constructs.common.alert_topic import AlertTopic
from ml_constructs.batch.scoring import BatchScoring, DriftCheck, ScoringStorage
from ml_constructs.common.model_package import ModelPackage
from ml_constructs.monitoring.drift_monitor import DriftMonitor, DriftSchedule, DriftSource
from tests.moto_aws import mocked_aws
from tests.conftest import ARTIFACTS_DIR, SKIP_BUNDLING
from tests.unit.batch.conftest import one, resources
from tests.unit.batch.workflow import ACCOUNT, COMPLETED, REGION, FakeTransformJobs, JobFailed, install, render, wait_for
from tests.unit.monitoring.demo import RUNTIME_DIR, feature_names, model_scores, reference_rows, write_model_dir
from tests.nag import unacknowledged_findings

INPUT_BUCKET = "batch-input"
OUTPUT_BUCKET = "batch-output"
KEY_ARN = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:fraud-detector-drift"
MODEL_NAME = "fraud-detector-model-abc"
RUN_NAME = "manual-2024-05-01-0a1b2c3d"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    target = write_model_dir(tmp_path_factory.mktemp("model"))
    for item in ARTIFACTS_DIR.iterdir():
        if not (target / item.name).exists():
            (shutil.copytree if item.is_dir() else shutil.copyfile)(item, target / item.name)
    return target


def build_stack(model_dir, outdir=None, *, nag=False) -> tuple[cdk.App, cdk.Stack]:
    app = cdk.App(context=SKIP_BUNDLING, outdir=outdir)
    stack = cdk.Stack(app, "BatchDrift", env=cdk.Environment(account=ACCOUNT, region=REGION))
    key = kms.Key(stack, "DataKey", enable_key_rotation=True)
    input_bucket = s3.Bucket.from_bucket_name(stack, "Input", INPUT_BUCKET)
    output_bucket = s3.Bucket.from_bucket_name(stack, "Output", OUTPUT_BUCKET)
    alerts = AlertTopic(stack, "Alerts", encryption_key=key)
    monitor = DriftMonitor(
        stack, "Drift", artifacts_dir=model_dir, encryption_key=key, alert_topic=alerts.topic,
        source=DriftSource(bucket=input_bucket, prefix="input/", format="batch", output_bucket=output_bucket,
                           output_prefix="predictions/"),
        report_bucket=output_bucket, report_prefix="monitoring/drift",
        schedule=DriftSchedule(scheduled=False, window=cdk.Duration.days(1)))
    BatchScoring(stack, "Scoring", package=ModelPackage(stack, "Package", artifacts_dir=model_dir),
                 storage=ScoringStorage(input_bucket=input_bucket, output_bucket=output_bucket, data_key=key),
                 alert_topic=alerts.topic, job_name_prefix="fraud-detector", drift=DriftCheck(function=monitor.function))
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack


@pytest.fixture(scope="module")
def template_json(model_dir) -> dict:
    return Template.from_stack(build_stack(model_dir)[1]).to_json()


def substitutions(template: dict, topic_arn: str) -> dict[str, str]:
    values = {"AWS::Partition": "aws", "AWS::Region": REGION, "AWS::AccountId": ACCOUNT}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::KMS::Key":
            values[f"{logical_id}.Arn"] = KEY_ARN
        elif resource["Type"] == "AWS::SNS::Topic":
            values[logical_id] = topic_arn
        elif resource["Type"] == "AWS::SageMaker::Model":
            values[f"{logical_id}.ModelName"] = MODEL_NAME
        elif resource["Type"] == "AWS::Lambda::Function":
            values[f"{logical_id}.Arn"] = FUNCTION_ARN
    return values


@dataclass
class ScoringJobs(FakeTransformJobs):
    """The scripted SageMaker, which also writes ``<output><relative key>.out`` (``<id>,<score>``) when a job
    completes, scored with the demo model's ONNX export, as a real transform with DataProcessing would."""

    client: object = None

    def create(self, parameters: dict):
        outcome = super().create(parameters)
        if outcome == COMPLETED:
            input_uri = parameters["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
            bucket, prefix = input_uri.removeprefix("s3://").split("/", 1)
            out_bucket, out_prefix = parameters["TransformOutput"]["S3OutputPath"].removeprefix("s3://").split("/", 1)
            for item in self.client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", []):
                lines = self.client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read().decode().splitlines()
                ids = [line.split(",", 1)[0] for line in lines]
                rows = np.asarray([[float(value) for value in line.split(",")[1:]] for line in lines])
                body = "".join(f"{identifier},{score}\n" for identifier, score in zip(ids, model_scores(rows)))
                self.client.put_object(Bucket=out_bucket, Key=out_prefix + item["Key"][len(prefix):] + ".out",
                                       Body=body.encode())
        return outcome


@dataclass
class Sandbox:
    stepfunctions: object
    s3: object
    jobs: ScoringJobs
    arn: str
    invocations: list

    def upload(self, rows: np.ndarray, key: str = "input/2024-05-01/part-0.csv") -> None:
        body = "".join(f"r{index}," + ",".join(repr(float(value)) for value in row) + "\n"
                       for index, row in enumerate(rows))
        self.s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body.encode())

    def run(self, execution_input: dict, name: str = RUN_NAME) -> dict:
        arn = self.stepfunctions.start_execution(stateMachineArn=self.arn, name=name,
                                                 input=json.dumps(execution_input))["executionArn"]
        return wait_for(self.stepfunctions, arn, timeout_s=120)

    def manifest(self, version: str, name: str = RUN_NAME) -> dict:
        key = f"predictions/2024-05-01/{version}/{name}/manifest.json"
        return json.loads(self.s3.get_object(Bucket=OUTPUT_BUCKET, Key=key)["Body"].read())

    def report(self, uri: str) -> dict:
        bucket, key = uri.removeprefix("s3://").split("/", 1)
        return json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())


@pytest.fixture
def sandbox(monkeypatch, template_json, model_dir, tmp_path):
    for variable, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                            "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(variable, value)
    _, function = next((logical_id, resource) for logical_id, resource
                       in resources(template_json, "AWS::Lambda::Function").items()
                       if resource["Properties"].get("Handler") == "drift_handler.handler")
    for name, value in function["Properties"]["Environment"]["Variables"].items():
        monkeypatch.setenv(name, render(value, {}))
    monkeypatch.setenv("BASELINE_PATH", str(model_dir / "drift_baseline.json"))
    monkeypatch.syspath_prepend(str(RUNTIME_DIR))
    drift_handler = importlib.import_module("drift_handler")
    invocations: list[dict] = []
    failure: list[Exception] = []

    def invoke_drift_job(parameters, region, state_credentials):
        """The Lambda integration: the real drift job, in-process, against moto's S3."""
        assert parameters["FunctionName"] == FUNCTION_ARN
        event = json.loads(parameters["Payload"])
        invocations.append(event)
        if failure:
            return {"StatusCode": 200, "FunctionError": "Unhandled",
                    "Payload": {"errorType": type(failure[0]).__name__, "errorMessage": str(failure[0])}}
        try:
            return {"StatusCode": 200, "Payload": drift_handler.run(event, boto3.client("s3"), out=sys.stderr)}
        except Exception as exc:  # noqa: BLE001 - what Lambda reports for an unhandled error
            return {"StatusCode": 200, "FunctionError": "Unhandled",
                    "Payload": {"errorType": type(exc).__name__, "errorMessage": str(exc)}}

    monkeypatch.setattr(lambda_eval_utils, "_invoke_lambda_function", invoke_drift_job)
    with mocked_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        client = boto3.client("s3")
        for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
            client.create_bucket(Bucket=bucket)
        jobs = ScoringJobs(client=client)
        install(monkeypatch, jobs)
        topic_arn = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
        _, machine = one(template_json, "AWS::StepFunctions::StateMachine")
        definition = render(machine["Properties"]["DefinitionString"], substitutions(template_json, topic_arn))
        stepfunctions = boto3.client("stepfunctions")
        arn = stepfunctions.create_state_machine(name="batch", definition=definition,
                                                 roleArn=f"arn:aws:iam::{ACCOUNT}:role/batch")["stateMachineArn"]
        box = Sandbox(stepfunctions, client, jobs, arn, invocations)
        box.fail_drift = failure.append
        yield box


def deployed_version(template_json) -> str:
    _, machine = one(template_json, "AWS::StepFunctions::StateMachine")
    definition = json.loads(render(machine["Properties"]["DefinitionString"], {}))
    return definition["States"]["ReadRequest"]["Parameters"]["defaults"]["model"]["version"]


def test_a_run_of_baseline_like_rows_records_no_drift_and_links_the_report(sandbox, template_json):
    # GIVEN a night's input drawn from the training baseline
    sandbox.upload(reference_rows()[:400])
    # WHEN the run completes
    description = sandbox.run({"run_date": "2024-05-01"})
    assert description["status"] == "SUCCEEDED", description
    version = deployed_version(template_json)
    # THEN the drift job read exactly this run's input and outputs
    (event,) = sandbox.invocations
    assert event["input_uri"] == f"s3://{INPUT_BUCKET}/input/"
    assert event["output_uri"] == f"s3://{OUTPUT_BUCKET}/predictions/2024-05-01/{version}/{RUN_NAME}/"
    # AND the SUCCEEDED manifest links its report, which found every row scored and no drift
    manifest = sandbox.manifest(version)
    assert manifest["status"] == "SUCCEEDED"
    drift = manifest["drift"]
    assert (drift["status"], drift["drift"], drift["drifted_features"], drift["rows_seen"]) == ("ok", False, [], 400)
    assert drift["report"].startswith(f"s3://{OUTPUT_BUCKET}/monitoring/drift/reports/")
    report = sandbox.report(drift["report"])
    assert report["prediction"]["count"] == 400 and report["invalid_rate"] == 0


def test_a_shifted_feature_is_flagged_in_the_manifest(sandbox, template_json):
    # GIVEN the same rows with one feature shifted far from its training range
    rows = reference_rows()[:400].copy()
    shifted = feature_names().index("amount") if "amount" in feature_names() else 0
    rows[:, shifted] = rows[:, shifted] * 5 + 1000
    sandbox.upload(rows)
    # WHEN the run completes
    assert sandbox.run({"run_date": "2024-05-01"})["status"] == "SUCCEEDED"
    # THEN the manifest records drift in exactly that feature
    drift = sandbox.manifest(deployed_version(template_json))["drift"]
    assert drift["drift"] is True and drift["drifted_features"] == [feature_names()[shifted]]


def test_a_failing_drift_step_keeps_the_predictions_and_the_succeeded_run(sandbox, template_json):
    # GIVEN a drift job that fails (e.g. it cannot read its baseline)
    sandbox.upload(reference_rows()[:50])
    sandbox.fail_drift(RuntimeError("baseline unreadable"))
    # WHEN the run completes
    description = sandbox.run({"run_date": "2024-05-01"})
    # THEN the run still succeeds, its predictions stay, and the manifest records the failed step and why
    assert description["status"] == "SUCCEEDED", description
    version = deployed_version(template_json)
    prefix = f"predictions/2024-05-01/{version}/{RUN_NAME}/"
    keys = [item["Key"] for item in sandbox.s3.list_objects_v2(Bucket=OUTPUT_BUCKET, Prefix=prefix)["Contents"]]
    assert f"{prefix}2024-05-01/part-0.csv.out" in keys
    manifest = sandbox.manifest(version)
    assert manifest["status"] == "SUCCEEDED" and manifest["transform_job_name"]
    assert manifest["drift"]["status"] == "failed" and manifest["drift"]["error"] == "RuntimeError"
    assert "baseline unreadable" in manifest["drift"]["cause"]
    assert json.loads(description["output"]) == manifest


def test_an_input_outside_the_monitored_bucket_is_refused_by_the_job_not_the_run(sandbox, template_json):
    # GIVEN a manual run on another bucket's input (the drift job may not read it)
    sandbox.s3.create_bucket(Bucket="elsewhere")
    sandbox.s3.put_object(Bucket="elsewhere", Key="x/part.csv", Body=b"r0," + b",".join([b"1"] * 12) + b"\n")
    description = sandbox.run({"input_uri": "s3://elsewhere/x/", "run_date": "2024-05-01"})
    # THEN the run succeeds and the manifest says why drift was not measured
    assert description["status"] == "SUCCEEDED", description
    drift = sandbox.manifest(deployed_version(template_json))["drift"]
    assert drift["status"] == "failed" and drift["error"] == "ValueError"
    assert "not in the monitored bucket batch-input" in drift["cause"]


def test_a_candidate_model_run_skips_the_drift_step(sandbox):
    # GIVEN a run of a candidate model (ops.compare)
    sandbox.upload(reference_rows()[:50])
    candidate = {"name": "fraud-detector-candidate", "version": "v2-490fc0dd6ebe"}
    # WHEN it completes
    assert sandbox.run({"run_date": "2024-05-01", "model": candidate})["status"] == "SUCCEEDED"
    # THEN the drift job was not invoked and the manifest says why
    assert sandbox.invocations == []
    assert sandbox.manifest(candidate["version"])["drift"]["status"] == "skipped"


def test_a_failed_transform_never_reaches_the_drift_step(sandbox, template_json):
    # GIVEN a transform job that fails
    sandbox.upload(reference_rows()[:50])
    sandbox.jobs.script = [JobFailed("ClientError: bad row")]
    # WHEN the run ends
    description = sandbox.run({"run_date": "2024-05-01"})
    # THEN the FAILED semantics are unchanged: failed run, FAILED manifest, no drift invocation
    assert description["status"] == "FAILED"
    assert sandbox.invocations == []
    assert sandbox.manifest(deployed_version(template_json))["status"] == "FAILED"


def test_the_state_machine_may_invoke_only_the_drift_function(template_json):
    # GIVEN the synthesized stack THEN the state machine role's lambda:InvokeFunction names the drift function only
    statements = [statement for logical_id, policy in resources(template_json, "AWS::IAM::Policy").items()
                  if "StateMachineRole" in logical_id
                  for statement in policy["Properties"]["PolicyDocument"]["Statement"]
                  if "lambda:InvokeFunction" in json.dumps(statement["Action"])]
    assert len(statements) == 1
    rendered = [render(resource, {}) for resource in statements[0]["Resource"]]
    assert all(value.startswith("${Drift") and "Function" in value for value in rendered)
    # AND the drift job for a batch has no hourly schedule of its own
    assert resources(template_json, "AWS::Scheduler::Schedule") == {}


def test_cdk_nag_and_cfn_lint_are_clean_with_the_drift_step(model_dir, tmp_path):
    # GIVEN the workflow with its drift step, under AwsSolutions checks
    app, _ = build_stack(model_dir, str(tmp_path), nag=True)
    # THEN cdk-nag has no unacknowledged finding
    assert unacknowledged_findings(app, tmp_path) == []
    # AND cfn-lint reports no error
    template = (tmp_path / "BatchDrift.template.json").read_text()
    assert [str(match) for match in lint(template, regions=["us-east-1"]) if match.rule.id.startswith("E")] == []
