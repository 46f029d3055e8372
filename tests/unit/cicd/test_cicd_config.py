"""The optional CI/CD stacks from configuration: the pipeline promotes staging -> approval -> production."""
from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from stacks.config import ConfigError
from tests.context import only_pattern
from tests.conftest import build_app

CONNECTION = "arn:aws:codeconnections:eu-west-1:333333333333:connection/12345678-1234-1234-1234-123456789012"
PIPELINE = {"deploy.pipeline.enabled": True, "deploy.pipeline.repository": "octo-org/ml-deploy",
            "deploy.pipeline.connection_arn": CONNECTION, "deploy.pipeline.account": "333333333333",
            "deploy.pipeline.region": "eu-west-1"}


@pytest.fixture(scope="module")
def pipeline_app():
    # nag=True: an unacknowledged cdk-nag finding anywhere (pipeline or staged stacks) fails the synth
    return build_app(overrides=PIPELINE, nag=True)


def test_the_pipeline_deploys_staging_then_production_after_an_approval(pipeline_app):
    app, stacks = pipeline_app
    template = Template.from_stack(stacks["pipeline"])
    (pipeline,) = template.find_resources("AWS::CodePipeline::Pipeline").values()
    stages = {stage["Name"]: stage for stage in pipeline["Properties"]["Stages"]}
    names = list(stages)
    assert names.index("Staging") < names.index("Production")
    production = stages["Production"]["Actions"]
    approval = [a["RunOrder"] for a in production if a["ActionTypeId"]["Category"] == "Approval"]
    deploys = [a for a in production if a["ActionTypeId"]["Category"] == "Deploy"]
    assert len(approval) == 1 and approval[0] < min(a["RunOrder"] for a in deploys)
    # AND each stage deploys the environment's own stacks under the names `-c env=<name>` gives them
    staged = {a["Configuration"]["StackName"] for a in deploys}
    assert {"FraudDetector-Production-Realtime", "FraudDetector-Production-Batch"} <= staged
    assert all(a.get("RoleArn") for a in deploys)  # through the target account's bootstrap roles


def test_the_staged_stacks_use_their_environment(pipeline_app):
    app, _ = pipeline_app
    assembly = app.synth()
    staging = assembly.get_nested_assembly("assembly-FraudDetector-Pipeline-Delivery-Staging")
    stacks = {artifact.stack_name: artifact for artifact in staging.stacks}
    assert {"FraudDetector-Staging-Realtime", "FraudDetector-Staging-Serverless"} <= set(stacks)
    # staging's overrides apply: its account and its smaller autoscaling maximum
    realtime = stacks["FraudDetector-Staging-Realtime"]
    assert realtime.environment.account == "111111111111"
    targets = [r for r in realtime.template["Resources"].values()
               if r["Type"] == "AWS::ApplicationAutoScaling::ScalableTarget"]
    assert targets and {t["Properties"]["MaxCapacity"] for t in targets} == {4}


@pytest.mark.parametrize("overrides, messages", [
    ({"deploy.pipeline.enabled": True}, ["deploy.pipeline.repository: required", "deploy.pipeline.connection_arn",
                                         "deploy.pipeline.account", "deploy.pipeline.region"]),
    ({**PIPELINE, "deploy.pipeline.stages": ["staging", "qa"], "deploy.pipeline.approve_before": ["qa"]},
     ["'qa' is not an environment in deploy.environments (known: production, staging)"]),
    ({**PIPELINE, "deploy.pipeline.approve_before": ["prod"]}, ["'prod' is not one of the stages"]),
])
def test_incomplete_pipeline_settings_are_refused_together(overrides, messages):
    with pytest.raises(ConfigError) as error:
        build_app(overrides=overrides)
    for message in messages:
        assert message in str(error.value)


def test_the_github_deploy_role_is_one_key_away():
    _, stacks = build_app(overrides={"deploy.github_oidc.repository": "octo-org/ml-deploy", **only_pattern("edge")})
    template = Template.from_stack(stacks["github_oidc"])
    assert stacks["github_oidc"].stack_name == "FraudDetector-GithubOidc"
    template.resource_count_is("AWS::IAM::OIDCProvider", 1)


def test_no_cicd_stack_by_default(default_app):
    _, stacks = default_app
    assert not {"pipeline", "github_oidc"} & set(stacks)
