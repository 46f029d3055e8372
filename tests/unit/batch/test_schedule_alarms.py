"""The nightly schedule, the alarms that page on failed runs, and the dashboard."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Match

from tests.unit.batch.conftest import one, placeholder_render, resources


def test_schedule_starts_the_state_machine_at_two_in_the_configured_time_zone(batch_template, batch_json):
    machine = next(iter(resources(batch_json, "AWS::StepFunctions::StateMachine")))
    _, schedule = one(batch_json, "AWS::Scheduler::Schedule")
    properties = schedule["Properties"]
    assert properties["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert properties["ScheduleExpressionTimezone"] == "UTC"
    assert properties["State"] == "ENABLED"
    assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert properties["Target"]["Arn"] == {"Ref": machine}
    assert properties["Target"]["RoleArn"]["Fn::GetAtt"][0].startswith("ScheduleRole")
    assert json.loads(properties["Target"]["Input"]) == {"trigger": "schedule",
                                                          "scheduled_time": "<aws.scheduler.scheduled-time>"}


@pytest.mark.parametrize("metric", ["ExecutionsFailed", "ExecutionsTimedOut"])
def test_failed_and_timed_out_executions_page_the_alert_topic(batch_template, batch_json, metric):
    machine = next(iter(resources(batch_json, "AWS::StepFunctions::StateMachine")))
    topic = next(iter(resources(batch_json, "AWS::SNS::Topic")))
    batch_template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AWS/States", "MetricName": metric, "Statistic": "Sum", "Period": 300,
        "Dimensions": [{"Name": "StateMachineArn", "Value": {"Ref": machine}}],
        "Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold", "EvaluationPeriods": 1,
        "TreatMissingData": "notBreaching", "AlarmActions": [{"Ref": topic}], "OKActions": [{"Ref": topic}]})


def test_a_scheduled_run_that_never_started_pages_too(batch_template, batch_json):
    # GIVEN the schedule sits alone in its own group, so the group's metrics are this schedule's
    (group,) = resources(batch_json, "AWS::Scheduler::ScheduleGroup").values()
    assert group["Properties"]["Name"] == "fraud-detector-batch"
    _, schedule = one(batch_json, "AWS::Scheduler::Schedule")
    assert schedule["Properties"]["GroupName"] == "fraud-detector-batch"
    # THEN invocations Scheduler dropped (after retries) page the alert topic
    topic = next(iter(resources(batch_json, "AWS::SNS::Topic")))
    batch_template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "Namespace": "AWS/Scheduler", "MetricName": "InvocationDroppedCount", "Statistic": "Sum",
        "Dimensions": [{"Name": "ScheduleGroup", "Value": "fraud-detector-batch"}], "Threshold": 1,
        "AlarmActions": [{"Ref": topic}]})


def test_dashboard_shows_executions_duration_and_failures(batch_json):
    _, dashboard = one(batch_json, "AWS::CloudWatch::Dashboard")
    assert dashboard["Properties"]["DashboardName"] == "fraud-detector-batch"
    body = placeholder_render(dashboard["Properties"]["DashboardBody"])
    for metric in ("ExecutionsStarted", "ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut",
                   "ExecutionTime", "InvocationDroppedCount"):
        assert f'"{metric}"' in body
    assert "/ 60000" in body  # duration shown in minutes, Step Functions reports milliseconds


def test_outputs_name_what_operators_need(batch_template):
    outputs = batch_template.to_json()["Outputs"]
    assert {"StateMachineArn", "InputBucketName", "DefaultInputUri", "PredictionsUri", "ModelVersion",
            "AlertTopicArn"} <= set(outputs)
    batch_template.has_output("ModelVersion", {"Value": Match.string_like_regexp(r"v1-[0-9a-f]{12}")})


def test_schedule_is_created_after_its_group(batch_json):
    # GIVEN the schedule and the group it is filed under
    (group_id,) = resources(batch_json, "AWS::Scheduler::ScheduleGroup")
    _, schedule = one(batch_json, "AWS::Scheduler::Schedule")
    # THEN CloudFormation knows the order: the schedule names its group through a Ref, or depends on it
    # (a plain string leaves them unordered and CreateSchedule can fail with the group missing)
    group_name = schedule["Properties"]["GroupName"]
    depends_on = schedule.get("DependsOn", [])
    assert group_name == {"Ref": group_id} or group_id in ([depends_on] if isinstance(depends_on, str)
                                                           else depends_on), (group_name, depends_on)
