"""ops.cost reads what costs money from synthesized templates: the default app and crafted fragments."""
from __future__ import annotations

import pytest
from aws_cdk.assertions import Template

from ops.cli import UsageError
from ops.cost.schedules import runs_per_month
from ops.cost.templates import (pattern_of, read_batch, read_cloud_assembly, read_edge, read_realtime,
                                read_serverless, transitions_on_success)
from tests.conftest import build_app


def of_type(template: dict, resource_type: str) -> dict[str, dict]:
    return {key: value for key, value in template["Resources"].items() if value["Type"] == resource_type}


def endpoint_config(template: dict) -> dict:
    (config,) = of_type(template, "AWS::SageMaker::EndpointConfig").values()
    return config["Properties"]


# -- the default app -------------------------------------------------------------------------------------------
def test_each_default_stack_is_recognised_by_its_defining_resource(default_json):
    # GIVEN the four default stacks  THEN each is classified as the pattern it deploys
    assert {pattern: pattern_of(template) for pattern, template in default_json.items()} == {
        "realtime": "realtime", "batch": "batch", "serverless": "serverless", "edge": "edge"}


def test_realtime_reads_the_scalable_targets_minimum_per_variant(default_json):
    # GIVEN the default endpoint: v1 and v2 on ml.m5.large, autoscaling min 2 max 10, 1000 invocations/instance
    facts = read_realtime(default_json["realtime"])
    # THEN both variants run 2 instances when idle and the scaling target is known
    assert [(v.name, v.instance_type, v.min_count, v.max_count, v.invocations_per_instance)
            for v in facts.instance_variants] == [("v1", "ml.m5.large", 2, 10, 1000.0),
                                                  ("v2", "ml.m5.large", 2, 10, 1000.0)]
    assert [v.weight for v in facts.instance_variants] == [0.9, 0.1]
    assert facts.capture_percent == 100.0


def test_realtime_reads_model_monitor_jobs_and_their_schedules():
    # GIVEN hourly data quality and daily model quality on ml.m5.xlarge (the model-monitor engine)
    _, stacks = build_app(overrides={"deploy.monitoring.engine": "model-monitor", "deploy.batch.enabled": False,
                                     "deploy.serverless.enabled": False, "deploy.edge.enabled": False})
    jobs = {job.kind: job for job in read_realtime(Template.from_stack(stacks["realtime"]).to_json()).monitoring_jobs}
    # THEN each job carries its cluster, its runtime cap and its runs per month
    assert jobs["DataQuality"].instance_type == "ml.m5.xlarge" and jobs["DataQuality"].instance_count == 1
    assert jobs["DataQuality"].runs_per_month == pytest.approx(730)
    assert jobs["ModelQuality"].runs_per_month == pytest.approx(730 / 24)
    assert jobs["ModelQuality"].max_runtime_s == 1800


def test_realtime_counts_alarms_dashboards_keys_and_log_retention(default_json):
    common = read_realtime(default_json["realtime"]).common
    template = default_json["realtime"]
    assert common.alarms == len(of_type(template, "AWS::CloudWatch::Alarm")) > 0
    assert common.composite_alarms == len(of_type(template, "AWS::CloudWatch::CompositeAlarm"))
    assert common.dashboards == 1 and common.kms_keys == 1
    assert len(common.log_retention_days) == len(of_type(template, "AWS::Logs::LogGroup"))


def test_batch_reads_the_transform_fleet_the_schedule_and_transitions(default_json):
    # GIVEN the default batch stack: 4 × ml.m5.xlarge, nightly at 02:00 UTC
    facts = read_batch(default_json["batch"])
    # THEN the fleet comes from the state machine's CreateTransformJob parameters, the runs from the Scheduler cron
    assert (facts.instance_type, facts.instance_count) == ("ml.m5.xlarge", 4)
    assert facts.schedule == "cron(0 2 * * ? *)"
    assert facts.runs_per_month == pytest.approx(730 / 24)
    # AND a successful run enters ReadRequest, MergeDefaults, PlanRun, ScoreRows, DeployedModel?, CheckDrift (the
    # built-in drift step), BuildManifest, WriteManifest, RunSucceeded
    assert facts.transitions_per_run == 9


