"""The state machine definition as synthesized: sync integration, job naming, transform settings, retries, catch."""
from __future__ import annotations

import json
import re

from tests.conftest import ARTIFACTS_DIR
from tests.unit.batch.conftest import one, placeholder_render, resources

MODEL_VERSION = json.loads((ARTIFACTS_DIR / "metadata.json").read_text())["model_version"]


def test_task_runs_create_transform_job_with_the_sync_integration(definition):
    # GIVEN the default app  THEN the scoring task waits for the job (.sync), not just for the API call
    task = definition["States"]["ScoreRows"]
    assert task["Type"] == "Task"
    assert task["Resource"] == "arn:${AWS::Partition}:states:::sagemaker:createTransformJob.sync"
    assert task["TimeoutSeconds"] == 360 * 60
    assert definition["TimeoutSeconds"] == 720 * 60


def test_job_name_is_derived_from_the_execution_and_attempt_but_not_the_api_retry(definition):
    # THEN the name is never a constant: execution name and capacity attempt take part; an API retry keeps it,
    # so a retried CreateTransformJob whose first call did create the job meets ResourceInUse, not a second job
    expression = definition["States"]["ScoreRows"]["Parameters"]["TransformJobName.$"]
    assert expression == "States.Format('fraud-detector-{}-{}', $$.Execution.Name, $.retry.attempt)"
    assert "TransformJobName" not in definition["States"]["ScoreRows"]["Parameters"]
    states = definition["States"]
    assert states["FindExistingJob"]["Parameters"]["TransformJobName.$"] == expression
    (job_exists,) = [rule for rule in states["RetryableFailure?"]["Choices"] if rule["Next"] == "FindExistingJob"]
    assert {"Variable": "$.error.Error", "StringEquals": "SageMaker.ResourceInUseException"} in job_exists["Or"]
    assert "*Error Code: ResourceInUse*" in json.dumps(job_exists)
    # AND with a UUID execution name (Scheduler, console) and a one-digit attempt it fits 63 characters
    longest = "fraud-detector-" + "x" * 36 + "-9"
    assert len(longest) <= 63


def test_transform_packs_lines_into_6_mb_multi_record_requests_on_4_m5_xlarge(definition):
    parameters = definition["States"]["ScoreRows"]["Parameters"]
    assert parameters["BatchStrategy"] == "MultiRecord"
    assert parameters["MaxPayloadInMB"] == 6
    assert parameters["MaxConcurrentTransforms"] * parameters["MaxPayloadInMB"] <= 100
    assert parameters["TransformInput"]["ContentType"] == "text/csv"
    assert parameters["TransformInput"]["SplitType"] == "Line"
    assert parameters["TransformInput"]["DataSource"]["S3DataSource"] == {"S3DataType": "S3Prefix",
                                                                          "S3Uri.$": "$.run.input_uri"}
    assert parameters["TransformOutput"]["Accept"] == "text/csv"
    assert parameters["TransformOutput"]["AssembleWith"] == "Line"
    assert parameters["TransformResources"]["InstanceType"] == "ml.m5.xlarge"
    assert parameters["TransformResources"]["InstanceCount"] == 4


def test_id_column_is_excluded_from_features_and_kept_next_to_the_prediction(definition):
    assert definition["States"]["ScoreRows"]["Parameters"]["DataProcessing"] == {
        "InputFilter": "$[1:]", "JoinSource": "Input", "OutputFilter": "$[0,-1]"}


def test_predictions_and_manifest_go_under_date_model_version_and_execution(definition):
    plan = definition["States"]["PlanRun"]["Parameters"]
    assert re.fullmatch(
        r"States\.Format\('s3://\$\{OutputStorageBucket\w+\}/predictions/\{\}/\{\}/\{\}/', \$\.merged\.run_date, "
        r"\$\.merged\.model\.version, \$\$\.Execution\.Name\)", plan["output_uri.$"])
    assert plan["manifest_key.$"] == ("States.Format('predictions/{}/{}/{}/manifest.json', "
                                      "$.merged.run_date, $.merged.model.version, $$.Execution.Name)")
    output = definition["States"]["ScoreRows"]["Parameters"]["TransformOutput"]
    assert output["S3OutputPath.$"] == "$.run.output_uri"
    assert output["KmsKeyId"].startswith("${DataKey")


