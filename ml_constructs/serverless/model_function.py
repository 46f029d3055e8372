"""A Python 3.12 Lambda function serving an ONNX model that it reads from S3 at cold start, behind alias ``live``.

The model (``model.onnx`` + ``metadata.json``) is one deterministic zip uploaded as an S3 asset; the
function gets its bucket, key and version in environment variables and fails its init if it cannot
load it. The code asset is bundled locally with pip (see :mod:`ml_constructs.common.lambda_bundling`): onnxruntime
and numpy, no scikit-learn, no pickle. Callers and event sources use the alias, so provisioned
concurrency (set on the alias) is never bypassed, and asynchronous failures land in an encrypted queue.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_destinations as destinations
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from ml_constructs.common.archive import deterministic_zip, write_content_addressed
from ml_constructs.common.encrypted_log_group import encrypted_log_group
from ml_constructs.common.lambda_bundling import LAMBDA_PYTHON_VERSION, LambdaPackageSpec, lambda_code
from ml_constructs.common.model_metadata import ModelArtifactsError, ModelMetadata
from ml_constructs.common.naming import nag_resource_name

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_SOURCE_DIR = REPO_ROOT / "lambda_src"
DEFAULT_BUILD_DIR = REPO_ROOT / ".build" / "lambda-models"
HANDLER = "handler.lambda_handler"
ALIAS_NAME = "live"
DEFAULT_MEMORY_MB = 512
DEFAULT_TIMEOUT = cdk.Duration.seconds(30)
DEFAULT_LOG_RETENTION_DAYS = 30
DEFAULT_METRICS_NAMESPACE = "MLDeployPatterns/Serverless"
MODEL_ARCHIVE_MEMBERS = ("model.onnx", "metadata.json")
#: Failed asynchronous events wait here for an operator; SQS keeps messages at most 14 days.
FAILURE_RETENTION = cdk.Duration.days(14)
ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}
DEFAULT_CAPTURE_PREFIX = "capture/serverless/"
DEFAULT_CAPTURE_PERCENT = 5.0
DEFAULT_CAPTURE_MAX_RECORDS = 500
DEFAULT_CAPTURE_MAX_AGE = cdk.Duration.seconds(60)
#: The runtime the bundle is built for: its compiled wheels (onnxruntime, numpy, pydantic-core) are CPython 3.12.
RUNTIME = lambda_.Runtime.PYTHON_3_12


@dataclass(frozen=True, kw_only=True)
class FunctionSizing:
    """Memory, timeout and concurrency of the function (provisioned concurrency applies to the alias)."""

    memory_mb: int = DEFAULT_MEMORY_MB
    timeout: cdk.Duration = DEFAULT_TIMEOUT
    reserved_concurrency: int | None = None
    """Cap on concurrent executions; None leaves the function in the account's unreserved pool."""
    provisioned_concurrency: int = 0
    """Pre-initialized environments on the alias; 0 means none (no idle cost, cold starts happen)."""
    snap_start: bool = False
    """SnapStart on published versions: a new environment resumes from a snapshot taken after init (imports and
    the model load) instead of running init; restores and the cached snapshot are billed. Lambda refuses it
    together with provisioned concurrency."""


@dataclass(frozen=True, kw_only=True)
class AsyncInvocation:
    """Retries of asynchronous invocations (S3 events) before the event goes to the failure queue."""

    retry_attempts: int = 2
    max_event_age: cdk.Duration = cdk.Duration.hours(6)


@dataclass(frozen=True, kw_only=True)
class RequestCapture:
    """Sampled ``POST /predict`` requests and answers written to S3 for the built-in drift job
    (``lambda_src/serverless_inference/capture.py``): JSON Lines ``{"inference_id", "features", "score"}``,
    one object per ``max_records`` records or ``max_age`` of buffering, under ``prefix``."""

    bucket: s3.IBucket
    prefix: str = DEFAULT_CAPTURE_PREFIX
    sample_percent: float = DEFAULT_CAPTURE_PERCENT
    max_records: int = DEFAULT_CAPTURE_MAX_RECORDS
    max_age: cdk.Duration = DEFAULT_CAPTURE_MAX_AGE

    @property
    def key_prefix(self) -> str:
        """The prefix as S3 keys start with it (no leading slash, one trailing slash)."""
        return self.prefix.strip("/") + "/"