def test_batch_instance_settings_follow_the_configuration(templates):
    # GIVEN another fleet in the state machine definition (as `-c deploy.batch.transform...` would write it)
    (machine,) = [m for m in of_type(templates["batch"], "AWS::StepFunctions::StateMachine").values()]
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    machine["Properties"]["DefinitionString"]["Fn::Join"][1] = [
        part.replace('"InstanceType":"ml.m5.xlarge","InstanceCount":4',
                     '"InstanceType":"ml.c5.xlarge","InstanceCount":1')
        if isinstance(part, str) else part for part in parts]
    facts = read_batch(templates["batch"])
    assert (facts.instance_type, facts.instance_count) == ("ml.c5.xlarge", 1)


def test_serverless_reads_the_api_function_architecture_memory_and_api_type(default_json):
    facts = read_serverless(default_json["serverless"])
    function = facts.function
    assert (function.architecture, function.memory_mb, function.provisioned_concurrency, function.snap_start) == \
        ("arm64", 512, 0, False)
    assert facts.api_type == "REST"
    assert facts.throttle_rate_per_s == 50.0
    assert sorted(facts.common.log_retention_days) == [30, 30, 90]  # function, drift job, API access logs


def test_edge_reads_the_component(default_json):
    assert read_edge(default_json["edge"]).components == ("com.example.FraudDetector",)


