"""ModelMonitor as a construct: image per region, options, validation, the baseline dataset it ships."""
from __future__ import annotations

import csv
import io
import json
import shutil

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk.assertions import Template

from ml_constructs.common.image_registry import (
    MODEL_MONITOR_REGISTRY_ACCOUNTS, SKLEARN_REGISTRY_ACCOUNTS, model_monitor_image_uri)
from ml_constructs.common.model_metadata import ModelArtifactsError, ModelMetadata
from ml_constructs.common.naming import nag_resource_name
from ml_constructs.monitoring.model_monitor import DataQuality, ModelQuality, MonitorResources, bounded_name, render_preprocessor
from ml_constructs.monitoring.model_monitor_baseline.construct import baseline_dataset
from tests.conftest import ARTIFACTS_DIR
from tests.unit.monitoring.conftest import monitor_stack


def test_registry_table_holds_the_sdk_facts():
    # GIVEN the table copied from the SDK's model-monitor.json
    # THEN spot checks match it, and it is a different set of accounts than the scikit-learn images'
    assert MODEL_MONITOR_REGISTRY_ACCOUNTS["us-east-1"] == "156813124566"
    assert MODEL_MONITOR_REGISTRY_ACCOUNTS["eu-west-1"] == "468650794304"
    assert MODEL_MONITOR_REGISTRY_ACCOUNTS["ap-southeast-2"] == "563025443158"
    assert len(MODEL_MONITOR_REGISTRY_ACCOUNTS) == 30
    shared = {region for region, account in MODEL_MONITOR_REGISTRY_ACCOUNTS.items()
              if SKLEARN_REGISTRY_ACCOUNTS.get(region) == account}
    assert shared == set()


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_a_stack_with_a_region_uses_that_regions_account(region):
    # GIVEN a stack deployed to a known region
    stack, _ = monitor_stack(region=region)
    template = Template.from_stack(stack).to_json()
    definition = next(r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::DataQualityJobDefinition")
    image = definition["Properties"]["DataQualityAppSpecification"]["ImageUri"]
    # THEN the account is written in at synth, and no mapping is needed
    assert MODEL_MONITOR_REGISTRY_ACCOUNTS[region] + ".dkr.ecr." in json.dumps(image)
    assert "ModelMonitorImageRegistry" not in template.get("Mappings", {})


def test_environment_agnostic_stack_maps_every_region(realtime_template):
    # GIVEN the default (environment-agnostic) app
    mapping = realtime_template.to_json()["Mappings"]["ModelMonitorImageRegistry"]
    # THEN the deploy-time mapping carries every region of the table
    assert {region: row["account"] for region, row in mapping.items()} == MODEL_MONITOR_REGISTRY_ACCOUNTS


def test_unsupported_region_fails_at_synth_naming_it():
    with pytest.raises(ValueError, match=r"Model Monitor analyzer images are not published in region 'xx-nowhere-1'"):
        monitor_stack(region="xx-nowhere-1")


@pytest.mark.parametrize("region", sorted(SKLEARN_REGISTRY_ACCOUNTS))
def test_every_region_serving_the_model_has_a_monitor_image_or_a_clear_refusal(region):
    # GIVEN a region where the endpoint's scikit-learn image exists, pinned in the stack's environment
    if region in MODEL_MONITOR_REGISTRY_ACCOUNTS:
        # THEN the analyzer image resolves to that region's Model Monitor account (a literal, at synth)
        stack = cdk.Stack(cdk.App(), "Pinned", env=cdk.Environment(region=region))
        assert model_monitor_image_uri(stack).startswith(f"{MODEL_MONITOR_REGISTRY_ACCOUNTS[region]}.dkr.ecr.{region}.")
        return
    # OR, where the SDK lists no analyzer image (ap-south-2, ap-southeast-4, GovCloud), synth stops and says
    # which region, that the endpoint can go there without Model Monitor, and where Model Monitor runs
    with pytest.raises(ValueError) as raised:
        monitor_stack(region=region)
    message = str(raised.value)
    assert f"not published in region {region!r}" in message
    assert "without Model Monitor" in message and "us-east-1" in message


def test_a_pinned_unsupported_region_fails_the_real_time_stack_before_anything_is_built():
    # GIVEN the whole app pinned to a region with a scikit-learn image but no Model Monitor image
    from tests.conftest import build_app

    region = "ap-south-2"
    assert region in SKLEARN_REGISTRY_ACCOUNTS and region not in MODEL_MONITOR_REGISTRY_ACCOUNTS
    # THEN synth stops with the region named (the README says: set deploy.realtime.monitor.enabled=false)
    with pytest.raises(ValueError, match="not published in region 'ap-south-2'"):
        build_app(overrides={"deploy.target.region": region, "deploy.target.account": "123456789012",
                             "deploy.monitoring.engine": "model-monitor",
                             "deploy.batch.enabled": False, "deploy.serverless.enabled": False,
                             "deploy.edge.enabled": False})


def test_monitor_without_data_capture_is_refused():
    with pytest.raises(ValueError, match="has no data capture"):
        monitor_stack(data_capture=False)


def test_invalid_options_are_reported_together():
    with pytest.raises(ValueError) as raised:
        monitor_stack(resources=MonitorResources(max_runtime=cdk.Duration.hours(2), instance_count=0),
                      data_quality=DataQuality(drift_threshold=1.5))
    message = str(raised.value)
    assert "max_runtime must be 60..3600" in message and "instance_count" in message and "drift_threshold" in message


def test_without_model_quality_only_data_quality_is_scheduled():
    # GIVEN model quality switched off and a six-hourly data-quality cadence
    stack, monitor = monitor_stack(model_quality=None, data_quality=DataQuality(schedule="cron(0 0/6 ? * * *)"))
    template = Template.from_stack(stack)
    # THEN one schedule, of type DataQuality, at that cadence; no model-quality definition or AUC alarm
    template.resource_count_is("AWS::SageMaker::MonitoringSchedule", 1)
    template.resource_count_is("AWS::SageMaker::ModelQualityJobDefinition", 0)
    template.has_resource_properties("AWS::SageMaker::MonitoringSchedule", {"MonitoringScheduleConfig": {
        "MonitoringType": "DataQuality", "ScheduleConfig": {"ScheduleExpression": "cron(0 0/6 ? * * *)"}}})
    assert monitor.alarms.auc_alarm is None
    # AND failed runs of the one schedule still reach the topic
    rule = next(iter(template.find_resources("AWS::Events::Rule").values()))
    assert len(rule["Properties"]["EventPattern"]["detail"]["MonitoringScheduleArn"]) == 1


def test_changing_a_definition_renames_it_and_nothing_else_does():
    # GIVEN two stacks that differ only in the data-quality schedule, and one with another instance type
    _, hourly = monitor_stack(region="us-east-1")
    _, six_hourly = monitor_stack(region="us-east-1", data_quality=DataQuality(schedule="cron(0 0/6 ? * * *)"))
    _, bigger = monitor_stack(region="us-east-1", resources=MonitorResources(instance_type="ml.m5.2xlarge"))
    name = lambda monitor: monitor.data_quality_job_definition.job_definition_name  # noqa: E731
    # THEN the schedule is not part of the definition (same name); the instance type is (new name)
    assert name(hourly) == name(six_hourly)
    assert name(hourly) != name(bigger)


def test_model_quality_window_follows_the_label_delay():
    stack, _ = monitor_stack(model_quality=ModelQuality(label_delay=cdk.Duration.hours(72), probability_threshold=0.3))
    Template.from_stack(stack).has_resource_properties("AWS::SageMaker::ModelQualityJobDefinition", {
        "ModelQualityJobInput": {"EndpointInput": {"StartTimeOffset": "-PT96H", "EndTimeOffset": "-PT72H",
                                                   "ProbabilityThresholdAttribute": 0.3}}})


def test_bounded_names_fit_sagemakers_limit():
    name = bounded_name("e" * 63, "data-quality")
    assert len(name) == 63 and name.endswith("-data-quality")
    assert bounded_name("short", "baseline") == "short-baseline"


# -- the baseline dataset ----------------------------------------------------------------------------------------
def copy_artifacts(tmp_path, transform=None):
    folder = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS_DIR, folder, ignore=shutil.ignore_patterns("*.joblib", "*.onnx", "samples"))
    if transform:
        path = folder / "baseline.csv"
        path.write_text(transform(path.read_text()))
    return ModelMetadata.load(folder)


