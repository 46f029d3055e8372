"""The optional CDK pipeline: source -> test and synth -> self-mutation -> staging -> approval -> production."""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sqs as sqs
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from ml_constructs.cicd.delivery_pipeline import DeliveryPipeline, PipelineEnvironment, PipelineSource

CONNECTION = "arn:aws:codeconnections:us-east-1:111122223333:connection/12345678-1234-1234-1234-123456789012"
ENVIRONMENTS = (PipelineEnvironment(name="staging"), PipelineEnvironment(name="production", requires_approval=True))


def _one_queue_stage(stage: cdk.Stage, environment: PipelineEnvironment) -> None:
    stack = cdk.Stack(stage, "Realtime")
    sqs.Queue(stack, "Work", enforce_ssl=True, encryption=sqs.QueueEncryption.KMS_MANAGED)
    cdk.Validations.of(stack).acknowledge(cdk.Acknowledgment(
        id="AwsSolutions-SQS3", reason="a stand-in workload for the pipeline's structure; it has no consumers"))


@pytest.fixture(scope="module")
def pipeline_template() -> Template:
    app = cdk.App()
    stack = cdk.Stack(app, "Pipeline", env=cdk.Environment(account="111122223333", region="us-east-1"))
    DeliveryPipeline(stack, "Delivery", source=PipelineSource(repository="octo-org/ml-deploy", connection_arn=CONNECTION),
                     environments=ENVIRONMENTS, build_stage=_one_queue_stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))  # any unacknowledged finding fails synth
    return Template.from_stack(stack)


def _stages(template: Template) -> list[dict]:
    (pipeline,) = template.find_resources("AWS::CodePipeline::Pipeline").values()
    return pipeline["Properties"]["Stages"]


def test_stages_run_in_order_with_an_approval_before_production(pipeline_template):
    stages = _stages(pipeline_template)
    names = [stage["Name"] for stage in stages]
    # GIVEN staging then production (approval required)  THEN the pipeline promotes in that order
    assert names[:3] == ["Source", "Build", "UpdatePipeline"]
    assert names.index("Staging") < names.index("Production")
    production = stages[names.index("Production")]
    categories = [(action["ActionTypeId"]["Category"], action["RunOrder"]) for action in production["Actions"]]
    approvals = [order for category, order in categories if category == "Approval"]
    deploys = [order for category, order in categories if category == "Deploy"]
    assert len(approvals) == 1 and deploys and approvals[0] < min(deploys)
    staging = stages[names.index("Staging")]
    assert all(action["ActionTypeId"]["Category"] != "Approval" for action in staging["Actions"])


def test_source_is_the_github_repository_through_the_connection(pipeline_template):
    (source,) = _stages(pipeline_template)[0]["Actions"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == CONNECTION
    assert source["Configuration"]["FullRepositoryId"] == "octo-org/ml-deploy"
    assert source["Configuration"]["BranchName"] == "main"


def test_the_build_runs_the_readme_commands(pipeline_template):
    projects = pipeline_template.find_resources("AWS::CodeBuild::Project")
    specs = [json.loads(p["Properties"]["Source"]["BuildSpec"]) for p in projects.values()]
    synth = [s for s in specs if "make synth" in s["phases"]["build"]["commands"]]
    assert len(synth) == 1 and synth[0]["phases"]["build"]["commands"] == ["make test", "make synth"]


def test_artifacts_are_kms_encrypted_and_tls_only(pipeline_template):
    (pipeline,) = pipeline_template.find_resources("AWS::CodePipeline::Pipeline").values()
    store = pipeline["Properties"]["ArtifactStore"]
    assert store["EncryptionKey"]["Type"] == "KMS"
    policies = pipeline_template.find_resources("AWS::S3::BucketPolicy")
    assert any('"aws:SecureTransport": "false"' in json.dumps(p) for p in policies.values())


def test_bad_source_settings_are_refused_together():
    app = cdk.App()
    stack = cdk.Stack(app, "Pipeline")
    with pytest.raises(ValueError) as error:
        DeliveryPipeline(stack, "Delivery", source=PipelineSource(repository="nope", connection_arn="arn:bad"),
                         environments=(), build_stage=_one_queue_stage)
    assert "owner/repo" in str(error.value) and "connection_arn" in str(error.value)
    assert "environments" in str(error.value)