def model_archive(metadata: ModelMetadata, *, build_dir: Path = DEFAULT_BUILD_DIR) -> Path:
    """The zip the function loads at cold start: ``model.onnx`` + ``metadata.json``, byte-reproducible."""
    if "onnx" not in metadata.raw:
        raise ModelArtifactsError(f"{metadata.artifacts_dir / 'metadata.json'} has no 'onnx' section: rebuild the "
                                  "model artifacts with `make model` (the serverless pattern serves the ONNX export)")
    members = {name: metadata.require_file(name) for name in MODEL_ARCHIVE_MEMBERS}
    return write_content_addressed(deterministic_zip(members), build_dir=build_dir, file_name="model.zip")


def _validate(*, architecture: str, sizing: FunctionSizing, service_name: str,
              capture: RequestCapture | None) -> None:
    problems = []
    if capture is not None:
        if not 0 < capture.sample_percent <= 100:
            problems.append(f"capture sample_percent {capture.sample_percent:g} must be above 0 and at most 100")
        if not 1 <= capture.max_records <= 100_000:
            problems.append(f"capture max_records {capture.max_records} is outside 1..100000")
        if not 1 <= capture.max_age.to_seconds() <= 3600:
            problems.append("capture max_age must be between 1 second and 1 hour")
        if not capture.prefix.strip("/"):
            problems.append("capture prefix must not be empty (the function may write only under it)")
    if architecture not in ARCHITECTURES:
        problems.append(f"architecture {architecture!r} is not one of {', '.join(ARCHITECTURES)}")
    if not 128 <= sizing.memory_mb <= 10_240:
        problems.append(f"memory_mb {sizing.memory_mb} is outside 128..10240")
    if not 1 <= sizing.timeout.to_seconds() <= 900:
        problems.append("timeout must be between 1 and 900 seconds")
    if sizing.snap_start and sizing.provisioned_concurrency > 0:
        problems.append("snap_start cannot be combined with provisioned_concurrency (Lambda refuses both on one "
                        "version): choose one way to avoid cold starts")
    if sizing.provisioned_concurrency < 0:
        problems.append("provisioned_concurrency must not be negative")
    if sizing.reserved_concurrency is not None and sizing.provisioned_concurrency > sizing.reserved_concurrency:
        problems.append(f"provisioned_concurrency {sizing.provisioned_concurrency} exceeds reserved_concurrency "
                        f"{sizing.reserved_concurrency}")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", service_name):
        problems.append(f"service_name {service_name!r} must be 1-64 letters, digits, '.', '_' or '-'")
    if problems:
        raise ValueError("invalid LambdaModelFunction: " + "; ".join(problems))


