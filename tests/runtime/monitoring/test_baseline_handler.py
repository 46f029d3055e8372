"""The baselining custom resource's handlers, run against a stubbed SageMaker API (real request shapes)."""
from __future__ import annotations

import importlib.util
import json
import re
import uuid
from pathlib import Path

import boto3
import pytest
from botocore.stub import ANY, Stubber

HANDLER_PATH = Path(__file__).resolve().parents[3] / "ml_constructs/monitoring/model_monitor_baseline/runtime" / "baseline_job.py"
PROPS = {
    "ServiceToken": "arn:aws:lambda:eu-west-1:123456789012:function:framework-onEvent",
    "JobNamePrefix": "fraud-detector-realtime-baseline",
    "RoleArn": "arn:aws:iam::123456789012:role/MonitorJobRole",
    "ImageUri": "468650794304.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-model-monitor-analyzer",
    "DatasetUri": "s3://cdk-assets-123456789012-eu-west-1/" + "a" * 64 + ".csv",
    "DatasetHash": "a" * 64,
    "OutputUri": "s3://capture-bucket/monitoring/baseline/data-quality",
    "KmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555",
    "InstanceType": "ml.m5.xlarge",
    "InstanceCount": "1",
    "VolumeSizeInGB": "20",
    "MaxRuntimeInSeconds": "3600",
    "DatasetFormat": json.dumps({"csv": {"header": True, "output_columns_position": "START"}}),
}


