"""Model Monitor on the real-time stack, as synthesized from the default configuration."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match, Template

from tests.cfn_text import render

DATA_QUALITY = "AWS::SageMaker::DataQualityJobDefinition"
MODEL_QUALITY = "AWS::SageMaker::ModelQualityJobDefinition"
SCHEDULE = "AWS::SageMaker::MonitoringSchedule"
BASELINE = "Custom::ModelMonitorBaseline"


def only(template: Template, resource_type: str) -> tuple[str, dict]:
    found = template.find_resources(resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {len(found)}"
    return next(iter(found.items()))


def logical_id_of(template: Template, resource_type: str, path_fragment: str) -> str:
    def matches_path(logical_id: str, resource: dict) -> bool:
        path = resource.get("Metadata", {}).get("aws:cdk:path")
        return path_fragment in path if path else path_fragment.replace("/", "") in logical_id

    matches = [logical_id for logical_id, resource in template.find_resources(resource_type).items()
               if matches_path(logical_id, resource)]
    assert len(matches) == 1, (path_fragment, matches)
    return matches[0]


def schedule(template: Template, monitoring_type: str) -> tuple[str, dict]:
    found = {logical_id: resource for logical_id, resource in template.find_resources(SCHEDULE).items()
             if resource["Properties"]["MonitoringScheduleConfig"]["MonitoringType"] == monitoring_type}
    assert len(found) == 1
    return next(iter(found.items()))


@pytest.fixture(scope="module")
def baseline(realtime_template):
    return only(realtime_template, BASELINE)


@pytest.fixture(scope="module")
def data_quality(realtime_template):
    return only(realtime_template, DATA_QUALITY)


def join_text(value) -> str:
    """Fn::Join of strings and refs, flattened to text with refs shown as <LogicalId>."""
    return render(value, token=lambda name: f"<{name}>", find_in_map=lambda parts: "<map>")


def test_baselining_job_runs_the_analyzer_on_the_baseline_asset(realtime_template, baseline):
    # GIVEN the default configuration
    _, resource = baseline
    props = resource["Properties"]
    # THEN the custom resource runs the analyzer image (account per region from the mapping)...
    assert join_text(props["ImageUri"]).endswith(".dkr.ecr.<AWS::Region>.<AWS::URLSuffix>/sagemaker-model-monitor-analyzer")
    assert props["ImageUri"]["Fn::Join"][1][0] == {"Fn::FindInMap": ["ModelMonitorImageRegistry", {"Ref": "AWS::Region"},
                                                                     "account"]}
    # ...on the baseline CSV asset, re-running when its hash (part of its key) changes...
    assert props["DatasetUri"]["Fn::Sub"].endswith(f"/{props['DatasetHash']}.csv")
    # ...with a CSV header, as the SageMaker role of the monitoring jobs, on an encrypted volume
    assert json.loads(props["DatasetFormat"]) == {"csv": {"header": True, "output_columns_position": "START"}}
    job_role = logical_id_of(realtime_template, "AWS::IAM::Role", "Monitor/JobRole")
    assert props["RoleArn"] == {"Fn::GetAtt": [job_role, "Arn"]}
    assert props["KmsKeyArn"] == {"Fn::GetAtt": [logical_id_of(realtime_template, "AWS::KMS::Key", "DataKey"), "Arn"]}


def test_job_definition_reads_the_files_the_baselining_job_writes(baseline, data_quality):
    # GIVEN the baselining job's output prefix
    baseline_id, resource = baseline
    output = join_text(resource["Properties"]["OutputUri"])
    assert output.endswith("/monitoring/baseline/data-quality")
    # THEN the data-quality job definition reads statistics.json and constraints.json right there
    config = data_quality[1]["Properties"]["DataQualityBaselineConfig"]
    assert join_text(config["StatisticsResource"]["S3Uri"]) == f"{output}/statistics.json"
    assert join_text(config["ConstraintsResource"]["S3Uri"]) == f"{output}/constraints.json"
    # AND it is created only once the baseline exists
    assert baseline_id in data_quality[1]["DependsOn"]


def test_schedule_starts_after_baseline_definition_and_endpoint(realtime_template, data_quality):
    # GIVEN the hourly data-quality schedule
    schedule_id, resource = schedule(realtime_template, "DataQuality")
    config = resource["Properties"]["MonitoringScheduleConfig"]
    # THEN it runs hourly, on the job definition by name, after it and after the endpoint
    assert config["ScheduleConfig"] == {"ScheduleExpression": "cron(0 * ? * * *)"}
    assert config["MonitoringJobDefinitionName"] == data_quality[1]["Properties"]["JobDefinitionName"]
    endpoint_id, _ = only(realtime_template, "AWS::SageMaker::Endpoint")
    assert set(resource["DependsOn"]) >= {data_quality[0], endpoint_id}
    assert resource["Properties"]["MonitoringScheduleName"] == "fraud-detector-realtime-data-quality"


def test_data_quality_reads_capture_through_the_preprocessor_with_kms_and_isolation(realtime_template, data_quality):
    # GIVEN the data-quality job definition
    props = data_quality[1]["Properties"]
    key = {"Fn::GetAtt": [logical_id_of(realtime_template, "AWS::KMS::Key", "DataKey"), "Arn"]}
    # THEN it analyses the endpoint's captured data, through the rendered record preprocessor
    assert props["DataQualityJobInput"]["EndpointInput"]["EndpointName"] == "fraud-detector-realtime"
    assert props["DataQualityAppSpecification"]["RecordPreprocessorSourceUri"]["Fn::Sub"].endswith(".py")
    # AND outputs and volumes are encrypted with the data key, the container is network-isolated, runs are bounded
    assert props["DataQualityJobOutputConfig"]["KmsKeyId"] == key
    assert props["JobResources"]["ClusterConfig"]["VolumeKmsKeyId"] == key
    assert props["NetworkConfig"]["EnableNetworkIsolation"] is True
    assert props["StoppingCondition"] == {"MaxRuntimeInSeconds": 1800}
    assert join_text(props["DataQualityJobOutputConfig"]["MonitoringOutputs"][0]["S3Output"]["S3Uri"]).endswith(
        "/monitoring/reports/data-quality")


def test_model_quality_judges_binary_predictions_against_delayed_labels(realtime_template):
    # GIVEN the model-quality job definition and its schedule
    definition_id, definition = only(realtime_template, MODEL_QUALITY)
    props = definition["Properties"]
    endpoint_input = props["ModelQualityJobInput"]["EndpointInput"]
    # THEN it is binary classification on the probability in column 0, cut at 0.5, one day behind the labels
    assert props["ModelQualityAppSpecification"]["ProblemType"] == "BinaryClassification"
    assert (endpoint_input["ProbabilityAttribute"], endpoint_input["ProbabilityThresholdAttribute"]) == ("0", 0.5)
    assert (endpoint_input["StartTimeOffset"], endpoint_input["EndTimeOffset"]) == ("-PT48H", "-PT24H")
    assert join_text(props["ModelQualityJobInput"]["GroundTruthS3Input"]["S3Uri"]).endswith("/monitoring/ground-truth")
    # AND it runs without baseline constraints (the artifacts carry no predictions on a labelled set)
    assert "ModelQualityBaselineConfig" not in props
    assert props["NetworkConfig"]["EnableNetworkIsolation"] is True
    _, resource = schedule(realtime_template, "ModelQuality")
    assert resource["Properties"]["MonitoringScheduleConfig"]["ScheduleConfig"] == {
        "ScheduleExpression": "cron(0 0 ? * * *)"}
    assert definition_id in resource["DependsOn"]


def test_job_definition_names_change_exactly_when_the_definitions_do(realtime_template):
    # GIVEN the two job definitions (immutable in CloudFormation: any change replaces them)
    # THEN each has a name ending in a content hash, so a replacement never collides with its predecessor
    for resource_type in (DATA_QUALITY, MODEL_QUALITY):
        name = only(realtime_template, resource_type)[1]["Properties"]["JobDefinitionName"]
        assert len(name) <= 63
        prefix, digest = name.rsplit("-", 1)
        assert prefix in ("fraud-detector-realtime-dq", "fraud-detector-realtime-mq")
        assert len(digest) == 8 and int(digest, 16) >= 0


def test_no_role_gets_sagemaker_full_access(realtime_template):
    # GIVEN every role of the stack
    # THEN none carries a managed policy (in particular not AmazonSageMakerFullAccess)
    for logical_id, role in realtime_template.find_resources("AWS::IAM::Role").items():
        assert "ManagedPolicyArns" not in role["Properties"], logical_id
    assert "AmazonSageMakerFullAccess" not in json.dumps(realtime_template.to_json())


def statements_of(template: Template, path_fragment: str) -> list[dict]:
    policy_id = logical_id_of(template, "AWS::IAM::Policy", path_fragment)
    return template.to_json()["Resources"][policy_id]["Properties"]["PolicyDocument"]["Statement"]


def test_monitoring_role_writes_only_monitoring_prefixes(realtime_template):
    # GIVEN the monitoring jobs' role
    statements = statements_of(realtime_template, "Monitor/JobRole/DefaultPolicy")
    writes = [statement for statement in statements if "s3:PutObject" in statement["Action"]]
    # THEN it writes only reports and the baseline, never the captured data
    written = sorted(join_text(resource) for statement in writes for resource in
                     (statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]))
    assert [text.split("/", 1)[1] for text in written] == ["monitoring/baseline/data-quality/*", "monitoring/reports/*"]
    # AND it may not delete anything
    assert not any("s3:DeleteObject" in json.dumps(statement) for statement in statements)


def test_baseline_handlers_may_only_start_and_watch_their_own_jobs(realtime_template):
    # GIVEN the role of the custom-resource handlers
    statements = statements_of(realtime_template, "Monitor/Baseline/HandlerRole/DefaultPolicy")
    by_action = {action: statement for statement in statements
                 for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])}
    # THEN they start and describe only processing jobs under the stack's prefix...
    assert join_text(by_action["sagemaker:CreateProcessingJob"]["Resource"]).endswith(
        ":processing-job/fraud-detector-realtime-baseline-*")
    # ...and pass only the monitoring role, only to SageMaker
    assert by_action["iam:PassRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    job_role = logical_id_of(realtime_template, "AWS::IAM::Role", "Monitor/JobRole")
    assert by_action["iam:PassRole"]["Resource"] == {"Fn::GetAtt": [job_role, "Arn"]}


def test_baseline_waits_up_to_the_configured_timeout(realtime_template):
    # GIVEN the Provider framework's waiter (the default baseline timeout is 60 minutes, polling every 30 s)
    _, machine = only(realtime_template, "AWS::StepFunctions::StateMachine")
    definition = json.dumps(machine["Properties"]["DefinitionString"])
    # THEN it retries every 30 s for 120 attempts (60 minutes), and logs every event
    assert '\\"IntervalSeconds\\":30' in definition and '\\"MaxAttempts\\":120' in definition
    assert machine["Properties"]["LoggingConfiguration"]["Level"] == "ALL"


def test_drift_alarms_watch_every_feature_and_page_once(realtime_template):
    # GIVEN the per-feature drift alarms
    alarms = realtime_template.find_resources("AWS::CloudWatch::Alarm", {"Properties": {
        "Namespace": "aws/sagemaker/Endpoints/data-metrics"}})
    names = sorted(alarm["Properties"]["MetricName"] for alarm in alarms.values())
    # THEN there is one per feature, on Model Monitor's metric and dimensions, above the 0.1 threshold
    assert len(names) == 12 and all(name.startswith("feature_baseline_drift_") for name in names)
    assert "feature_baseline_drift_amount" in names
    for alarm in alarms.values():
        props = alarm["Properties"]
        assert sorted(d["Name"] for d in props["Dimensions"]) == ["Endpoint", "MonitoringSchedule"]
        assert {d["Name"]: d["Value"] for d in props["Dimensions"]}["MonitoringSchedule"] == \
            "fraud-detector-realtime-data-quality"
        assert (props["Threshold"], props["ComparisonOperator"]) == (0.1, "GreaterThanThreshold")
        assert "AlarmActions" not in props  # the roll-up pages, not each feature
    # AND one composite alarm rolls them up and notifies the topic
    _, composite = only(realtime_template, "AWS::CloudWatch::CompositeAlarm")
    topic = logical_id_of(realtime_template, "AWS::SNS::Topic", "Alerts")
    assert composite["Properties"]["AlarmActions"] == [{"Ref": topic}]
    assert json.dumps(composite["Properties"]["AlarmRule"]).count("ALARM(") == 12


def test_auc_floor_alarm_notifies(realtime_template):
    realtime_template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "aws/sagemaker/Endpoints/model-metrics", "MetricName": "auc", "Threshold": 0.75,
        "ComparisonOperator": "LessThanThreshold", "AlarmActions": Match.any_value(),
        "Dimensions": Match.array_with([{"Name": "MonitoringSchedule",
                                         "Value": "fraud-detector-realtime-model-quality"}])})


def test_failed_runs_reach_the_topic_through_eventbridge(realtime_template):
    # GIVEN the rule on processing-job state changes
    _, rule = only(realtime_template, "AWS::Events::Rule")
    pattern = rule["Properties"]["EventPattern"]
    # THEN it matches failed or stopped runs of this stack's two schedules, except idle hours without data
    assert pattern["detail-type"] == ["SageMaker Processing Job State Change"]
    arns = pattern["detail"]["MonitoringScheduleArn"]
    assert sorted(arn["Fn::GetAtt"][1] for arn in arns) == ["MonitoringScheduleArn", "MonitoringScheduleArn"]
    assert {"ProcessingJobStatus": ["Stopped"]} in pattern["detail"]["$or"]
    failed = next(branch for branch in pattern["detail"]["$or"] if branch["ProcessingJobStatus"] == ["Failed"])
    assert failed["FailureReason"] == [{"anything-but": {"prefix": "Job inputs had no data"}}]
    topic = logical_id_of(realtime_template, "AWS::SNS::Topic", "Alerts")
    assert rule["Properties"]["Targets"][0]["Arn"] == {"Ref": topic}


def _statements_naming(template: Template, resource_type: str, document: str, service: str) -> list[dict]:
    found = []
    for resource in template.find_resources(resource_type).values():
        for statement in resource["Properties"][document]["Statement"]:
            principal = statement.get("Principal", {})
            principal = principal.get("Service", []) if isinstance(principal, dict) else []
            if service in ([principal] if isinstance(principal, str) else principal):
                found.append(statement)
    return found


def test_no_other_account_can_publish_to_the_alert_topic_through_eventbridge(realtime_template):
    # GIVEN the failed-runs rule and the alert topic with its KMS key
    _, rule = only(realtime_template, "AWS::Events::Rule")
    # THEN neither the topic policy nor the key policy lets events.amazonaws.com act without being scoped to
    # this account and this rule (unscoped, any account's rule aimed at the topic could page the on-call)
    for resource_type, document in (("AWS::SNS::TopicPolicy", "PolicyDocument"), ("AWS::KMS::Key", "KeyPolicy")):
        for statement in _statements_naming(realtime_template, resource_type, document, "events.amazonaws.com"):
            conditions = {key for operator in statement.get("Condition", {}).values() for key in operator}
            assert {"aws:SourceAccount", "aws:SourceArn"} <= conditions, (resource_type, statement)
    # AND the rule publishes through a role that only EventBridge, for this account's rule, may assume
    (target,) = rule["Properties"]["Targets"]
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    trust = realtime_template.to_json()["Resources"][role_id]["Properties"]["AssumeRolePolicyDocument"]
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    rule_name = rule["Properties"]["Name"]
    assert join_text(statement["Condition"]["StringEquals"]["aws:SourceArn"]).endswith(f":rule/{rule_name}")
    # AND that role may publish to the alert topic and use its key, nothing else
    policies = [resource["Properties"]["PolicyDocument"]["Statement"]
                for resource in realtime_template.find_resources("AWS::IAM::Policy").values()
                if {"Ref": role_id} in resource["Properties"]["Roles"]]
    (statements,) = policies
    assert sorted(action for s in statements for action in ([s["Action"]] if isinstance(s["Action"], str)
                                                            else s["Action"])) == [
        "kms:Decrypt", "kms:GenerateDataKey*", "sns:Publish"]


def test_dashboard_shows_drift_quality_and_alarm_state(realtime_template):
    _, dashboard = only(realtime_template, "AWS::CloudWatch::Dashboard")
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    for text in ("Feature drift from baseline (Model Monitor)", "feature_baseline_drift_merchant_risk",
                 "Model quality against labels (Model Monitor)", "Model Monitor alarms"):
        assert text in body


def test_outputs_name_what_the_operator_commands_need(realtime_template):
    outputs = realtime_template.to_json()["Outputs"]
    by_suffix = {key: value for key, value in outputs.items() if key.startswith("Monitor")}
    assert any(key.startswith("MonitorGroundTruthUri") for key in by_suffix)
    assert any(value["Value"] == "fraud-detector-realtime-data-quality" for value in by_suffix.values())
