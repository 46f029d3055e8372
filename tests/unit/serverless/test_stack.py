"""The <Model>-Serverless template: function, alias, API, S3 trigger, failure queue, alarms."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from tests.unit.serverless.conftest import only_serverless, serverless_template
from tests.conftest import build_app

N_FEATURES = 12
WEB_ACL = "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/prediction-api/0a1b2c3d"


def only(template: Template, resource_type: str) -> tuple[str, dict]:
    resources = template.find_resources(resource_type)
    assert len(resources) == 1, f"expected one {resource_type}, found {list(resources)}"
    return next(iter(resources.items()))


def alias_ref(template: Template) -> dict:
    logical_id, _ = only(template, "AWS::Lambda::Alias")
    return {"Ref": logical_id}


@pytest.fixture(scope="module")
def variant() -> Template:
    """x86_64, provisioned and reserved concurrency, API key with quota, WAF, execution logs, no S3 trigger,
    the account's API Gateway logging role left to whoever manages it."""
    return serverless_template(**{
        "architecture": "x86_64", "provisioned_concurrency": 2, "warm": "provisioned", "reserved_concurrency": 10,
        "api.auth": "api_key", "api.quota_per_day": 10000, "api.web_acl_arn": WEB_ACL,
        "api.execution_logging": True, "upload_trigger.enabled": False,
        "api.create_account_logging_role": False})


def test_function_runs_python_312_on_arm64_with_the_default_size(default_serverless):
    # GIVEN the default config  THEN one prediction function: python3.12, arm64, 512 MB, 30 s, active tracing
    functions = default_serverless.find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "handler.lambda_handler"}})
    assert len(functions) == 1
    properties = next(iter(functions.values()))["Properties"]
    assert (properties["Runtime"], properties["Architectures"]) == ("python3.12", ["arm64"])
    assert (properties["MemorySize"], properties["Timeout"]) == (512, 30)
    assert properties["TracingConfig"] == {"Mode": "Active"}


def test_function_reads_its_model_from_the_asset_named_in_its_environment(default_serverless):
    properties = next(iter(default_serverless.find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "handler.lambda_handler"}}).values()))["Properties"]
    variables = properties["Environment"]["Variables"]
    assert variables["MODEL_S3_KEY"].endswith(".zip")
    assert variables["MODEL_VERSION"].startswith("v1-")
    assert variables["MAX_INSTANCES"] == "1000" and variables["MAX_REQUEST_BYTES"] == str(256 * 1024)
    # THEN the role may read exactly that object, and has no managed policy (no AWSLambdaBasicExecutionRole)
    policy = json.dumps(default_serverless.to_json()["Resources"])
    assert variables["MODEL_S3_KEY"] in policy
    role_id = properties["Role"]["Fn::GetAtt"][0]
    assert "ManagedPolicyArns" not in default_serverless.to_json()["Resources"][role_id]["Properties"]


def test_alias_live_points_at_a_published_version_without_provisioned_concurrency(default_serverless):
    _, alias = only(default_serverless, "AWS::Lambda::Alias")
    assert alias["Properties"]["Name"] == "live"
    version_id = alias["Properties"]["FunctionVersion"]["Fn::GetAtt"][0]
    assert default_serverless.to_json()["Resources"][version_id]["Type"] == "AWS::Lambda::Version"
    assert "ProvisionedConcurrencyConfig" not in alias["Properties"]


def test_provisioned_and_reserved_concurrency_come_from_config(variant):
    variant.has_resource_properties("AWS::Lambda::Alias", {
        "Name": "live", "ProvisionedConcurrencyConfig": {"ProvisionedConcurrentExecutions": 2}})
    variant.has_resource_properties("AWS::Lambda::Function", {
        "Architectures": ["x86_64"], "ReservedConcurrentExecutions": 10})


def test_api_integrates_with_the_alias_not_the_function(default_serverless):
    # GIVEN POST /predict  THEN its proxy integration URI names the alias (provisioned concurrency is not bypassed)
    _, method = only(default_serverless, "AWS::ApiGateway::Method")
    uri = json.dumps(method["Properties"]["Integration"]["Uri"])
    assert json.dumps(alias_ref(default_serverless)) in uri
    assert method["Properties"]["Integration"]["Type"] == "AWS_PROXY"
    # AND API Gateway may invoke the alias
    default_serverless.has_resource_properties("AWS::Lambda::Permission", {
        "FunctionName": alias_ref(default_serverless), "Principal": "apigateway.amazonaws.com"})