def test_the_model_defaults_to_the_deployed_one_and_a_run_may_name_a_candidate(definition):
    # GIVEN the defaults: this stack's SageMaker model and its version label
    defaults = definition["States"]["ReadRequest"]["Parameters"]["defaults"]
    assert defaults["model"]["version"] == MODEL_VERSION
    assert re.fullmatch(r"\$\{\w*Model\w*\.ModelName\}", defaults["model"]["name"])
    # THEN the job and the manifest use the model the run resolved, not a fixed one
    assert definition["States"]["ScoreRows"]["Parameters"]["ModelName.$"] == "$.run.model_name"
    plan = definition["States"]["PlanRun"]["Parameters"]
    assert (plan["model_name.$"], plan["model_version.$"]) == ("$.merged.model.name", "$.merged.model.version")


def test_input_and_date_default_to_the_configured_prefix_and_the_execution_start_date(definition):
    defaults = definition["States"]["ReadRequest"]["Parameters"]["defaults"]
    assert re.fullmatch(r"s3://\$\{InputStorageBucket\w+\}/input/", defaults["input_uri"])
    assert defaults["run_date.$"] == "States.ArrayGetItem(States.StringSplit($$.Execution.StartTime, 'T'), 0)"
    assert definition["States"]["MergeDefaults"]["Parameters"]["merged.$"] == (
        "States.JsonMerge($.defaults, $.request, false)")


def test_throttling_and_quota_errors_are_retried_with_exponential_backoff(definition):
    # THEN no Retry field retries blindly: SageMaker.AmazonSageMakerException also carries ValidationException
    assert "Retry" not in definition["States"]["ScoreRows"]
    no_cause, job_exists, transient, quota, capacity = definition["States"]["RetryableFailure?"]["Choices"]
    assert job_exists["Next"] == "FindExistingJob"
    assert no_cause == {"Variable": "$.error.Cause", "IsPresent": False, "Next": "ErrorDefaults"}
    # AND the generic error is retried only when its cause is throttling or a service fault, 4 times
    names, generic = transient["And"][0]["Or"][:2], transient["And"][0]["Or"][2]
    assert [rule["StringEquals"] for rule in names] == ["ThrottlingException", "SageMaker.ThrottlingException"]
    assert generic["And"][0] == {"Variable": "$.error.Error", "StringEquals": "SageMaker.AmazonSageMakerException"}
    assert "*ThrottlingException*" in [rule["StringMatches"] for rule in generic["And"][1]["Or"]]
    assert "ValidationException" not in json.dumps(transient)
    assert transient["And"][1] == {"Variable": "$.api_retry.count", "NumericLessThan": 4}
    assert (transient["Next"], quota["Next"]) == ("BackOffApiError", "BackOffQuota")
    # AND the waits back off from 30 s (x2), and from 5 min for quota errors, at most 3 times
    states = definition["States"]
    assert states["BackOffApiError"]["Parameters"]["wait_s.$"] == (
        "States.ArrayGetItem(States.Array(30, 60, 120, 240), $.api_retry.count)")
    assert states["BackOffQuota"]["Parameters"]["wait_s.$"] == (
        "States.ArrayGetItem(States.Array(300, 600, 1200), $.api_retry.count)")
    assert quota["And"][1] == {"Variable": "$.api_retry.count", "NumericLessThan": 3}
    assert states["WaitToRetry"] == {"Type": "Wait", "SecondsPath": "$.api_retry.wait_s", "Next": "ScoreRows"}
    # AND a job that failed for capacity is started again after a doubling wait, at most twice
    assert capacity["Next"] == "WaitForCapacity"
    assert {"Variable": "$.retry.attempt", "NumericLessThan": 2} in capacity["And"]
    assert definition["States"]["CountAttempt"]["Parameters"]["wait_s.$"] == (
        "States.MathAdd($.retry.wait_s, $.retry.wait_s)")
    assert definition["States"]["ReadRequest"]["Parameters"]["retry"]["wait_s"] == 15 * 60