@pytest.fixture(scope="module")
def handler():
    spec = importlib.util.spec_from_file_location(f"baseline_job_{uuid.uuid4().hex}", HANDLER_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def sagemaker(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("sagemaker", region_name="eu-west-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def event(request_type, **extra):
    return {"RequestType": request_type, "RequestId": "8c7f3a0e-1111-2222-3333-444455556666",
            "ResourceProperties": dict(PROPS), "LogicalResourceId": "MonitorBaseline", **extra}


def test_create_starts_the_analyzer_with_the_sdk_baselining_contract(handler, sagemaker):
    client, stubber = sagemaker
    # GIVEN SageMaker accepting a processing job
    expected = {
        "ProcessingJobName": ANY,
        "RoleArn": PROPS["RoleArn"],
        "AppSpecification": {"ImageUri": PROPS["ImageUri"]},
        "Environment": {"dataset_format": PROPS["DatasetFormat"],
                        "dataset_source": "/opt/ml/processing/input/baseline_dataset_input",
                        "output_path": "/opt/ml/processing/output", "publish_cloudwatch_metrics": "Disabled"},
        "ProcessingInputs": [{"InputName": "baseline_dataset_input", "S3Input": {
            "S3Uri": PROPS["DatasetUri"], "LocalPath": "/opt/ml/processing/input/baseline_dataset_input",
            "S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}],
        "ProcessingOutputConfig": {"Outputs": [{"OutputName": "monitoring_output", "S3Output": {
            "S3Uri": PROPS["OutputUri"], "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}],
            "KmsKeyId": PROPS["KmsKeyArn"]},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                  "VolumeSizeInGB": 20, "VolumeKmsKeyId": PROPS["KmsKeyArn"]}},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
    }
    stubber.add_response("create_processing_job", {"ProcessingJobArn": "arn:aws:sagemaker:eu-west-1:123456789012:"
                                                                       "processing-job/x"}, expected)
    # WHEN the stack is created
    response = handler.on_event(event("Create"), client=client)
    # THEN the job is started, and the response names it and the files the job definition reads
    name = response["Data"]["ProcessingJobName"]
    assert response["PhysicalResourceId"] == PROPS["OutputUri"]
    assert response["Data"]["StatisticsUri"] == PROPS["OutputUri"] + "/statistics.json"
    assert response["Data"]["ConstraintsUri"] == PROPS["OutputUri"] + "/constraints.json"
    assert name.startswith("fraud-detector-realtime-baseline-")
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", name)


def test_update_with_new_data_reruns_the_job_under_the_same_physical_id(handler, sagemaker):
    client, stubber = sagemaker
    stubber.add_response("create_processing_job", {"ProcessingJobArn": "arn:x"}, {
        "ProcessingJobName": ANY, "RoleArn": ANY, "AppSpecification": ANY, "Environment": ANY,
        "ProcessingInputs": ANY, "ProcessingOutputConfig": ANY, "ProcessingResources": ANY,
        "StoppingCondition": ANY, "NetworkConfig": ANY})
    update = event("Update", PhysicalResourceId=PROPS["OutputUri"], OldResourceProperties={**PROPS, "DatasetHash": "b" * 64})
    response = handler.on_event(update, client=client)
    # THEN the physical id is unchanged: CloudFormation sends no Delete, the job definition keeps its files
    assert response["PhysicalResourceId"] == PROPS["OutputUri"]


def test_delete_touches_nothing(handler, sagemaker):
    client, _ = sagemaker  # no stubbed responses: any call would fail
    assert handler.on_event(event("Delete", PhysicalResourceId=PROPS["OutputUri"]), client=client) == {
        "PhysicalResourceId": PROPS["OutputUri"]}
    assert handler.is_complete(event("Delete", PhysicalResourceId=PROPS["OutputUri"]), client=client) == {
        "IsComplete": True}


def describe(status, **extra):
    return {"ProcessingJobName": "job-1", "ProcessingJobArn": "arn:aws:sagemaker:eu-west-1:123456789012:processing-job/job-1",
            "ProcessingJobStatus": status, "CreationTime": "2025-01-01T00:00:00Z",
            "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": "ml.m5.xlarge",
                                                      "VolumeSizeInGB": 20}},
            "AppSpecification": {"ImageUri": PROPS["ImageUri"]}, **extra}


def polled(**data):
    return event("Create", PhysicalResourceId=PROPS["OutputUri"],
                 Data={"ProcessingJobName": "job-1", "StatisticsUri": "s", "ConstraintsUri": "c", **data})


@pytest.mark.parametrize("status", ["InProgress", "Stopping"])
def test_a_running_job_is_polled_again(handler, sagemaker, status):
    client, stubber = sagemaker
    stubber.add_response("describe_processing_job", describe(status), {"ProcessingJobName": "job-1"})
    assert handler.is_complete(polled(), client=client) == {"IsComplete": False}


def test_a_completed_job_completes_the_resource(handler, sagemaker):
    client, stubber = sagemaker
    stubber.add_response("describe_processing_job", describe("Completed"), {"ProcessingJobName": "job-1"})
    result = handler.is_complete(polled(), client=client)
    assert result["IsComplete"] is True and result["Data"]["ProcessingJobName"] == "job-1"


@pytest.mark.parametrize("status, extra, reason", [
    ("Failed", {"FailureReason": "AlgorithmError: no data in dataset"}, "AlgorithmError: no data in dataset"),
    ("Stopped", {}, "no reason given"),
])
def test_a_failed_job_fails_the_deploy_with_its_reason(handler, sagemaker, status, extra, reason):
    client, stubber = sagemaker
    stubber.add_response("describe_processing_job", describe(status, **extra), {"ProcessingJobName": "job-1"})
    with pytest.raises(handler.BaselineJobFailed, match=f"baselining job job-1 ended {status}: {reason}"):
        handler.is_complete(polled(), client=client)


def test_an_api_error_on_create_propagates(handler, sagemaker):
    client, stubber = sagemaker
    stubber.add_client_error("create_processing_job", "ResourceLimitExceeded", "quota for ml.m5.xlarge is 0")
    with pytest.raises(client.exceptions.ResourceLimitExceeded):
        handler.on_event(event("Create"), client=client)


def test_missing_properties_are_named(handler):
    props = {key: value for key, value in PROPS.items() if key not in ("RoleArn", "KmsKeyArn")}
    with pytest.raises(ValueError, match="missing resource properties: RoleArn, KmsKeyArn"):
        handler.processing_job_request("job", props)


def test_job_names_are_unique_per_request_and_within_limits(handler):
    long_prefix = "x" * 80
    first = handler.job_name(long_prefix, "aaaaaaaa-1", now=lambda: 1_700_000_000)
    second = handler.job_name(long_prefix, "bbbbbbbb-2", now=lambda: 1_700_000_000)
    assert first != second
    assert len(first) <= 63 and re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", first)
    assert handler.job_name("p", "r", now=lambda: 0) == "p-19700101000000-r"