def test_requests_are_validated_against_a_model_of_the_feature_count(default_serverless):
    _, model = only(default_serverless, "AWS::ApiGateway::Model")
    schema = model["Properties"]["Schema"]
    row = schema["properties"]["features"]
    assert (row["minItems"], row["maxItems"], row["items"]["type"]) == (N_FEATURES, N_FEATURES, "number")
    assert schema["properties"]["instances"]["items"] == row
    assert schema["properties"]["instances"]["maxItems"] == 1000
    assert schema["additionalProperties"] is False
    assert schema["oneOf"] == [{"required": ["features"]}, {"required": ["instances"]}]
    default_serverless.has_resource_properties("AWS::ApiGateway::RequestValidator", {"ValidateRequestBody": True})
    default_serverless.has_resource_properties("AWS::ApiGateway::Method", {
        "HttpMethod": "POST", "RequestModels": {"application/json": Match.any_value()},
        "RequestValidatorId": Match.any_value()})


def test_iam_authorization_is_the_default(default_serverless):
    default_serverless.has_resource_properties("AWS::ApiGateway::Method", {
        "AuthorizationType": "AWS_IAM", "ApiKeyRequired": False})
    assert default_serverless.find_resources("AWS::ApiGateway::ApiKey") == {}


def test_stage_throttles_logs_access_and_traces(default_serverless):
    _, stage = only(default_serverless, "AWS::ApiGateway::Stage")
    properties = stage["Properties"]
    assert properties["StageName"] == "prod" and properties["TracingEnabled"] is True
    assert {"HttpMethod": "*", "ResourcePath": "/*", "ThrottlingRateLimit": 50, "ThrottlingBurstLimit": 100,
            "DataTraceEnabled": False, "LoggingLevel": "OFF"}.items() <= properties["MethodSettings"][0].items()
    access_log = json.loads(properties["AccessLogSetting"]["Format"])
    assert {"requestId", "status", "integrationLatency", "validationError"} <= set(access_log)