def test_baseline_keeps_header_and_features_only_in_name_order():
    # GIVEN the training artifacts' baseline.csv and metadata
    metadata = ModelMetadata.load(ARTIFACTS_DIR)
    rows = list(csv.reader(io.StringIO(baseline_dataset(metadata).decode())))
    original = list(csv.reader((ARTIFACTS_DIR / "baseline.csv").open()))
    # THEN the header names exactly the features, sorted, and every data row follows it
    assert rows[0] == sorted(metadata.feature_names)
    assert len(rows) == len(original)
    first = dict(zip(original[0], original[1]))
    assert rows[1] == [first[name] for name in rows[0]]


def test_baseline_drops_a_label_column(tmp_path):
    # GIVEN a baseline.csv that (wrongly) carries the label column
    def add_label(text):
        lines = text.splitlines()
        return "\n".join([lines[0] + ",is_fraud"] + [line + ",0" for line in lines[1:]]) + "\n"

    metadata = copy_artifacts(tmp_path, add_label)
    # THEN the label never becomes a monitored feature
    header = baseline_dataset(metadata).decode().splitlines()[0].split(",")
    assert "is_fraud" not in header and len(header) == metadata.n_features


def test_baseline_is_byte_identical_across_builds():
    metadata = ModelMetadata.load(ARTIFACTS_DIR)
    assert baseline_dataset(metadata) == baseline_dataset(metadata)


