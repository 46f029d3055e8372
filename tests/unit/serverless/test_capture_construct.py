"""LambdaModelFunction's ``capture`` option: environment, write-only grant on the prefix, cdk-nag, validation."""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from ml_constructs.serverless.model_function import LambdaModelFunction, RequestCapture
from tests.nag import unacknowledged_findings
from tests.conftest import ARTIFACTS_DIR, SKIP_BUNDLING


def make_stack(outdir=None, *, capture_options=None, with_capture=True, nag=False):
    app = cdk.App(context=SKIP_BUNDLING, outdir=outdir)
    stack = cdk.Stack(app, "CaptureTest", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    bucket = s3.Bucket.from_bucket_name(stack, "Data", "data-bucket")
    capture = RequestCapture(bucket=bucket, **(capture_options or {})) if with_capture else None
    function = LambdaModelFunction(stack, "Model", artifacts_dir=ARTIFACTS_DIR, encryption_key=key,
                                   service_name="fraud-detector-serverless", capture=capture)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack, function


def statements(template: Template) -> list[dict]:
    return [statement for policy in template.find_resources("AWS::IAM::Policy").values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]]


def test_capture_settings_reach_the_function_environment():
    # GIVEN capture at 2.5% in batches of 200 or 30 s
    _, stack, _ = make_stack(capture_options={"prefix": "/capture/fraud/", "sample_percent": 2.5,
                                              "max_records": 200, "max_age": cdk.Duration.seconds(30)})
    # THEN the handler's CAPTURE_* variables carry them, the prefix normalised to S3 key form
    function = next(iter(Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()))
    variables = function["Properties"]["Environment"]["Variables"]
    assert {name: variables[name] for name in variables if name.startswith("CAPTURE_")} == {
        "CAPTURE_S3_BUCKET": "data-bucket", "CAPTURE_S3_PREFIX": "capture/fraud/", "CAPTURE_SAMPLE_PERCENT": "2.5",
        "CAPTURE_MAX_RECORDS": "200", "CAPTURE_MAX_AGE_SECONDS": "30"}


def test_the_function_may_only_put_objects_under_the_capture_prefix():
    # GIVEN capture with the default prefix
    _, stack, _ = make_stack()
    found = statements(Template.from_stack(stack))
    # THEN the only S3 write is PutObject on <bucket>/capture/serverless/*, and nothing reads or deletes there
    writes = [statement for statement in found if any("s3:Put" in action or "s3:Delete" in action
                                                      for action in _actions(statement))]
    assert len(writes) == 1 and _actions(writes[0]) == ["s3:PutObject"]
    assert json.dumps(writes[0]["Resource"]).endswith('/capture/serverless/*"]]}')
    assert not any("capture/serverless" in json.dumps(statement["Resource"]) for statement in found
                   if statement is not writes[0])
    # AND it may generate data keys with the stack key (SSE-KMS), no more than that on the key for capture
    assert any(_actions(statement) == ["kms:GenerateDataKey"] for statement in found)


def test_without_capture_there_is_no_capture_grant_or_variable():
    # GIVEN no capture option
    _, stack, _ = make_stack(with_capture=False)
    template = Template.from_stack(stack)
    # THEN no PutObject and no CAPTURE_* variable
    assert not any("s3:PutObject" in _actions(statement) for statement in statements(template))
    function = next(iter(template.find_resources("AWS::Lambda::Function").values()))
    assert not any(name.startswith("CAPTURE_") for name in function["Properties"]["Environment"]["Variables"])


@pytest.mark.parametrize("options, problem", [
    ({"sample_percent": 0}, "capture sample_percent 0 must be above 0 and at most 100"),
    ({"sample_percent": 101}, "capture sample_percent 101 must be above 0 and at most 100"),
    ({"max_records": 0}, "capture max_records 0 is outside 1..100000"),
    ({"max_age": cdk.Duration.hours(2)}, "capture max_age must be between 1 second and 1 hour"),
    ({"prefix": "/"}, "capture prefix must not be empty"),
])
def test_bad_capture_options_fail_the_synth_with_a_reason(options, problem):
    # GIVEN capture options out of range WHEN the construct is built THEN one clear error says which
    with pytest.raises(ValueError, match="invalid LambdaModelFunction: .*" + problem.replace(".", r"\.")):
        make_stack(capture_options=options)


def test_cdk_nag_awssolutions_has_no_unacknowledged_findings(tmp_path):
    # GIVEN the function with capture, under AwsSolutions checks
    app, _, _ = make_stack(str(tmp_path), nag=True)
    # THEN there is no finding (the prefix wildcard is acknowledged on the one policy, with its reason)
    assert unacknowledged_findings(app, tmp_path) == []


def _actions(statement: dict) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)