def test_the_stage_waits_for_the_account_logging_role(default_serverless):
    # GIVEN the default config (access logs on, which need the account's API Gateway CloudWatch Logs role)
    account_id, account = only(default_serverless, "AWS::ApiGateway::Account")
    role_id = account["Properties"]["CloudWatchRoleArn"]["Fn::GetAtt"][0]
    role = default_serverless.to_json()["Resources"][role_id]
    # THEN the account setting names a role API Gateway assumes, with the managed push-to-logs policy only
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [{
        "Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}}]
    assert json.dumps(role["Properties"]["ManagedPolicyArns"]).endswith(
        'service-role/AmazonAPIGatewayPushToCloudWatchLogs"]]}]')
    # AND both outlive the stack (other APIs in the account and region may log through them)
    assert account["DeletionPolicy"] == role["DeletionPolicy"] == "Retain"
    # AND the stage is created only after the account setting exists
    _, stage = only(default_serverless, "AWS::ApiGateway::Stage")
    assert account_id in stage["DependsOn"]


def test_the_account_logging_role_can_be_left_to_its_owner(variant):
    variant.resource_count_is("AWS::ApiGateway::Account", 0)
    assert not variant.find_resources("AWS::IAM::Role", {"Properties": {"AssumeRolePolicyDocument": {
        "Statement": [Match.object_like({"Principal": {"Service": "apigateway.amazonaws.com"}})]}}})
    # AND access logs stay on
    variant.has_resource_properties("AWS::ApiGateway::Stage", {"AccessLogSetting": Match.any_value()})


def _log_group_key_statement(template: Template, log_group: dict) -> dict:
    """The key policy statement letting CloudWatch Logs use the key for ``log_group``."""
    key_id = log_group["Properties"]["KmsKeyId"]["Fn::GetAtt"][0]
    statements = template.to_json()["Resources"][key_id]["Properties"]["KeyPolicy"]["Statement"]
    name = json.dumps(log_group["Properties"]["LogGroupName"]["Fn::Join"][1][0])
    # The name prefix ends a string in the condition (another log group's longer prefix must not match it).
    (statement,) = [s for s in statements if name[1:-1] + '"' in json.dumps(s.get("Condition", {}))]
    return statement


@pytest.mark.parametrize("log_group_prefix", ["/aws/apigateway/fraud-detector-serverless/prod/access-",
                                              "/aws/lambda/fraud-detector-serverless-"])
def test_log_groups_are_encrypted_with_the_data_key_for_their_own_arn_only(default_serverless, log_group_prefix):
    # GIVEN the API access log group and the function's log group
    (log_group,) = [group for group in default_serverless.find_resources("AWS::Logs::LogGroup").values()
                    if group["Properties"]["LogGroupName"]["Fn::Join"][1][0] == log_group_prefix]
    # THEN each is encrypted with the stack's data key, its name unique to this stack instance
    assert log_group["Properties"]["KmsKeyId"] == {"Fn::GetAtt": [_data_key_id(default_serverless), "Arn"]}
    assert log_group["Properties"]["LogGroupName"]["Fn::Join"][1][1] == {
        "Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}
    # AND the key policy lets the regional CloudWatch Logs principal use the key for that log group's ARN only
    statement = _log_group_key_statement(default_serverless, log_group)
    assert statement["Principal"] == {"Service": {"Fn::Join": ["", ["logs.", {"Ref": "AWS::Region"},
                                                                      ".amazonaws.com"]]}}
    assert set(statement["Action"]) == {"kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*",
                                        "kms:Describe*"}
    arn = statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]["Fn::Join"][1]
    assert arn[-2:] == [f":log-group:{log_group_prefix}", log_group["Properties"]["LogGroupName"]["Fn::Join"][1][1]]
    assert "*" not in json.dumps(arn)


def _data_key_id(template: Template) -> str:
    (key_id,) = template.find_resources("AWS::KMS::Key")
    return key_id


def test_api_key_mode_adds_a_usage_plan_with_throttle_and_quota(variant):
    variant.has_resource_properties("AWS::ApiGateway::Method", {"AuthorizationType": "NONE", "ApiKeyRequired": True})
    variant.has_resource_properties("AWS::ApiGateway::UsagePlan", {
        "Throttle": {"RateLimit": 50, "BurstLimit": 100}, "Quota": {"Limit": 10000, "Period": "DAY"}})
    variant.resource_count_is("AWS::ApiGateway::ApiKey", 1)
    variant.resource_count_is("AWS::ApiGateway::UsagePlanKey", 1)


def test_web_acl_and_execution_logging_are_opt_in(default_serverless, variant):
    default_serverless.resource_count_is("AWS::WAFv2::WebACLAssociation", 0)
    variant.has_resource_properties("AWS::WAFv2::WebACLAssociation", {"WebACLArn": WEB_ACL})
    variant.has_resource_properties("AWS::ApiGateway::Stage", {"MethodSettings": [Match.object_like(
        {"LoggingLevel": "ERROR"})]})


def test_uploads_under_incoming_invoke_the_alias(default_serverless):
    # GIVEN the upload trigger  THEN S3 notifies the alias only for keys under incoming/
    _, notifications = only(default_serverless, "Custom::S3BucketNotifications")
    (configuration,) = notifications["Properties"]["NotificationConfiguration"]["LambdaFunctionConfigurations"]
    assert configuration["Events"] == ["s3:ObjectCreated:*"]
    assert configuration["Filter"] == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}}
    assert configuration["LambdaFunctionArn"] == alias_ref(default_serverless)
    default_serverless.has_resource_properties("AWS::Lambda::Permission", {
        "FunctionName": alias_ref(default_serverless), "Principal": "s3.amazonaws.com"})