@pytest.mark.parametrize("transform, message", [
    (lambda text: text.replace("merchant_risk", "merchant_score", 1), "lacks feature column"),
    (lambda text: "", "is empty"),
    (lambda text: text.splitlines()[0] + "\n", "no rows"),
    (lambda text: text + "1,2,3\n", "3 values, header has 12"),
])
def test_broken_baseline_files_fail_synth_clearly(tmp_path, transform, message):
    metadata = copy_artifacts(tmp_path, transform)
    with pytest.raises(ModelArtifactsError, match=message):
        baseline_dataset(metadata)


def test_preprocessor_is_rendered_with_the_feature_names():
    rendered = render_preprocessor(("b", "a")).decode()
    assert "FEATURE_NAMES: tuple = ('b', 'a')" in rendered
    assert "# rendered at synth" not in rendered


def test_baselining_job_stops_before_the_deploy_gives_up():
    # GIVEN a 30-minute baseline timeout
    stack, _ = monitor_stack(baseline_timeout=cdk.Duration.minutes(30))
    template = Template.from_stack(stack)
    # THEN the job's own limit is 10 minutes shorter, so a timed-out deploy leaves no job running
    template.has_resource_properties("Custom::ModelMonitorBaseline", {"MaxRuntimeInSeconds": "1200"})


def test_baseline_timeout_beyond_cloudformations_hour_is_refused():
    with pytest.raises(ValueError, match="baseline_timeout must be 15..60 minutes"):
        monitor_stack(baseline_timeout=cdk.Duration.minutes(90))


# -- cdk-nag acknowledgements ------------------------------------------------------------------------------------
def _nag_names(resource) -> list[str]:
    """Every resource of a statement, written as cdk-nag writes it in an IAM5 finding id."""
    resources = resource if isinstance(resource, list) else [resource]
    names = []
    for item in resources:
        try:
            names.append(nag_resource_name(item))
        except TypeError:  # e.g. the asset bucket's Fn::Sub: cdk-nag's rendering differs, but it holds no "*"
            names.append(json.dumps(item))
    return names


def test_every_wildcard_acknowledgement_matches_a_wildcard_its_policy_grants():
    # GIVEN every IAM policy the monitor creates (its own roles, the failed-runs rule's and the Provider framework's)
    stack, monitor = monitor_stack()
    policies = [node for node in monitor.node.find_all() if isinstance(node, iam.CfnPolicy)]
    assert len(policies) == 6
    for policy in policies:
        document = stack.resolve(policy.policy_document)
        wildcards = {name for statement in document["Statement"] for name in _nag_names(statement["Resource"])
                     if "*" in name}
        acknowledged = {key.split("::", 1)[1][len("AwsSolutions-IAM5[Resource::"):-1]
                        for entry in policy.node.metadata if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY
                        for key in entry.data if "AwsSolutions-IAM5[Resource::" in key}
        # THEN each acknowledgement names a wildcard resource the policy really grants (none is dead)...
        assert acknowledged <= wildcards, (policy.node.path, acknowledged - wildcards)
        # ...and each wildcard it grants has its reason
        assert wildcards <= acknowledged, (policy.node.path, wildcards - acknowledged)
