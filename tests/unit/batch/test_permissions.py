"""Roles of the batch stack: scoped, never AmazonSageMakerFullAccess, never able to move or delete the input."""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Template

from ml_constructs.batch.scoring import BatchScoring, ScoringStorage
from ml_constructs.common.model_package import ModelPackage
from tests.conftest import ARTIFACTS_DIR, build_app
from tests.unit.batch.conftest import definition_of, only_batch, placeholder_render, resources


def statements_of(batch_json: dict, role_prefix: str) -> list[dict]:
    policies = [policy for policy in resources(batch_json, "AWS::IAM::Policy").values()
                if any(role["Ref"].startswith(role_prefix) for role in policy["Properties"]["Roles"])]
    assert policies, f"no policy attached to a role starting with {role_prefix}"
    return [statement for policy in policies for statement in policy["Properties"]["PolicyDocument"]["Statement"]]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def grants(statements: list[dict]) -> dict[str, set[str]]:
    """action -> rendered resources it is allowed on."""
    found: dict[str, set[str]] = {}
    for statement in statements:
        assert statement["Effect"] == "Allow"
        for action in as_list(statement["Action"]):
            found.setdefault(action.lower(), set()).update(
                placeholder_render(resource) for resource in as_list(statement["Resource"]))
    return found


def test_no_role_gets_a_managed_policy_let_alone_sagemaker_full_access(batch_json):
    assert "AmazonSageMakerFullAccess" not in json.dumps(batch_json)
    for role in resources(batch_json, "AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]


def test_state_machine_role_has_what_the_sync_integration_needs_and_no_more(batch_json):
    allowed = grants(statements_of(batch_json, "ScoringStateMachineRole"))
    job_arn = "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:transform-job/fraud-detector-*"
    for action in ("sagemaker:createtransformjob", "sagemaker:describetransformjob", "sagemaker:stoptransformjob",
                   "sagemaker:addtags"):
        assert allowed[action] == {job_arn}
    rule = ("arn:${AWS::Partition}:events:${AWS::Region}:${AWS::AccountId}:rule/"
            "StepFunctionsGetEventsForSageMakerTransformJobsRule")
    for action in ("events:puttargets", "events:putrule", "events:describerule"):
        assert allowed[action] == {rule}
    (passed_role,) = allowed["iam:passrole"]
    assert passed_role.startswith("${ScoringModelRole") and passed_role.endswith(".Arn}")
    assert allowed["sns:publish"] == {next(f"${{{logical_id}}}" for logical_id in resources(
        batch_json, "AWS::SNS::Topic"))}
    (manifest_objects,) = allowed["s3:putobject"]
    assert manifest_objects.endswith("/predictions/*/manifest.json")
    assert not {action for action in allowed if action.startswith("sagemaker:") and action not in {
        "sagemaker:createtransformjob", "sagemaker:describetransformjob", "sagemaker:stoptransformjob",
        "sagemaker:addtags", "sagemaker:listtags"}}


def test_a_model_name_with_capitals_gives_a_lower_case_prefix_that_matches_job_arns():
    # GIVEN a model named with capitals (allowed by deploy.model.name) and no job_name_prefix
    overrides = only_batch()
    overrides["deploy.model.name"] = "Fraud-Detector"
    _, stacks = build_app(overrides=overrides)
    batch_json = Template.from_stack(stacks["batch"]).to_json()
    # WHEN the role's SageMaker permissions are read
    allowed = grants(statements_of(batch_json, "ScoringStateMachineRole"))
    # THEN they name transform jobs in lower case, as SageMaker writes them in ARNs (IAM compares case-sensitively)
    assert allowed["sagemaker:createtransformjob"] == {
        "arn:${AWS::Partition}:sagemaker:${AWS::Region}:${AWS::AccountId}:transform-job/fraud-detector-*"}
    # AND the jobs the state machine names start with that same lower-case prefix
    assert definition_of(batch_json)["States"]["ScoreRows"]["Parameters"]["TransformJobName.$"].startswith(
        "States.Format('fraud-detector-{}")


def scoring_in_scratch_stack(*, job_name_prefix: str = "fd", imported_key: bool = False) -> BatchScoring:
    stack = cdk.Stack(cdk.App(), "Scratch")
    key = (kms.Key.from_key_arn(stack, "Key", "arn:aws:kms:eu-west-1:123456789012:key/1111") if imported_key
           else kms.Key(stack, "Key"))
    bucket = s3.Bucket(stack, "Bucket")
    return BatchScoring(stack, "Scoring", package=ModelPackage(stack, "Package", artifacts_dir=str(ARTIFACTS_DIR)),
                        storage=ScoringStorage(input_bucket=bucket, output_bucket=bucket, data_key=key),
                        alert_topic=sns.Topic(stack, "Topic"), job_name_prefix=job_name_prefix)


def test_the_construct_refuses_a_prefix_its_policy_could_not_match():
    # GIVEN a job name prefix with capitals passed to the construct directly
    # WHEN the construct is built  THEN it names the problem instead of granting a policy that never matches
    with pytest.raises(ValueError, match="job_name_prefix 'Fraud' must be lower-case"):
        scoring_in_scratch_stack(job_name_prefix="Fraud")


def test_an_imported_data_key_is_refused_because_logs_could_not_use_it():
    # GIVEN a key whose policy this app cannot extend  THEN the construct says so at synth, not at deploy
    with pytest.raises(ValueError, match="data_key must be a KMS key defined in this app"):
        scoring_in_scratch_stack(imported_key=True)


def test_pass_role_is_limited_to_sagemaker(batch_json):
    (statement,) = [s for s in statements_of(batch_json, "ScoringStateMachineRole") if s["Action"] == "iam:PassRole"]
    assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}