def test_the_role_cannot_write_under_the_prefix_it_listens_to(default_serverless):
    # GIVEN the statements of the prediction function's role
    function = next(iter(default_serverless.find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "handler.lambda_handler"}}).values()))
    role = {"Ref": function["Properties"]["Role"]["Fn::GetAtt"][0]}
    policies = default_serverless.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [role]}})
    statements = [statement for policy in policies.values()
                  for statement in policy["Properties"]["PolicyDocument"]["Statement"]]

    def targets(statement) -> str:
        return json.dumps(statement["Resource"])

    writes = [statement for statement in statements
              if any(action.startswith("s3:Put") for action in _actions(statement)) and "DataStorage" in targets(statement)]
    # THEN writes go to predictions/ and rejected/ only; incoming/ is read-only
    assert writes and all("/incoming/" not in targets(statement) for statement in writes)
    assert all("/predictions/*" in targets(s) and "/rejected/*" in targets(s) for s in writes)
    reads = [s for s in statements if "s3:GetObject" in _actions(s) and "/incoming/*" in targets(s)]
    assert reads


def _actions(statement) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else actions


def test_failed_async_events_go_to_an_encrypted_queue(default_serverless):
    _, config = only(default_serverless, "AWS::Lambda::EventInvokeConfig")
    properties = config["Properties"]
    assert properties["MaximumRetryAttempts"] == 2
    queue_id = properties["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
    assert "KmsMasterKeyId" in default_serverless.to_json()["Resources"][queue_id]["Properties"]
    # AND the configuration applies to the alias that S3 invokes
    assert json.dumps(alias_ref(default_serverless)) in json.dumps(properties["Qualifier"])


def test_alarms_cover_errors_throttles_duration_api_and_async_failures(default_serverless):
    alarms = default_serverless.find_resources("AWS::CloudWatch::Alarm")
    # The drift job's alarms (namespace MLDrift/...) are tested with the monitoring engine's wiring.
    by_metric = {alarm["Properties"]["MetricName"]: alarm["Properties"] for alarm in alarms.values()
                 if not str(alarm["Properties"].get("Namespace", "")).startswith("MLDrift/")}
    assert set(by_metric) == {"Errors", "Throttles", "Duration", "5XXError", "Latency",
                              "ApproximateNumberOfMessagesVisible"}
    # THEN p99 duration is compared with 80% of the 30 s timeout, in Lambda's milliseconds
    assert (by_metric["Duration"]["ExtendedStatistic"], by_metric["Duration"]["Threshold"]) == ("p99", 24000)
    assert (by_metric["Latency"]["ExtendedStatistic"], by_metric["Latency"]["Threshold"]) == ("p99", 1000)
    # AND the function alarms watch the alias (what callers invoke), not $LATEST
    dimensions = {d["Name"] for d in by_metric["Errors"]["Dimensions"]}
    assert dimensions == {"FunctionName", "Resource"}
    # AND every alarm notifies the stack's topic, on alarm and on recovery
    topic_id, _ = only(default_serverless, "AWS::SNS::Topic")
    for alarm in alarms.values():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": topic_id}]
        assert alarm["Properties"]["OKActions"] == [{"Ref": topic_id}]
    default_serverless.resource_count_is("AWS::CloudWatch::Dashboard", 1)


def test_no_upload_bucket_or_trigger_when_disabled(variant):
    variant.resource_count_is("Custom::S3BucketNotifications", 0)
    # (the buckets left are the drift engine's capture bucket and its access-log bucket)
    assert not [logical_id for logical_id in variant.find_resources("AWS::S3::Bucket")
                if logical_id.startswith("DataStorage")]
    # AND the function does not get S3 prefixes it would never use
    properties = next(iter(variant.find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "handler.lambda_handler"}}).values()))["Properties"]
    assert "INPUT_PREFIX" not in properties["Environment"]["Variables"]


def test_api_key_variant_is_nag_clean(tmp_path):
    # GIVEN the API-key variant with the AwsSolutions checks attached
    app, _ = build_app(overrides=only_serverless(**{"api.auth": "api_key", "upload_trigger.enabled": False}),
                       nag=True, outdir=str(tmp_path))
    # WHEN synthesized  THEN no unacknowledged finding (APIG4/COG4 are acknowledged with the configured reason)
    app.synth()
    report = tmp_path / "validation-report.json"
    violations = json.loads(report.read_text())["pluginReports"] if report.exists() else []
    assert [plugin["violations"] for plugin in violations if plugin["violations"]] == []
