"""The synthesized rollout: weighted variants, guardrails with rollback alarms, what survives an update."""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from tests.conftest import build_app
from tests.context import WITH_CANDIDATE, only_pattern

ENDPOINT = "fraud-detector-realtime"


def realtime_only(**overrides) -> Template:
    """The real-time stack alone (other patterns and Model Monitor off, to keep the synth short)."""
    context = {**only_pattern("realtime"), "deploy.realtime.monitor.enabled": False}
    if "variants" not in overrides:  # canary tests: the demo's second model on variant v2
        context.update(WITH_CANDIDATE)
    context.update({f"deploy.realtime.{key}": value for key, value in overrides.items()})
    _, stacks = build_app(overrides=context)
    return Template.from_stack(stacks["realtime"])


def only(template: Template, type_name: str) -> dict:
    found = template.find_resources(type_name)
    assert len(found) == 1, list(found)
    return next(iter(found.values()))


def logical_ids(template: Template, type_name: str, **properties) -> list[str]:
    return sorted(template.find_resources(type_name, {"Properties": properties} if properties else None))


# -- the demo canary: -c deploy.model.candidate_dir=artifacts/fraud-detector-v2 -----------------------------------
@pytest.fixture(scope="module")
def canary_template() -> Template:
    return realtime_only()


def test_two_variants_serve_two_model_versions_at_90_and_10_percent(canary_template):
    config = only(canary_template, "AWS::SageMaker::EndpointConfig")["Properties"]
    variants = {v["VariantName"]: v for v in config["ProductionVariants"]}
    assert {name: (v["InitialVariantWeight"], v["InitialInstanceCount"], v["InstanceType"])
            for name, v in variants.items()} == {"v1": (0.9, 2, "ml.m5.large"), "v2": (0.1, 2, "ml.m5.large")}
    # AND each variant runs its own model, packaged from its own artifacts (v1 and v2 versions differ)
    models = canary_template.find_resources("AWS::SageMaker::Model")
    model_of = {name: v["ModelName"]["Fn::GetAtt"][0] for name, v in variants.items()}
    versions = {name: models[model_of[name]]["Properties"]["PrimaryContainer"]["Environment"]["MODEL_VERSION"]
                for name in variants}
    assert versions["v1"] != versions["v2"]
    urls = {json.dumps(models[model_of[name]]["Properties"]["PrimaryContainer"]["ModelDataUrl"]) for name in variants}
    assert len(urls) == 2


def test_every_update_is_a_blue_green_canary_that_rolls_back_on_the_patterns_alarms(canary_template):
    endpoint = only(canary_template, "AWS::SageMaker::Endpoint")["Properties"]
    deployment = endpoint["DeploymentConfig"]
    assert deployment["BlueGreenUpdatePolicy"] == {
        "TrafficRoutingConfiguration": {"Type": "CANARY", "CanarySize": {"Type": "INSTANCE_COUNT", "Value": 1},
                                        "WaitIntervalInSeconds": 600},
        "TerminationWaitInSeconds": 300, "MaximumExecutionTimeoutInSeconds": 3600}
    # THEN the rollback alarms are exactly the p99 latency and 5XX alarms of both variants
    rollback = sorted(alarm["AlarmName"]["Ref"] for alarm in deployment["AutoRollbackConfiguration"]["Alarms"])
    alarms = canary_template.find_resources("AWS::CloudWatch::Alarm")
    assert sorted((alarms[ref]["Properties"]["MetricName"],
                   {d["Name"]: d["Value"] for d in alarms[ref]["Properties"]["Dimensions"]}["VariantName"])
                  for ref in rollback) == [("Invocation5XXErrors", "v1"), ("Invocation5XXErrors", "v2"),
                                           ("ModelLatency", "v1"), ("ModelLatency", "v2")]