@pytest.mark.parametrize("role_prefix", ["ScoringModelRole", "ScoringStateMachineRole", "ScheduleRole"])
def test_no_role_can_delete_or_overwrite_input_objects(batch_json, role_prefix):
    allowed = grants(statements_of(batch_json, role_prefix))
    assert not [action for action in allowed if action in ("s3:*", "*") or action.startswith("s3:delete")]
    written = {resource for action in ("s3:putobject", "s3:abortmultipartupload")
               for resource in allowed.get(action, set())}
    assert not [resource for resource in written if resource.startswith("${InputStorageBucket")]


def test_model_role_reads_the_input_bucket_and_writes_only_predictions(batch_json):
    allowed = grants(statements_of(batch_json, "ScoringModelRole"))
    (listed,) = allowed["s3:listbucket"]
    assert listed.startswith("${InputStorageBucket") and listed.endswith(".Arn}")
    assert any(r.startswith("${InputStorageBucket") and r.endswith("/*") for r in allowed["s3:getobject"])
    (predictions,) = allowed["s3:putobject"]
    assert predictions.startswith("${OutputStorageBucket") and predictions.endswith("/predictions/*")
    assert allowed["logs:putlogevents"] == {
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/sagemaker/TransformJobs:*"}


def test_schedule_role_may_only_start_this_state_machine_and_trusts_only_this_schedule(batch_json):
    allowed = grants(statements_of(batch_json, "ScheduleRole"))
    machine = next(iter(resources(batch_json, "AWS::StepFunctions::StateMachine")))
    assert allowed == {"states:startexecution": {f"${{{machine}}}"}}
    (role,) = [role for logical_id, role in resources(batch_json, "AWS::IAM::Role").items()
               if logical_id.startswith("ScheduleRole")]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert placeholder_render(trust["Condition"]["StringEquals"]["aws:SourceArn"]).endswith(
        ":schedule/fraud-detector-batch/fraud-detector-batch")


def test_buckets_are_encrypted_versioned_tls_only_and_retained(batch_json):
    data_buckets = {logical_id: bucket for logical_id, bucket in resources(batch_json, "AWS::S3::Bucket").items()
                    if "AccessLogs" not in logical_id}
    assert sorted(logical_id.split("Bucket")[0] for logical_id in data_buckets) == ["InputStorage", "OutputStorage"]
    for logical_id, bucket in data_buckets.items():
        assert bucket["DeletionPolicy"] == "Retain"
        properties = bucket["Properties"]
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        (rule,) = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        policy = next(p for p in resources(batch_json, "AWS::S3::BucketPolicy").values()
                      if p["Properties"]["Bucket"] == {"Ref": logical_id})
        assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
                   for s in policy["Properties"]["PolicyDocument"]["Statement"])