def test_any_failure_is_caught_notified_recorded_and_fails_the_execution(definition):
    states = definition["States"]
    assert states["ScoreRows"]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                                             "Next": "RetryableFailure?"}]
    assert states["WriteManifest"]["Catch"][0]["Next"] == "ErrorDefaults"
    # AND every failure first gets an Error and a Cause (defaults for missing ones) before anything reads them
    assert states["ErrorDefaults"]["Next"] == "CompleteError"
    assert states["CompleteError"]["Parameters"]["error.$"] == "States.JsonMerge($.error_defaults, $.error, false)"
    assert states["CompleteError"]["Next"] == "NotifyFailure"
    assert states["RetryableFailure?"]["Default"] == "ErrorDefaults"
    notify = states["NotifyFailure"]
    assert notify["Resource"] == "arn:${AWS::Partition}:states:::sns:publish"
    assert notify["Parameters"]["TopicArn"].startswith("${AlertsTopic")
    assert notify["Parameters"]["Message"]["execution_arn.$"] == "$$.Execution.Id"
    assert notify["Parameters"]["Message"]["reason.$"] == "$.error.Cause"
    assert notify["Next"] == "BuildFailedManifest"
    assert states["BuildFailedManifest"]["Parameters"]["status"] == "FAILED"
    assert states["BuildFailedManifest"]["Next"] == "WriteFailedManifest"
    assert states["WriteFailedManifest"]["Next"] == "RunFailed"
    assert states["RunFailed"] == {"Type": "Fail", "Error": "BatchScoringFailed", "CausePath": "$.error.Cause"}


def test_manifest_is_written_beside_the_predictions_with_provenance(definition):
    write = definition["States"]["WriteManifest"]
    assert write["Resource"] == "arn:${AWS::Partition}:states:::aws-sdk:s3:putObject"
    assert write["Parameters"]["Key.$"] == "$.run.manifest_key"
    assert write["Parameters"]["ServerSideEncryption"] == "aws:kms"
    fields = definition["States"]["BuildManifest"]["Parameters"]
    for name in ("model_name", "model_version.$", "input_uri.$", "output_uri.$", "execution_arn.$", "start_time.$",
                 "end_time.$", "status", "transform_job_name.$"):
        assert name in fields
    assert fields["model_version.$"] == "$.run.model_version"
    assert fields["sagemaker_model_name.$"] == "$.run.model_name"
    assert definition["States"]["RunSucceeded"] == {"Type": "Succeed", "OutputPath": "$.manifest"}


def test_state_machine_logs_everything_and_traces(batch_template):
    batch_template.has_resource_properties("AWS::StepFunctions::StateMachine", {
        "StateMachineName": "fraud-detector-batch",
        "TracingConfiguration": {"Enabled": True},
        "LoggingConfiguration": {"Level": "ALL", "IncludeExecutionData": True}})


def test_the_log_group_is_named_after_the_state_machine_and_encrypted_with_the_data_key(batch_json):
    # GIVEN execution data (URIs, errors, manifests) in the log for a year
    (log_group,) = [resource for logical_id, resource in resources(batch_json, "AWS::Logs::LogGroup").items()
                    if str(resource["Properties"].get("LogGroupName", "")).startswith("/aws/vendedlogs/states/")]
    properties = log_group["Properties"]
    assert properties["LogGroupName"] == "/aws/vendedlogs/states/fraud-detector-batch"
    assert properties["RetentionInDays"] == 365
    # THEN it is encrypted with the stack's data key
    key_id, key = one(batch_json, "AWS::KMS::Key")
    assert properties["KmsKeyId"] == {"Fn::GetAtt": [key_id, "Arn"]}
    # AND the key lets CloudWatch Logs of this region use it for that log group only
    (statement,) = [statement for statement in key["Properties"]["KeyPolicy"]["Statement"]
                    if "logs." in placeholder_render(statement["Principal"].get("Service", ""))
                    and "/aws/vendedlogs/states/" in json.dumps(statement.get("Condition"))]
    assert placeholder_render(statement["Principal"]["Service"]) == "logs.${AWS::Region}.amazonaws.com"
    assert "kms:Encrypt" in statement["Action"] and "kms:GenerateDataKey*" in statement["Action"]
    assert placeholder_render(statement["Condition"]["ArnEquals"]["kms:EncryptionContext:aws:logs:arn"]) == (
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:"
        + properties["LogGroupName"])
