"""Real-time endpoints without always-on instances (serverless, async to zero) and shadow testing, at construct level."""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk import aws_sns as sns
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from ml_constructs.common.alert_topic import AlertTopic
from ml_constructs.common.model_package import ModelPackage
from ml_constructs.common.secure_storage import DataKey, SecureBucket
from ml_constructs.realtime.alarms import EndpointAlarms, EndpointDashboard
from ml_constructs.realtime.endpoint import (Autoscaling, DataCapture, ProductionVariant, RealtimeEndpoint,
                                             ShadowVariant)
from ml_constructs.realtime.guardrails import DeploymentGuardrails
from ml_constructs.realtime.modes import AsyncInference, AsyncScaling, ServerlessCapacity


def _stack(build, *, nag: bool = True) -> Template:
    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Probe", env=cdk.Environment(account="111122223333", region="us-east-1"))
    key = DataKey(stack, "Key", description="probe").key
    alerts = AlertTopic(stack, "Alerts", encryption_key=key)
    package = ModelPackage(stack, "Package", artifacts_dir="artifacts/fraud-detector")
    candidate = ModelPackage(stack, "Candidate", artifacts_dir="artifacts/fraud-detector-v2")
    endpoint = build(stack, key, package, candidate)
    alarms = EndpointAlarms(stack, "Alarms", endpoint=endpoint)
    alerts.notify_on(*alarms.all_alarms)
    if endpoint.guardrails and endpoint.guardrails.auto_rollback:
        endpoint.add_rollback_alarms(*alarms.rollback_alarms)
    EndpointDashboard(stack, "Dashboard", endpoint=endpoint, alarms=alarms)
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return Template.from_stack(stack)


def _serverless(stack, key, package, candidate, **overrides):
    options = dict(endpoint_name="probe", variants=[ProductionVariant(name="v1", package=package)],
                   serverless=ServerlessCapacity(memory_mb=3072, max_concurrency=10, provisioned_concurrency=2),
                   guardrails=DeploymentGuardrails(strategy="ALL_AT_ONCE"))
    options.update(overrides)
    return RealtimeEndpoint(stack, "Endpoint", **options)


def _async(stack, key, package, candidate):
    storage = SecureBucket(stack, "AsyncStorage", encryption_key=key)
    topics = [sns.Topic(stack, name, master_key=key, enforce_ssl=True) for name in ("Success", "Failure")]
    return RealtimeEndpoint(
        stack, "Endpoint", endpoint_name="probe", volume_key=key,
        variants=[ProductionVariant(name="v1", package=package, initial_instance_count=1)],
        async_inference=AsyncInference(bucket=storage.bucket, encryption_key=key, success_topic=topics[0],
                                       error_topic=topics[1], max_concurrent_invocations_per_instance=2,
                                       scaling=AsyncScaling(min_capacity=0, max_capacity=3)),
        guardrails=DeploymentGuardrails(strategy="ALL_AT_ONCE"))


def _shadow(stack, key, package, candidate):
    return RealtimeEndpoint(
        stack, "Endpoint", endpoint_name="probe", volume_key=key,
        variants=[ProductionVariant(name="v1", package=package, initial_instance_count=2)],
        shadow=ShadowVariant(variant=ProductionVariant(name="shadow", package=candidate, initial_instance_count=1),
                             sampling_percent=25),
        autoscaling=Autoscaling(min_capacity=2, max_capacity=4), guardrails=DeploymentGuardrails())


@pytest.fixture(scope="module")
def serverless_template() -> Template:
    return _stack(_serverless)


@pytest.fixture(scope="module")
def async_template() -> Template:
    return _stack(_async)


@pytest.fixture(scope="module")
def shadow_template() -> Template:
    return _stack(_shadow)


def _only(template: Template, kind: str) -> dict:
    (resource,) = template.find_resources(kind).values()
    return resource["Properties"]


def test_serverless_variant_has_memory_and_concurrency_instead_of_instances(serverless_template):
    (variant,) = _only(serverless_template, "AWS::SageMaker::EndpointConfig")["ProductionVariants"]
    assert variant["ServerlessConfig"] == {"MemorySizeInMB": 3072, "MaxConcurrency": 10, "ProvisionedConcurrency": 2}
    assert "InstanceType" not in variant and "InitialInstanceCount" not in variant
    config = _only(serverless_template, "AWS::SageMaker::EndpointConfig")
    assert "KmsKeyId" not in config and "DataCaptureConfig" not in config
    # AND the model is not network-isolated (serverless refuses isolation), and nothing autoscales instances
    assert _only(serverless_template, "AWS::SageMaker::Model")["EnableNetworkIsolation"] is False
    serverless_template.resource_count_is("AWS::ApplicationAutoScaling::ScalableTarget", 0)


def test_serverless_dashboard_has_no_instance_metrics(serverless_template):
    body = json.dumps(_only(serverless_template, "AWS::CloudWatch::Dashboard")["DashboardBody"])
    assert "CPUUtilization" not in body and "InvocationsPerInstance" not in body
    assert "ModelLatency" in body


@pytest.mark.parametrize("overrides, message", [
    ({"serverless": ServerlessCapacity(memory_mb=1500)}, "memory_mb must be one of 1024, 2048"),
    ({"serverless": ServerlessCapacity(max_concurrency=201)}, "max_concurrency must be 1..200"),
    ({"serverless": ServerlessCapacity(max_concurrency=2, provisioned_concurrency=3)}, "provisioned_concurrency"),
    ({"guardrails": DeploymentGuardrails()}, "shifts ALL_AT_ONCE"),
    ({"autoscaling": Autoscaling()}, "serverless endpoints scale by concurrency"),
])
def test_serverless_refuses_what_sagemaker_refuses(overrides, message):
    with pytest.raises(ValueError, match=message):
        _stack(lambda *args: _serverless(*args, **overrides), nag=False)