def test_sagemaker_can_read_the_rollback_alarms_and_nothing_else(canary_template):
    endpoint = only(canary_template, "AWS::SageMaker::Endpoint")["Properties"]
    rollback = sorted(alarm["AlarmName"]["Ref"] for alarm in endpoint["DeploymentConfig"]["AutoRollbackConfiguration"]
                      ["Alarms"])
    statements = [statement for policy in canary_template.find_resources("AWS::IAM::Policy").values()
                  for statement in policy["Properties"]["PolicyDocument"]["Statement"]
                  if "cloudwatch:DescribeAlarms" in json.dumps(statement["Action"])]
    assert len(statements) == 1
    assert sorted(resource["Fn::GetAtt"][0] for resource in statements[0]["Resource"]) == rollback


def test_weights_and_counts_set_at_run_time_survive_updates_by_default(canary_template):
    endpoint = only(canary_template, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["RetainAllVariantProperties"] is True
    assert "ExcludeRetainedVariantProperties" not in endpoint


def test_every_variant_autoscales_from_two_instances(canary_template):
    for variant in ("v1", "v2"):
        canary_template.has_resource_properties("AWS::ApplicationAutoScaling::ScalableTarget", {
            "ResourceId": f"endpoint/{ENDPOINT}/variant/{variant}", "MinCapacity": 2, "MaxCapacity": 10})


def test_the_endpoint_update_waits_for_the_update_guard(canary_template):
    guard_ids = logical_ids(canary_template, "Custom::EndpointUpdateGuard")
    assert len(guard_ids) == 1
    canary_template.has_resource("AWS::SageMaker::Endpoint", {"DependsOn": Match.array_with(guard_ids)})
    # AND the guard sees each variant's instance type and whether it is autoscaled, and the guardrails switch
    guard = canary_template.find_resources("Custom::EndpointUpdateGuard")[guard_ids[0]]["Properties"]
    assert guard["Variants"] == [{"Name": "v1", "InstanceType": "ml.m5.large", "Autoscaled": "true"},
                                 {"Name": "v2", "InstanceType": "ml.m5.large", "Autoscaled": "true"}]
    assert guard["Guardrails"] == "true"
    assert "-c deploy.realtime.autoscaling.enabled=false" in guard["InstanceTypeChangeRemedy"]
    assert "-c deploy.realtime.guardrails.enabled=false" in guard["VariantSetChangeRemedy"]


def test_the_guard_function_can_only_read_its_own_stack(canary_template):
    # GIVEN the guard's function (other stacks' constructs may add functions of their own)
    functions = {name: resource for name, resource in canary_template.find_resources("AWS::Lambda::Function").items()
                 if name.startswith("UpdateGuard")}
    assert len(functions) == 1
    function = next(iter(functions.values()))
    role_ref = function["Properties"]["Role"]["Fn::GetAtt"][0]
    assert function["Properties"]["Handler"] == "index.handler"
    # THEN its only permissions are its own log group and DescribeStacks on this stack
    policies = [p["Properties"]["PolicyDocument"]["Statement"]
                for p in canary_template.find_resources("AWS::IAM::Policy").values()
                if {"Ref": role_ref} in p["Properties"]["Roles"]]
    assert len(policies) == 1
    actions = {json.dumps(s["Action"]): s["Resource"] for s in policies[0]}
    assert actions['"cloudformation:DescribeStacks"'] == {"Ref": "AWS::StackId"}
    assert set(actions) == {'"cloudformation:DescribeStacks"', '["logs:CreateLogStream", "logs:PutLogEvents"]'}


# -- other configurations ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def config_owned_weights_linear() -> Template:
    return realtime_only(weights_owner="config", **{
        "guardrails.strategy": "LINEAR", "guardrails.size_unit": "CAPACITY_PERCENT", "guardrails.size": 50,
        "guardrails.wait_interval_s": 300})


def test_config_owned_weights_are_excluded_from_retention(config_owned_weights_linear):
    # GIVEN weights_owner=config: a deploy that changes the endpoint config applies the configured weights
    endpoint = only(config_owned_weights_linear, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["RetainAllVariantProperties"] is True
    assert endpoint["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredWeight"}]


def test_linear_guardrail_steps_in_percent(config_owned_weights_linear):
    endpoint = only(config_owned_weights_linear, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["DeploymentConfig"]["BlueGreenUpdatePolicy"]["TrafficRoutingConfiguration"] == {
        "Type": "LINEAR", "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50}, "WaitIntervalInSeconds": 300}


def test_a_single_variant_can_roll_in_batches_with_config_owned_counts():
    template = realtime_only(
        variants=[{"name": "v1", "initial_instance_count": 4}], instance_counts_owner="config",
        **{"guardrails.strategy": "ROLLING", "guardrails.rollback_batch_size": 2, "autoscaling.min_capacity": 4,
           "autoscaling.max_capacity": 4})
    endpoint = only(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert endpoint["ExcludeRetainedVariantProperties"] == [{"VariantPropertyType": "DesiredInstanceCount"}]
    assert endpoint["DeploymentConfig"]["RollingUpdatePolicy"] == {
        "MaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 1}, "WaitIntervalInSeconds": 600,
        "MaximumExecutionTimeoutInSeconds": 3600,
        "RollbackMaximumBatchSize": {"Type": "INSTANCE_COUNT", "Value": 2}}
    assert "BlueGreenUpdatePolicy" not in endpoint["DeploymentConfig"]


def test_without_guardrails_and_with_config_owned_properties_updates_reset_everything():
    template = realtime_only(weights_owner="config", instance_counts_owner="config",
                             **{"guardrails.enabled": False, "autoscaling.enabled": False})
    endpoint = only(template, "AWS::SageMaker::Endpoint")["Properties"]
    assert "DeploymentConfig" not in endpoint
    assert endpoint["RetainAllVariantProperties"] is False
    assert "ExcludeRetainedVariantProperties" not in endpoint
    guard = only(template, "Custom::EndpointUpdateGuard")["Properties"]
    assert guard["Guardrails"] == "false"
    assert {variant["Autoscaled"] for variant in guard["Variants"]} == {"false"}
    # AND no alarm is wired to SageMaker, so the execution role does not read alarms
    assert "cloudwatch:DescribeAlarms" not in json.dumps(template.to_json())


# -- construct-level rules ------------------------------------------------------------------------------------------
def endpoint_stack(guardrails, *, add_alarms: bool, wait_interval_s: int = 600):
    from ml_constructs.realtime.guardrails import DeploymentGuardrails
    from ml_constructs.realtime.alarms import EndpointAlarms
    from ml_constructs.common.model_package import ModelPackage
    from ml_constructs.realtime.endpoint import ProductionVariant, RealtimeEndpoint

    app = cdk.App(context={"aws:cdk:bundling-stacks": []})
    stack = cdk.Stack(app, "Probe")
    package = ModelPackage(stack, "Package", artifacts_dir="artifacts/fraud-detector")
    endpoint = RealtimeEndpoint(
        stack, "Endpoint", endpoint_name="probe", variants=[ProductionVariant(
            name="v1", package=package, initial_instance_count=2)],
        guardrails=guardrails or DeploymentGuardrails(wait_interval_s=wait_interval_s))
    if add_alarms:
        endpoint.add_rollback_alarms(*EndpointAlarms(stack, "Alarms", endpoint=endpoint).all_alarms)
    return app


def test_a_bake_shorter_than_the_alarms_need_fails_synth():
    # GIVEN a 60 s bake while the 5XX alarm needs one 300 s period
    app = endpoint_stack(None, add_alarms=True, wait_interval_s=120)
    # WHEN synthesized  THEN it fails naming the key, the alarm and the wait it needs
    with pytest.raises(RuntimeError, match=r"guardrails\.wait_interval_s: 120 s is shorter than the 300 s that "
                                           r"rollback alarm Probe/Alarms/Errors5xxV1 needs to fire"):
        app.synth()


def test_auto_rollback_without_alarms_fails_synth():
    app = endpoint_stack(None, add_alarms=False)
    with pytest.raises(RuntimeError, match=r"guardrails\.auto_rollback is on but no rollback alarm was added"):
        app.synth()


def test_the_construct_refuses_an_oversized_canary_on_its_own():
    from ml_constructs.realtime.guardrails import DeploymentGuardrails

    with pytest.raises(ValueError, match=r"guardrails\.size: CANARY size 2 instance\(s\) is more than 50% of variant "
                                         r"v1's smallest fleet \(2 instances\)"):
        endpoint_stack(DeploymentGuardrails(size=2), add_alarms=True)
