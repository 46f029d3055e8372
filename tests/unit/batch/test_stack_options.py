"""Non-default options: existing buckets, no ID column, NVMe instances, schedule switched off."""
from __future__ import annotations

import pytest

from tests.unit.batch.conftest import definition_of, placeholder_render, resources

INPUT_KEY = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"


@pytest.fixture(scope="module")
def options_json(build_batch_only) -> dict:
    return build_batch_only(**{
        "storage.input_bucket_name": "acme-transactions", "storage.input_kms_key_arn": INPUT_KEY,
        "storage.output_bucket_name": "acme-scores", "storage.default_input_prefix": "daily/",
        "transform.id_column": "null", "transform.instance_type": "ml.m5d.xlarge",
        "schedule.enabled": False, "schedule.time_zone": "Europe/Berlin", "job_name_prefix": "fd"})


def test_existing_buckets_are_used_not_created(options_json):
    assert resources(options_json, "AWS::S3::Bucket") == {}
    definition = definition_of(options_json)
    assert definition["States"]["ReadRequest"]["Parameters"]["defaults"]["input_uri"] == "s3://acme-transactions/daily/"
    assert "s3://acme-scores/predictions/" in definition["States"]["PlanRun"]["Parameters"]["output_uri.$"]


def test_existing_input_bucket_is_readable_with_its_key(options_json):
    statements = [statement for policy in resources(options_json, "AWS::IAM::Policy").values()
                  for statement in policy["Properties"]["PolicyDocument"]["Statement"]]
    rendered = [(statement["Action"], placeholder_render(resource)) for statement in statements
                for resource in (statement["Resource"] if isinstance(statement["Resource"], list)
                                 else [statement["Resource"]])]
    assert ("kms:Decrypt", INPUT_KEY) in rendered
    assert any(resource.endswith(":s3:::acme-transactions/*") for action, resource in rendered
               if "s3:GetObject" in action)
    assert any(resource.endswith(":s3:::acme-scores/predictions/*") for action, resource in rendered
               if "s3:PutObject" in action)


def test_without_id_column_rows_are_joined_whole(options_json):
    parameters = definition_of(options_json)["States"]["ScoreRows"]["Parameters"]
    assert parameters["DataProcessing"] == {"JoinSource": "Input"}


def test_nvme_instances_get_no_volume_key(options_json):
    # SageMaker refuses VolumeKmsKeyId for instance types with local NVMe storage (hardware-encrypted).
    resources_ = definition_of(options_json)["States"]["ScoreRows"]["Parameters"]["TransformResources"]
    assert resources_ == {"InstanceType": "ml.m5d.xlarge", "InstanceCount": 4}


def test_job_name_prefix_is_configurable(options_json):
    assert definition_of(options_json)["States"]["ScoreRows"]["Parameters"]["TransformJobName.$"].startswith(
        "States.Format('fd-{}-{}'")


def test_switched_off_schedule_stays_but_disabled_and_does_not_alarm(options_json):
    (schedule,) = resources(options_json, "AWS::Scheduler::Schedule").values()
    assert schedule["Properties"]["State"] == "DISABLED"
    assert schedule["Properties"]["ScheduleExpressionTimezone"] == "Europe/Berlin"
    alarms = resources(options_json, "AWS::CloudWatch::Alarm").values()
    metrics = {alarm["Properties"]["MetricName"] for alarm in alarms
               if not str(alarm["Properties"].get("Namespace", "")).startswith("MLDrift/")}
    assert metrics == {"ExecutionsFailed", "ExecutionsTimedOut"}
    # AND the drift job, which then runs only when someone starts the workflow, has no stalled alarm either
    drift_metrics = {alarm["Properties"]["MetricName"] for alarm in alarms
                     if str(alarm["Properties"].get("Namespace", "")).startswith("MLDrift/")}
    assert "PSI" in drift_metrics and "WindowsAnalysed" not in drift_metrics