def test_serverless_refuses_capture_and_a_second_variant():
    def build(stack, key, package, candidate):
        storage = SecureBucket(stack, "Capture", encryption_key=key)
        return _serverless(stack, key, package, candidate,
                           variants=[ProductionVariant(name="v1", package=package),
                                     ProductionVariant(name="v2", package=candidate)],
                           data_capture=DataCapture(bucket=storage.bucket, encryption_key=key))
    with pytest.raises(ValueError) as error:
        _stack(build, nag=False)
    assert "one production variant" in str(error.value) and "data capture" in str(error.value)


def test_async_writes_encrypted_results_and_notifies_both_outcomes(async_template):
    config = _only(async_template, "AWS::SageMaker::EndpointConfig")["AsyncInferenceConfig"]
    assert config["ClientConfig"] == {"MaxConcurrentInvocationsPerInstance": 2}
    output = config["OutputConfig"]
    assert "async/output" in json.dumps(output["S3OutputPath"]) and "async/failures" in json.dumps(
        output["S3FailurePath"])
    assert output["KmsKeyId"] and set(output["NotificationConfig"]) >= {"SuccessTopic", "ErrorTopic"}


def test_async_scales_to_zero_and_back_out_from_the_backlog(async_template):
    target = _only(async_template, "AWS::ApplicationAutoScaling::ScalableTarget")
    assert target["MinCapacity"] == 0 and target["MaxCapacity"] == 3
    policies = async_template.find_resources("AWS::ApplicationAutoScaling::ScalingPolicy")
    kinds = {p["Properties"]["PolicyType"]: p["Properties"] for p in policies.values()}
    tracking = kinds["TargetTrackingScaling"]["TargetTrackingScalingPolicyConfiguration"]
    assert tracking["CustomizedMetricSpecification"]["MetricName"] == "ApproximateBacklogSizePerInstance"
    step = kinds["StepScaling"]["StepScalingPolicyConfiguration"]
    assert any(adjustment["ScalingAdjustment"] == 1 for adjustment in step["StepAdjustments"])
    # AND the step policy is driven by an alarm on HasBacklogWithoutCapacity (scale out from zero)
    async_template.has_resource_properties("AWS::CloudWatch::Alarm", {
        "MetricName": "HasBacklogWithoutCapacity", "ComparisonOperator": "GreaterThanOrEqualToThreshold",
        "Threshold": 0.5, "AlarmActions": [{"Ref": Match.string_like_regexp("ScaleOutFromZero")}]})


def test_async_alarms_on_queue_age_and_failures(async_template):
    for metric in ("ApproximateAgeOfOldestRequest", "InvocationFailures"):
        async_template.has_resource_properties("AWS::CloudWatch::Alarm", {
            "MetricName": metric, "Dimensions": [{"Name": "EndpointName", "Value": "probe"}],
            "AlarmActions": [{"Ref": Match.string_like_regexp("AlertsTopic")}]})


def test_async_role_reads_inputs_and_writes_results_only_under_its_prefixes(async_template):
    rendered = json.dumps(async_template.find_resources("AWS::IAM::Policy"))
    for prefix in ("async/input/*", "async/output/*", "async/failures/*"):
        assert prefix in rendered


def test_shadow_variant_sees_a_sampled_copy_of_production(shadow_template):
    config = _only(shadow_template, "AWS::SageMaker::EndpointConfig")
    (production,) = config["ProductionVariants"]
    (shadow,) = config["ShadowProductionVariants"]
    # GIVEN 25 % sampling  THEN the shadow's weight is a quarter of production's
    assert shadow["VariantName"] == "shadow"
    assert shadow["InitialVariantWeight"] == pytest.approx(production["InitialVariantWeight"] * 0.25)
    shadow_template.resource_count_is("AWS::SageMaker::Model", 2)
    body = json.dumps(_only(shadow_template, "AWS::CloudWatch::Dashboard")["DashboardBody"])
    # AND the dashboard graphs the shadow's own metrics (its VariantName dimension)
    assert '"VariantName\\",\\"shadow' in body


def test_shadow_needs_one_production_variant_and_refuses_async():
    def build(stack, key, package, candidate):
        return RealtimeEndpoint(
            stack, "Endpoint", endpoint_name="probe",
            variants=[ProductionVariant(name="v1", package=package), ProductionVariant(name="v2", package=candidate)],
            shadow=ShadowVariant(variant=ProductionVariant(name="v2", package=candidate), sampling_percent=0))
    with pytest.raises(ValueError) as error:
        _stack(build, nag=False)
    message = str(error.value)
    assert "exactly one production variant" in message and "sampling_percent must be 1..100" in message
    assert "already a production variant" in message


def test_every_mode_is_cfn_lint_clean(serverless_template, async_template, shadow_template):
    from cfnlint.api import lint

    errors = [f"{name}: {match}" for name, template in (("serverless", serverless_template),
                                                        ("async", async_template), ("shadow", shadow_template))
              for match in lint(json.dumps(template.to_json()), regions=["us-east-1"])
              if match.rule.id.startswith("E")]
    assert errors == []
