"""DriftMonitor in a standalone stack: template, least privilege, alarms, cdk-nag AwsSolutions and cfn-lint."""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks
from cfnlint.api import lint

from ml_constructs.common.alert_topic import AlertTopic
from tests.cfn_text import render
from ml_constructs.common.model_metadata import ModelArtifactsError
from ml_constructs.monitoring.drift_monitor import (DriftMonitor, DriftSchedule, DriftSource, DriftThresholds,
                                                    LabelSource)
from tests.unit.monitoring.demo import feature_names, write_model_dir
from tests.nag import unacknowledged_findings

SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return write_model_dir(tmp_path_factory.mktemp("model"))


def make_stack(model_dir, outdir=None, *, labels=True, nag=False, **options):
    app = cdk.App(context=SKIP_BUNDLING, outdir=outdir)
    stack = cdk.Stack(app, "DriftTest", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    bucket = s3.Bucket.from_bucket_name(stack, "Capture", "capture-bucket")
    topic = AlertTopic(stack, "Alerts", encryption_key=key)
    options.setdefault("source", DriftSource(bucket=bucket, prefix="datacapture/fraud-detector"))
    monitor = DriftMonitor(stack, "Drift", artifacts_dir=model_dir, report_bucket=bucket,
                           report_prefix="monitoring/drift", encryption_key=key, alert_topic=topic.topic,
                           labels=LabelSource(bucket=bucket, prefix="monitoring/ground-truth") if labels else None,
                           **options)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack, monitor


@pytest.fixture(scope="module")
def built(model_dir):
    app, stack, monitor = make_stack(model_dir, thresholds=DriftThresholds(feature_psi={"amount": 0.1}))
    return Template.from_stack(stack), monitor


def test_the_job_is_an_arm64_python312_lambda_with_the_baseline_layer(built):
    template, _ = built
    template.has_resource_properties("AWS::Lambda::Function", {
        "Runtime": "python3.12", "Architectures": ["arm64"], "Handler": "drift_handler.handler",
        "ReservedConcurrentExecutions": 1, "Layers": [{"Ref": Match.string_like_regexp("DriftBaseline")}],
        "Environment": {"Variables": Match.object_like({
            "SOURCE_FORMAT": "capture", "SOURCE_PREFIX": "datacapture/fraud-detector/",
            "REPORT_PREFIX": "monitoring/drift/", "LABELS_PREFIX": "monitoring/ground-truth/",
            "BASELINE_PATH": "/opt/drift_baseline.json", "METRIC_NAMESPACE": "MLDrift/fraud-detector"})}})
    template.resource_count_is("AWS::Lambda::LayerVersion", 1)


def test_settings_carry_the_thresholds_and_the_models_decision_threshold(built):
    template, _ = built
    function = next(iter(template.find_resources("AWS::Lambda::Function").values()))
    settings = json.loads(function["Properties"]["Environment"]["Variables"]["SETTINGS"])
    assert settings == {"psi_threshold": 0.2, "ks_threshold": 0.2, "prediction_psi_threshold": 0.2,
                        "invalid_rate_threshold": 0.05, "decision_threshold": 0.5, "window_minutes": 60,
                        "label_lookback_hours": 168}


def test_hourly_schedule_invokes_the_job_with_a_role_only_that_schedule_may_assume(built):
    template, _ = built
    template.has_resource_properties("AWS::Scheduler::Schedule", {
        "ScheduleExpression": "rate(1 hour)", "State": "ENABLED",
        "Target": Match.object_like({"Input": Match.string_like_regexp("scheduled_time")})})
    (schedule,) = template.find_resources("AWS::Scheduler::Schedule").values()
    [trust] = [statement for role in template.find_resources("AWS::IAM::Role").values()
               for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
               if statement["Principal"] == {"Service": "scheduler.amazonaws.com"}]
    # THEN the scheduler may assume the role only for this account and this one schedule
    condition = trust["Condition"]["StringEquals"]
    assert set(condition) == {"aws:SourceAccount", "aws:SourceArn"}
    assert condition["aws:SourceAccount"] == "123456789012"
    assert render(condition["aws:SourceArn"]).endswith(
        f":scheduler:eu-west-1:123456789012:schedule/default/{schedule['Properties']['Name']}")


def _as_list(value):
    return value if isinstance(value, list) else [value]


def test_the_job_reads_and_writes_only_named_prefixes(built):
    template, _ = built
    policies = template.find_resources("AWS::IAM::Policy")
    statements = [statement for policy in policies.values()
                  for statement in policy["Properties"]["PolicyDocument"]["Statement"]]
    assert all(statement["Resource"] != "*" for statement in statements)
    # every S3 resource is the bucket itself (listing, limited by an s3:prefix condition) or under a named prefix
    named = ("datacapture/fraud-detector/*", "monitoring/ground-truth/*", "monitoring/drift/predictions/*",
             "monitoring/drift/*")
    s3_resources = [render(resource) for statement in statements
                    if any(action.startswith("s3:") for action in _as_list(statement["Action"]))
                    for resource in _as_list(statement["Resource"])]
    assert s3_resources and all(resource.endswith(":s3:::capture-bucket")
                                or any(resource.endswith(f":s3:::capture-bucket/{prefix}") for prefix in named)
                                for resource in s3_resources), s3_resources
    text = json.dumps(statements)
    for prefix in ("capture-bucket/datacapture/fraud-detector/*", "capture-bucket/monitoring/ground-truth/*",
                   "capture-bucket/monitoring/drift/predictions/*"):
        assert prefix in text
    puts = [statement for statement in statements if statement["Action"] == "s3:PutObject"]
    assert len(puts) == 1 and "capture-bucket/monitoring/drift/*" in json.dumps(puts[0]["Resource"])
    lists = [statement for statement in statements if statement["Action"] == "s3:ListBucket"]
    assert lists and all("s3:prefix" in statement["Condition"]["StringLike"] for statement in lists)
    assert "cloudwatch:PutMetricData" not in text  # metrics go out as EMF log lines


def test_one_psi_alarm_per_feature_plus_prediction_invalid_stalled_and_quality(built):
    template, monitor = built
    alarms = template.find_resources("AWS::CloudWatch::Alarm")
    assert len(alarms) == len(feature_names()) + 4
    assert list(monitor.feature_alarms) == feature_names()
    by_metric = {}
    for alarm in alarms.values():
        properties = alarm["Properties"]
        dimensions = {item["Name"]: item["Value"] for item in properties.get("Dimensions", [])}
        by_metric[(properties["MetricName"], dimensions.get("Feature"))] = properties
        assert properties["Namespace"] == "MLDrift/fraud-detector" and properties["AlarmActions"]
    assert by_metric[("PSI", "amount")]["Threshold"] == 0.1  # per-feature override
    assert by_metric[("PSI", "hour_of_day")]["Threshold"] == 0.2
    assert by_metric[("PSI", "amount")]["TreatMissingData"] == "notBreaching"
    assert by_metric[("PredictionPSI", None)]["TreatMissingData"] == "notBreaching"
    assert by_metric[("InvalidRate", None)]["Threshold"] == 0.05
    assert by_metric[("AUC", None)]["ComparisonOperator"] == "LessThanThreshold"
    assert by_metric[("AUC", None)]["Threshold"] == 0.75
    stalled = by_metric[("WindowsAnalysed", None)]
    assert stalled["TreatMissingData"] == "breaching" and stalled["EvaluationPeriods"] == 3


def test_without_labels_there_is_no_quality_alarm_and_the_dashboard_has_no_quality_graph(model_dir):
    _, stack, monitor = make_stack(model_dir, labels=False)
    metrics = [alarm["Properties"]["MetricName"]
               for alarm in Template.from_stack(stack).find_resources("AWS::CloudWatch::Alarm").values()]
    assert "AUC" not in metrics
    assert len(monitor.dashboard_widgets()) == 5
    assert "LABELS_BUCKET" not in json.dumps(Template.from_stack(stack).to_json())


@pytest.mark.parametrize("options, message", [
    ({"thresholds": DriftThresholds(feature_psi={"nope": 0.1})}, "unknown feature"),
    ({"thresholds": DriftThresholds(min_auc=0)}, "min_auc"),
    ({"thresholds": DriftThresholds(ks=1.5)}, "threshold ks 1.5 must be above 0 and at most 1"),
    ({"thresholds": DriftThresholds(feature_psi={"amount": 0})}, "feature_psi"),
    ({"schedule": DriftSchedule(expression="hourly")}, "not a rate"),
])
def test_invalid_options_are_refused_with_the_reason(model_dir, options, message):
    with pytest.raises(ValueError, match=message):
        make_stack(model_dir, **options)


def test_a_batch_source_needs_its_output_prefix(model_dir):
    with pytest.raises(ValueError, match="output_prefix"):
        app = cdk.App(context=SKIP_BUNDLING)
        stack = cdk.Stack(app, "S")
        bucket = s3.Bucket.from_bucket_name(stack, "B", "batch-bucket")
        make_stack(model_dir, source=DriftSource(bucket=bucket, prefix="in", format="batch"))


def test_a_model_without_a_drift_baseline_is_refused(tmp_path):
    model_dir = write_model_dir(tmp_path / "model")
    (model_dir / "drift_baseline.json").unlink()
    with pytest.raises(ModelArtifactsError, match="drift_baseline.json not found"):
        make_stack(model_dir)


def test_cdk_nag_awssolutions_has_no_unacknowledged_findings(model_dir, tmp_path):
    app, _, _ = make_stack(model_dir, str(tmp_path), nag=True)
    assert unacknowledged_findings(app, tmp_path) == []


def test_the_template_is_cfn_lint_clean(model_dir, tmp_path):
    app, _, _ = make_stack(model_dir, str(tmp_path))
    template = (tmp_path / "DriftTest.template.json") if app.synth() else None
    errors = [str(match) for match in lint(template.read_text(), regions=["us-east-1", "eu-west-1"])
              if match.rule.id.startswith("E")]
    assert errors == []


def test_outputs_name_the_function_that_ops_monitor_run_invokes(model_dir):
    _, stack, monitor = make_stack(model_dir)
    monitor.add_outputs()
    outputs = Template.from_stack(stack).find_outputs("*")
    function_outputs = [output for name, output in outputs.items() if "DriftFunctionName" in name]
    assert len(function_outputs) == 1 and "Ref" in function_outputs[0]["Value"]


def test_a_batch_monitor_has_no_schedule_and_reads_predictions_in_their_own_bucket(model_dir):
    # GIVEN a batch source whose .out files are in another bucket, started by the workflow (no schedule)
    app = cdk.App(context=SKIP_BUNDLING)
    stack = cdk.Stack(app, "BatchDrift", env=cdk.Environment(account="123456789012", region="eu-west-1"))
    key = kms.Key(stack, "Key", enable_key_rotation=True)
    inputs = s3.Bucket.from_bucket_name(stack, "In", "input-bucket")
    outputs = s3.Bucket.from_bucket_name(stack, "Out", "output-bucket")
    topic = AlertTopic(stack, "Alerts", encryption_key=key)
    monitor = DriftMonitor(stack, "Drift", artifacts_dir=model_dir, encryption_key=key, alert_topic=topic.topic,
                           source=DriftSource(bucket=inputs, prefix="input/", format="batch", output_bucket=outputs,
                                              output_prefix="predictions/"),
                           report_bucket=outputs, report_prefix="monitoring/drift",
                           schedule=DriftSchedule(scheduled=False, window=cdk.Duration.days(1)))
    template = Template.from_stack(stack)
    # THEN no Scheduler schedule exists, the function knows the output bucket, and may read only its prefix there
    assert monitor.schedule is None
    template.resource_count_is("AWS::Scheduler::Schedule", 0)
    template.has_resource_properties("AWS::Lambda::Function", {"Environment": {"Variables": Match.object_like(
        {"OUTPUT_BUCKET": "output-bucket", "OUTPUT_PREFIX": "predictions/", "SOURCE_PREFIX": "input/"})}})
    reads = [statement["Resource"] for policy in template.find_resources("AWS::IAM::Policy").values()
             for statement in policy["Properties"]["PolicyDocument"]["Statement"] if statement["Action"] == "s3:GetObject"]
    rendered = json.dumps(reads)
    assert ":s3:::output-bucket/predictions/*" in rendered and ":s3:::input-bucket/input/*" in rendered
    # AND the alarms use the one-day period of a nightly run (the stalled alarm spans three nights)
    stalled = template.find_resources("AWS::CloudWatch::Alarm", {"Properties": {"MetricName": "WindowsAnalysed"}})
    (alarm,) = stalled.values()
    assert (alarm["Properties"]["Period"], alarm["Properties"]["EvaluationPeriods"]) == (86400, 3)