class LambdaModelFunction(Construct):
    """An ONNX model behind a Lambda alias. Children are public: ``function``, ``alias``, ``role``,
    ``log_group``, ``model_asset``, ``failure_queue``.

    ``environment`` adds variables (request limits, S3 prefixes) to the ones this construct sets:
    ``MODEL_S3_BUCKET``, ``MODEL_S3_KEY``, ``MODEL_VERSION``, ``POWERTOOLS_SERVICE_NAME``,
    ``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_LOG_LEVEL``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, artifacts_dir: Path | str,
                 encryption_key: kms.IKey, service_name: str, architecture: str = "arm64",
                 sizing: FunctionSizing = FunctionSizing(), async_invocation: AsyncInvocation = AsyncInvocation(),
                 source_dir: Path = DEFAULT_SOURCE_DIR, environment: Mapping[str, str] | None = None,
                 log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS, tracing: bool = True,
                 metrics_namespace: str = DEFAULT_METRICS_NAMESPACE, capture: RequestCapture | None = None) -> None:
        super().__init__(scope, construct_id)
        _validate(architecture=architecture, sizing=sizing, service_name=service_name, capture=capture)
        self.capture = capture
        self.metadata = ModelMetadata.load(artifacts_dir)
        self.service_name = service_name
        self.metrics_namespace = metrics_namespace
        self.timeout = sizing.timeout
        self.model_asset = s3_assets.Asset(self, "ModelArchive", path=str(model_archive(self.metadata)))
        self.package = LambdaPackageSpec(source_dir=Path(source_dir), architecture=architecture,  # type: ignore[arg-type]
                                         python_version=LAMBDA_PYTHON_VERSION)
        self.log_group = encrypted_log_group(self, "Logs", name_prefix=f"/aws/lambda/{service_name}",
                                             encryption_key=encryption_key, retention_days=log_retention_days)
        # An explicit role instead of AWSLambdaBasicExecutionRole: that managed policy may write to any log group.
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"{service_name}: write own logs, read the model object")
        self.function = lambda_.Function(
            self, "Function", runtime=RUNTIME, architecture=ARCHITECTURES[architecture], handler=HANDLER,
            code=lambda_code(self.package), memory_size=sizing.memory_mb, timeout=sizing.timeout, role=self.role,
            log_group=self.log_group, tracing=lambda_.Tracing.ACTIVE if tracing else lambda_.Tracing.DISABLED,
            reserved_concurrent_executions=sizing.reserved_concurrency,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if sizing.snap_start else None,
            description=f"{self.metadata.model_name} {self.metadata.model_version} (ONNX) prediction function",
            environment={
                "MODEL_S3_BUCKET": self.model_asset.s3_bucket_name,
                "MODEL_S3_KEY": self.model_asset.s3_object_key,
                "MODEL_VERSION": self.metadata.model_version,
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_METRICS_NAMESPACE": metrics_namespace,
                "POWERTOOLS_LOG_LEVEL": "INFO",
                **(self._capture_environment(capture) if capture else {}),
                **(environment or {}),
            })
        self.role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                                    resources=[self.log_group.log_group_arn]))
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[self.model_asset.bucket.arn_for_objects(self.model_asset.s3_object_key)]))

        if capture is not None:
            self._grant_capture(capture, encryption_key)

        self.failure_queue = sqs.Queue(self, "AsyncFailures", encryption=sqs.QueueEncryption.KMS,
                                       encryption_master_key=encryption_key, enforce_ssl=True,
                                       retention_period=FAILURE_RETENTION)
        cdk.Validations.of(self.failure_queue).acknowledge(cdk.Acknowledgment(
            id="AwsSolutions-SQS3",
            reason="This queue is itself the dead-letter destination of the function's failed asynchronous "
                   "invocations; a dead-letter queue for it would only move the same messages again."))
        self.alias = lambda_.Alias(
            self, "Live", alias_name=ALIAS_NAME, version=self.function.current_version,
            provisioned_concurrent_executions=sizing.provisioned_concurrency or None,
            on_failure=destinations.SqsDestination(self.failure_queue),
            retry_attempts=async_invocation.retry_attempts, max_event_age=async_invocation.max_event_age)
        cdk.Validations.of(self.function).acknowledge(cdk.Acknowledgment(
            id="AwsSolutions-L1",
            reason=f"The package's compiled wheels (onnxruntime, numpy, pydantic-core) and bytecode are built and "
                   f"tested for CPython {LAMBDA_PYTHON_VERSION}; moving to a newer runtime is a deliberate change of "
                   "lambda_bundling.LAMBDA_PYTHON_VERSION, not an automatic one."))
        self._acknowledge_policy_wildcards(tracing=tracing)

    @staticmethod
    def _capture_environment(capture: RequestCapture) -> dict[str, str]:
        return {"CAPTURE_S3_BUCKET": capture.bucket.bucket_name, "CAPTURE_S3_PREFIX": capture.key_prefix,
                "CAPTURE_SAMPLE_PERCENT": f"{capture.sample_percent:g}",
                "CAPTURE_MAX_RECORDS": str(capture.max_records),
                "CAPTURE_MAX_AGE_SECONDS": f"{capture.max_age.to_seconds():g}"}

    def _grant_capture(self, capture: RequestCapture, encryption_key: kms.IKey) -> None:
        """s3:PutObject under the capture prefix only (no read, no delete), and a data key to encrypt with."""
        objects = capture.bucket.arn_for_objects(f"{capture.key_prefix}*")
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[objects]))
        encryption_key.grant(self.role, "kms:GenerateDataKey")
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        cdk.Validations.of(policy).acknowledge(cdk.Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{nag_resource_name(cdk.Stack.of(self).resolve(objects))}]",
            reason="The function writes one sampled-capture object per batch, keyed by time and execution "
                   "environment, only under the capture prefix; it cannot read or delete there."))

    def _acknowledge_policy_wildcards(self, *, tracing: bool) -> None:
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        for action in ("kms:GenerateDataKey*", "kms:ReEncrypt*"):
            cdk.Validations.of(policy).acknowledge(cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Action::{action}]",
                reason="Granted by CDK's SQS grantSendMessages for the KMS-encrypted failure queue; the statement "
                       "is limited to this stack's own data key."))
        if tracing:
            cdk.Validations.of(policy).acknowledge(cdk.Acknowledgment(
                id="AwsSolutions-IAM5[Resource::*]",
                reason="xray:PutTraceSegments and xray:PutTelemetryRecords (active tracing) have no resource-level "
                       "permissions; X-Ray accepts only '*' for them."))

    # -- metrics -------------------------------------------------------------------------------------------------
    def metric_errors(self, *, period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        """Invocations of the alias that ended in an error (Sum)."""
        return self.alias.metric_errors(period=period, statistic="Sum")

    def metric_throttles(self, *, period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        return self.alias.metric_throttles(period=period, statistic="Sum")

    def metric_invocations(self, *, period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        return self.alias.metric_invocations(period=period, statistic="Sum")

    def metric_duration(self, *, statistic: str = "p99",
                        period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        """Duration in milliseconds (Lambda's unit)."""
        return self.alias.metric_duration(period=period, statistic=statistic)

    def metric_concurrent_executions(self) -> cloudwatch.Metric:
        return self.alias.metric("ConcurrentExecutions", statistic="Maximum", period=cdk.Duration.minutes(1))

    def metric_provisioned_concurrency_spillover(self) -> cloudwatch.Metric:
        """Invocations served by on-demand (cold) environments because provisioned ones were busy."""
        return self.alias.metric("ProvisionedConcurrencySpilloverInvocations", statistic="Sum",
                                 period=cdk.Duration.minutes(1))

    def metric_async_failures(self, *, period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        """Failed asynchronous events waiting in the on-failure queue (Maximum)."""
        return self.failure_queue.metric_approximate_number_of_messages_visible(period=period, statistic="Maximum")

    def metric_cold_starts(self, *, period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        """Cold starts, as Powertools records them (dimensions function_name and service)."""
        return cloudwatch.Metric(namespace=self.metrics_namespace, metric_name="ColdStart", statistic="Sum",
                                 period=period, dimensions_map={"function_name": self.function.function_name,
                                                                "service": self.service_name})

    def metric_app(self, metric_name: str, *, statistic: str = "Sum",
                   period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
        """A metric the handler emits with Powertools (EMF): Predictions, PredictionLatency, ClientErrors, ..."""
        return cloudwatch.Metric(namespace=self.metrics_namespace, metric_name=metric_name,
                                 dimensions_map={"service": self.service_name}, statistic=statistic, period=period)


__all__ = ["AsyncInvocation", "FunctionSizing", "LambdaModelFunction", "RequestCapture", "model_archive", "ALIAS_NAME", "HANDLER"]
