"""``deploy.monitoring.engine`` in each pattern's stack: the built-in drift job by default, Model Monitor on request."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from tests.conftest import build_app
from stacks.drift_wiring import window_of
from tests.nag import unacknowledged_findings

MODEL_MONITOR_TYPES = ("AWS::SageMaker::DataQualityJobDefinition", "AWS::SageMaker::ModelQualityJobDefinition",
                       "AWS::SageMaker::MonitoringSchedule")
PATTERNS = ("realtime", "batch", "serverless")


def templates(**overrides) -> dict[str, dict]:
    _, stacks = build_app(overrides={"deploy.edge.enabled": False, **overrides})
    return {name: Template.from_stack(stack).to_json() for name, stack in stacks.items()}


@pytest.fixture(scope="module")
def model_monitor_templates() -> dict[str, dict]:
    return templates(**{"deploy.monitoring.engine": "model-monitor"})


@pytest.fixture(scope="module")
def default_json(default_templates) -> dict[str, dict]:
    return {name: template.to_json() for name, template in default_templates.items()}


def of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def drift_function(template: dict) -> dict:
    (function,) = [value for value in of_type(template, "AWS::Lambda::Function").values()
                   if value["Properties"].get("Handler") == "drift_handler.handler"]
    return function


def drift_alarms(template: dict) -> dict[str, dict]:
    return {key: value for key, value in of_type(template, "AWS::CloudWatch::Alarm").items()
            if str(value["Properties"].get("Namespace", "")).startswith("MLDrift/")}


def alert_topic(template: dict) -> str:
    (topic,) = of_type(template, "AWS::SNS::Topic")
    return topic


@pytest.mark.parametrize("pattern", PATTERNS)
def test_the_default_engine_puts_drift_alarms_to_the_alert_topic_and_no_model_monitor(default_json, pattern):
    # GIVEN the default configuration (engine builtin)
    template = default_json[pattern]
    # THEN no Model Monitor resource exists
    assert not any(of_type(template, resource_type) for resource_type in MODEL_MONITOR_TYPES)
    # AND a drift job with per-feature and prediction drift alarms that notify the stack's alert topic
    drift_function(template)
    alarms = drift_alarms(template)
    assert {alarm["Properties"]["MetricName"] for alarm in alarms.values()} >= {"PSI", "PredictionPSI", "InvalidRate"}
    topic = alert_topic(template)
    for alarm in alarms.values():
        assert {"Ref": topic} in alarm["Properties"]["AlarmActions"]
    # AND the pattern's dashboard shows them
    (dashboard,) = of_type(template, "AWS::CloudWatch::Dashboard").values()
    body = json.dumps(dashboard["Properties"]["DashboardBody"])
    assert "Feature drift (PSI)" in body and "Drift alarms" in body


def test_each_pattern_publishes_into_its_own_namespace(default_json):
    # GIVEN the three stacks of one model THEN their drift metrics never mix
    namespaces = {pattern: {alarm["Properties"]["Namespace"] for alarm in drift_alarms(default_json[pattern]).values()}
                  for pattern in PATTERNS}
    assert namespaces == {"realtime": {"MLDrift/fraud-detector-realtime"}, "batch": {"MLDrift/fraud-detector-batch"},
                          "serverless": {"MLDrift/fraud-detector-serverless"}}
    names = [schedule["Properties"]["Name"] for pattern in ("realtime", "serverless")
             for schedule in of_type(default_json[pattern], "AWS::Scheduler::Schedule").values()]
    assert len(set(names)) == len(names)


def test_realtime_reads_the_endpoints_data_capture_hourly(default_json):
    # GIVEN the default real-time stack
    template = default_json["realtime"]
    variables = drift_function(template)["Properties"]["Environment"]["Variables"]
    # THEN the job reads this endpoint's capture prefix in SageMaker's capture format, with labels for quality
    assert (variables["SOURCE_FORMAT"], variables["SOURCE_PREFIX"]) == ("capture", "data-capture/fraud-detector-realtime/")
    assert variables["LABELS_PREFIX"] == "monitoring/ground-truth/"
    (schedule,) = [value for value in of_type(template, "AWS::Scheduler::Schedule").values()
                   if "drift" in value["Properties"]["Name"]]
    assert schedule["Properties"]["ScheduleExpression"] == "rate(1 hour)"
    assert {alarm["Properties"]["MetricName"] for alarm in drift_alarms(template).values()} >= {"AUC", "WindowsAnalysed"}


def test_a_serverless_endpoint_has_no_capture_and_so_no_drift_job():
    # GIVEN a real-time endpoint in serverless mode (SageMaker captures nothing there)
    template = templates(**{"deploy.realtime.mode": "serverless", "deploy.batch.enabled": False,
                            "deploy.serverless.enabled": False})["realtime"]
    # THEN neither a drift job nor Model Monitor is created
    assert [value for value in of_type(template, "AWS::Lambda::Function").values()
            if value["Properties"].get("Handler") == "drift_handler.handler"] == []
    assert drift_alarms(template) == {}
    assert not any(of_type(template, resource_type) for resource_type in MODEL_MONITOR_TYPES)


def test_batch_runs_the_drift_job_as_a_step_not_on_a_schedule(default_json):
    # GIVEN the default batch stack
    template = default_json["batch"]
    # THEN the workflow invokes the drift job after the transform, and the job has no schedule of its own
    (machine,) = of_type(template, "AWS::StepFunctions::StateMachine").values()
    assert "CheckDrift" in json.dumps(machine["Properties"]["DefinitionString"])
    assert [value for value in of_type(template, "AWS::Scheduler::Schedule").values()
            if "drift" in json.dumps(value["Properties"]["Name"])] == []
    variables = drift_function(template)["Properties"]["Environment"]["Variables"]
    assert (variables["SOURCE_FORMAT"], variables["SOURCE_PREFIX"], variables["OUTPUT_PREFIX"]) == (
        "batch", "input/", "predictions/")
    # AND its alarms evaluate one nightly run per period
    assert {alarm["Properties"]["Period"] for alarm in drift_alarms(template).values()} == {86400}


def test_serverless_samples_requests_to_the_capture_bucket_and_the_job_reads_them(default_json):
    # GIVEN the default serverless stack
    template = default_json["serverless"]
    functions = [value for value in of_type(template, "AWS::Lambda::Function").values()
                 if value["Properties"].get("Handler") == "handler.lambda_handler"]
    (model_function,) = functions
    variables = model_function["Properties"]["Environment"]["Variables"]
    # THEN the model function samples the configured share into capture/serverless/
    assert variables["CAPTURE_SAMPLE_PERCENT"] == "10" and variables["CAPTURE_S3_PREFIX"] == "capture/serverless/"
    drift_variables = drift_function(template)["Properties"]["Environment"]["Variables"]
    assert (drift_variables["SOURCE_FORMAT"], drift_variables["SOURCE_PREFIX"]) == ("samples", "capture/serverless/")
    assert drift_variables["SOURCE_BUCKET"] == variables["CAPTURE_S3_BUCKET"]
    # AND the capture bucket expires the samples after deploy.storage.capture_expiry_days (90)
    rules = [rule for bucket in of_type(template, "AWS::S3::Bucket").values()
             for rule in bucket["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
             if rule.get("Prefix") == "capture/serverless/"]
    assert [rule["ExpirationInDays"] for rule in rules] == [90]


def test_the_builtin_settings_reach_every_pattern():
    # GIVEN thresholds, schedule and sample share set under deploy.monitoring.builtin
    built = templates(**{"deploy.monitoring.builtin.psi_threshold": 0.3,
                         "deploy.monitoring.builtin.prediction_psi_threshold": 0.4,
                         "deploy.monitoring.builtin.schedule": "rate(30 minutes)",
                         "deploy.monitoring.builtin.serverless_sample_percent": 25})
    # THEN the alarms, settings and schedules use them
    for pattern in PATTERNS:
        alarms = drift_alarms(built[pattern]).values()
        assert {alarm["Properties"]["Threshold"] for alarm in alarms if alarm["Properties"]["MetricName"] == "PSI"} == {0.3}
        assert {alarm["Properties"]["Threshold"] for alarm in alarms
                if alarm["Properties"]["MetricName"] == "PredictionPSI"} == {0.4}
        settings = json.loads(drift_function(built[pattern])["Properties"]["Environment"]["Variables"]["SETTINGS"])
        assert settings["psi_threshold"] == 0.3
    for pattern in ("realtime", "serverless"):
        settings = json.loads(drift_function(built[pattern])["Properties"]["Environment"]["Variables"]["SETTINGS"])
        assert settings["window_minutes"] == 30
    serverless_function = next(value for value in of_type(built["serverless"], "AWS::Lambda::Function").values()
                               if value["Properties"].get("Handler") == "handler.lambda_handler")
    assert serverless_function["Properties"]["Environment"]["Variables"]["CAPTURE_SAMPLE_PERCENT"] == "25"


def test_model_monitor_engine_brings_model_monitor_back_and_no_builtin_job(model_monitor_templates):
    # GIVEN -c deploy.monitoring.engine=model-monitor
    realtime = model_monitor_templates["realtime"]
    # THEN the real-time stack has today's Model Monitor resources and no drift job
    assert all(of_type(realtime, resource_type) for resource_type in MODEL_MONITOR_TYPES)
    for pattern in PATTERNS:
        template = model_monitor_templates[pattern]
        assert [value for value in of_type(template, "AWS::Lambda::Function").values()
                if value["Properties"].get("Handler") == "drift_handler.handler"] == []
        assert drift_alarms(template) == {}
    # AND serverless samples nothing, batch has no drift step
    serverless_function = next(value for value in of_type(model_monitor_templates["serverless"],
                                                          "AWS::Lambda::Function").values()
                               if value["Properties"].get("Handler") == "handler.lambda_handler")
    assert not any(name.startswith("CAPTURE_") for name in serverless_function["Properties"]["Environment"]["Variables"])
    (machine,) = of_type(model_monitor_templates["batch"], "AWS::StepFunctions::StateMachine").values()
    assert "CheckDrift" not in json.dumps(machine["Properties"]["DefinitionString"])


@pytest.mark.parametrize("expression, minutes", [
    ("rate(1 hour)", 60), ("rate(15 minutes)", 15), ("rate(2 hours)", 120), ("rate(1 day)", 1440),
    ("cron(0 * * * ? *)", 60),
])
def test_a_rate_schedule_reads_exactly_its_interval(expression, minutes):
    # GIVEN a schedule expression THEN one run reads the traffic since the previous run
    assert window_of(expression).to_minutes() == minutes


def test_the_model_monitor_engine_stays_cdk_nag_clean(tmp_path):
    # GIVEN the app with -c deploy.monitoring.engine=model-monitor under AwsSolutions (tests/compliance covers the
    # default engine)
    app, _ = build_app(overrides={"deploy.monitoring.engine": "model-monitor", "deploy.edge.enabled": False},
                       outdir=str(tmp_path), nag=True)
    # THEN there is no unacknowledged finding
    assert unacknowledged_findings(app, tmp_path) == []