# -- non-default modes, as crafted fragments -------------------------------------------------------------------
def test_serverless_inference_variant_is_read_from_serverless_config(templates):
    # GIVEN a production variant with ServerlessConfig instead of instances
    config = endpoint_config(templates["realtime"])
    config["ProductionVariants"] = [{"VariantName": "v1", "ModelName": "m", "InitialVariantWeight": 1,
                                     "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5}}]
    facts = read_realtime(templates["realtime"])
    # THEN it is a serverless variant and no instance runs
    assert facts.instance_variants == ()
    (variant,) = facts.serverless_variants
    assert (variant.memory_mb, variant.max_concurrency, variant.provisioned_concurrency) == (2048, 5, 0)


def test_async_endpoint_scaled_to_zero_has_no_always_on_instance(templates):
    # GIVEN AsyncInferenceConfig and a scalable target with MinCapacity 0
    config = endpoint_config(templates["realtime"])
    config["AsyncInferenceConfig"] = {"OutputConfig": {"S3OutputPath": "s3://bucket/async/"}}
    for target in of_type(templates["realtime"], "AWS::ApplicationAutoScaling::ScalableTarget").values():
        target["Properties"]["MinCapacity"] = 0
    facts = read_realtime(templates["realtime"])
    assert all(v.async_inference and v.min_count == 0 for v in facts.instance_variants)


def test_shadow_variants_are_read_with_their_own_fleet(templates):
    # GIVEN a shadow variant on one ml.m5.xlarge with no scalable target
    config = endpoint_config(templates["realtime"])
    config["ShadowProductionVariants"] = [{"VariantName": "shadow", "ModelName": "m", "InitialInstanceCount": 1,
                                           "InstanceType": "ml.m5.xlarge", "InitialVariantWeight": 0.5}]
    shadows = [v for v in read_realtime(templates["realtime"]).instance_variants if v.shadow]
    assert [(v.name, v.instance_type, v.min_count) for v in shadows] == [("shadow", "ml.m5.xlarge", 1)]


def test_without_a_scalable_target_the_initial_count_runs(templates):
    for key in list(of_type(templates["realtime"], "AWS::ApplicationAutoScaling::ScalableTarget")):
        del templates["realtime"]["Resources"][key]
    for key in list(of_type(templates["realtime"], "AWS::ApplicationAutoScaling::ScalingPolicy")):
        del templates["realtime"]["Resources"][key]
    facts = read_realtime(templates["realtime"])
    assert [(v.min_count, v.invocations_per_instance) for v in facts.instance_variants] == [(2, None), (2, None)]


def test_a_scheduled_lambda_is_read_as_the_drift_job(templates):
    # GIVEN a built-in drift job: a Lambda function started daily by an EventBridge rule
    resources = templates["realtime"]["Resources"]
    resources["DriftFunction"] = {"Type": "AWS::Lambda::Function", "Properties": {
        "Architectures": ["arm64"], "MemorySize": 1024, "Timeout": 300, "Runtime": "python3.12",
        "Handler": "index.handler", "Role": "arn:aws:iam::123456789012:role/r", "Code": {"ZipFile": "x"}}}
    resources["DriftSchedule"] = {"Type": "AWS::Events::Rule", "Properties": {
        "ScheduleExpression": "rate(1 day)", "State": "ENABLED",
        "Targets": [{"Arn": {"Fn::GetAtt": ["DriftFunction", "Arn"]}, "Id": "Target0"}]}}
    (job,) = [job for job in read_realtime(templates["realtime"]).scheduled_functions if job.name == "DriftFunction"]
    assert (job.name, job.memory_mb, job.architecture, job.timeout_s) == ("DriftFunction", 1024, "arm64", 300)
    assert job.runs_per_month == pytest.approx(730 / 24)


def test_snapstart_and_provisioned_concurrency_are_read_from_function_and_alias(templates):
    resources = templates["serverless"]["Resources"]
    (function_id,) = [key for key, value in resources.items() if value["Type"] == "AWS::Lambda::Function"
                      and value["Properties"].get("MemorySize") == 512]
    resources[function_id]["Properties"]["SnapStart"] = {"ApplyOn": "PublishedVersions"}
    (alias,) = of_type(templates["serverless"], "AWS::Lambda::Alias").values()
    alias["Properties"]["ProvisionedConcurrencyConfig"] = {"ProvisionedConcurrentExecutions": 3}
    function = read_serverless(templates["serverless"]).function
    assert function.snap_start and function.provisioned_concurrency == 3


def test_an_http_api_is_read_as_http():
    template = {"Resources": {
        "Fn": {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 256}},
        "Api": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {"ProtocolType": "HTTP", "Name": "a"}},
        "Integration": {"Type": "AWS::ApiGatewayV2::Integration", "Properties": {
            "ApiId": {"Ref": "Api"}, "IntegrationType": "AWS_PROXY",
            "IntegrationUri": {"Fn::GetAtt": ["Fn", "Arn"]}}}}}
    facts = read_serverless(template)
    assert facts.api_type == "HTTP" and facts.function.architecture == "x86_64" and facts.function.memory_mb == 256


# -- refusals and schedules ------------------------------------------------------------------------------------
def test_a_missing_cdk_out_is_a_usage_error_naming_make_synth(tmp_path):
    with pytest.raises(UsageError, match="make synth"):
        read_cloud_assembly(tmp_path / "nowhere")


@pytest.mark.parametrize("expression, runs", [
    ("cron(0 * ? * * *)", 730), ("cron(0 0 ? * * *)", 730 / 24), ("cron(0 2 * * ? *)", 730 / 24),
    ("rate(6 hours)", 730 / 6), ("rate(30 minutes)", 1460), ("cron(0/15 * * * ? *)", 4 * 730),
    ("cron(0 8 ? * MON-FRI *)", 5 / 7 * 730 / 24), ("cron(0 3 1 * ? *)", 1), ("at(2026-12-24T00:00:00)", 0)])
def test_schedule_expressions_count_runs_per_month(expression, runs):
    assert runs_per_month(expression) == pytest.approx(runs)


def test_an_unreadable_schedule_is_refused():
    with pytest.raises(UsageError, match="unreadable schedule"):
        runs_per_month("every night")


def test_transitions_follow_next_until_the_end():
    definition = {"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Task", "End": True},
                                             "C": {"Type": "Fail"}}}
    assert transitions_on_success(definition) == 2
