"""Roles of the batch stack: scoped, never AmazonSageMakerFullAccess, never able to move or delete the input."""
from __future__ import annotations

import json

import pytest

from tests.unit.batch.conftest import placeholder_render, resources


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
