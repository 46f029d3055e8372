"""Custom-resource handlers that run Model Monitor's baselining job (CloudFormation has no baseline resource).

The CDK Provider framework calls :func:`on_event` once per Create/Update/Delete and then
:func:`is_complete` every poll interval until it returns ``IsComplete`` or raises. A processing job
takes minutes (instance start-up dominates), longer than one Lambda invocation may wait, hence the
split: ``on_event`` starts the job, ``is_complete`` watches it.

Resource properties (CloudFormation passes every value as a string):
  JobNamePrefix, RoleArn, ImageUri, DatasetUri (s3:// of the baseline CSV), DatasetHash, OutputUri
  (s3:// prefix receiving statistics.json and constraints.json), KmsKeyArn, InstanceType,
  InstanceCount, VolumeSizeInGB, MaxRuntimeInSeconds, DatasetFormat (JSON text).

The physical id is the output prefix, which never changes: an Update (new baseline data) rewrites the
same two files in place, so the job definition that points at them needs no replacement, and
CloudFormation never sends a Delete for the old id. Delete leaves the files (the bucket is retained).
"""
from __future__ import annotations

import json
import re
import time
from typing import Any, Callable

import boto3

#: Container paths of the analyzer's contract (SageMaker Python SDK, model_monitoring.py constants).
PROCESSING_BASE = "/opt/ml/processing"
DATASET_LOCAL_PATH = f"{PROCESSING_BASE}/input/baseline_dataset_input"
OUTPUT_LOCAL_PATH = f"{PROCESSING_BASE}/output"
STATISTICS_FILE = "statistics.json"
CONSTRAINTS_FILE = "constraints.json"
TERMINAL_FAILURES = {"Failed", "Stopped"}
MAX_JOB_NAME = 63
REQUIRED = ("JobNamePrefix", "RoleArn", "ImageUri", "DatasetUri", "OutputUri", "KmsKeyArn", "InstanceType",
            "InstanceCount", "VolumeSizeInGB", "MaxRuntimeInSeconds", "DatasetFormat")

_client: Any = None


class BaselineJobFailed(RuntimeError):
    """The baselining job ended without writing a baseline; CloudFormation shows this message."""


def sagemaker_client() -> Any:
    global _client
    if _client is None:
        _client = boto3.client("sagemaker")
    return _client


def job_name(prefix: str, request_id: str, now: Callable[[], float] = time.time) -> str:
    """Unique per request: ``<prefix>-<yyyymmddHHMMSS>-<request id head>``, at most 63 characters."""
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now()))
    suffix = re.sub(r"[^A-Za-z0-9]", "", request_id)[:8] or "0"
    head = re.sub(r"[^A-Za-z0-9-]", "-", prefix).strip("-")[: MAX_JOB_NAME - len(stamp) - len(suffix) - 2]
    return f"{head.rstrip('-')}-{stamp}-{suffix}"


def processing_job_request(name: str, props: dict[str, str]) -> dict[str, Any]:
    """The CreateProcessingJob request: the analyzer suggesting a baseline from one CSV with a header."""
    missing = [key for key in REQUIRED if not props.get(key)]
    if missing:
        raise ValueError(f"missing resource properties: {', '.join(missing)}")
    json.loads(props["DatasetFormat"])  # fail here, not inside the container, on malformed JSON
    output_uri = props["OutputUri"].rstrip("/")
    return {
        "ProcessingJobName": name,
        "RoleArn": props["RoleArn"],
        "AppSpecification": {"ImageUri": props["ImageUri"]},
        # The analyzer reads its instructions from the environment (SDK: DefaultModelMonitor.suggest_baseline).
        "Environment": {
            "dataset_format": props["DatasetFormat"],
            "dataset_source": DATASET_LOCAL_PATH,
            "output_path": OUTPUT_LOCAL_PATH,
            "publish_cloudwatch_metrics": "Disabled",
        },
        "ProcessingInputs": [{
            "InputName": "baseline_dataset_input",
            "S3Input": {"S3Uri": props["DatasetUri"], "LocalPath": DATASET_LOCAL_PATH, "S3DataType": "S3Prefix",
                        "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"},
        }],
        "ProcessingOutputConfig": {
            "Outputs": [{"OutputName": "monitoring_output",
                         "S3Output": {"S3Uri": output_uri, "LocalPath": OUTPUT_LOCAL_PATH, "S3UploadMode": "EndOfJob"}}],
            "KmsKeyId": props["KmsKeyArn"],
        },
        "ProcessingResources": {"ClusterConfig": {
            "InstanceCount": int(props["InstanceCount"]), "InstanceType": props["InstanceType"],
            "VolumeSizeInGB": int(props["VolumeSizeInGB"]), "VolumeKmsKeyId": props["KmsKeyArn"]}},
        "StoppingCondition": {"MaxRuntimeInSeconds": int(props["MaxRuntimeInSeconds"])},
        "NetworkConfig": {"EnableNetworkIsolation": True, "EnableInterContainerTrafficEncryption": True},
    }


def baseline_uris(output_uri: str) -> dict[str, str]:
    base = output_uri.rstrip("/")
    return {"StatisticsUri": f"{base}/{STATISTICS_FILE}", "ConstraintsUri": f"{base}/{CONSTRAINTS_FILE}"}


def on_event(event: dict[str, Any], context: Any = None, *, client: Any = None) -> dict[str, Any]:
    """Create/Update: start a baselining job. Delete: nothing to undo (the files stay in the retained bucket)."""
    request = event["RequestType"]
    props = event.get("ResourceProperties", {})
    if request == "Delete":
        print(json.dumps({"request": request, "physical_id": event.get("PhysicalResourceId")}))
        return {"PhysicalResourceId": event["PhysicalResourceId"]}
    name = job_name(props.get("JobNamePrefix", "baseline"), event.get("RequestId", ""))
    (client or sagemaker_client()).create_processing_job(**processing_job_request(name, props))
    print(json.dumps({"request": request, "processing_job": name, "dataset": props.get("DatasetUri"),
                      "dataset_hash": props.get("DatasetHash")}))
    return {"PhysicalResourceId": props["OutputUri"].rstrip("/"),
            "Data": {"ProcessingJobName": name, **baseline_uris(props["OutputUri"])}}


def is_complete(event: dict[str, Any], context: Any = None, *, client: Any = None) -> dict[str, Any]:
    """Poll the job started by :func:`on_event`; raise when it fails so the deploy fails with the reason."""
    if event["RequestType"] == "Delete":
        return {"IsComplete": True}
    data = event.get("Data") or {}
    name = data.get("ProcessingJobName")
    if not name:
        raise BaselineJobFailed("on_event returned no ProcessingJobName; nothing to wait for")
    described = (client or sagemaker_client()).describe_processing_job(ProcessingJobName=name)
    status = described["ProcessingJobStatus"]
    print(json.dumps({"processing_job": name, "status": status}))
    if status == "Completed":
        return {"IsComplete": True, "Data": data}
    if status in TERMINAL_FAILURES:
        reason = described.get("FailureReason") or described.get("ExitMessage") or "no reason given"
        raise BaselineJobFailed(f"baselining job {name} ended {status}: {reason}")
    return {"IsComplete": False}
