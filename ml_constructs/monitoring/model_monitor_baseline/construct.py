"""Model Monitor's data-quality baseline, computed on deploy from the training artifacts' ``baseline.csv``.

CloudFormation has no baseline resource. A custom resource, backed by the CDK Provider framework with
an ``is_complete`` poller, starts the model-monitor analyzer as a SageMaker processing job and waits for
it (a Lambda alone may wait 15 minutes at most; the framework's waiter state machine polls for up to
``timeout``, at most the hour CloudFormation waits for any custom resource). Its properties carry the dataset asset's hash, so new baseline data re-runs the job on the
next deploy; identical data changes nothing. The job writes ``statistics.json`` and
``constraints.json`` under a fixed prefix that the data-quality job definition reads.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import custom_resources as cr
from constructs import Construct

from ml_constructs.common.archive import write_content_addressed
from ml_constructs.common.encrypted_log_group import encrypted_log_group
from ml_constructs.common.image_registry import model_monitor_image_uri
from ml_constructs.common.model_metadata import ModelArtifactsError, ModelMetadata
from ml_constructs.common.naming import nag_resource_name

REPO_ROOT = Path(__file__).resolve().parents[3]
HANDLER_CODE_DIR = Path(__file__).resolve().parent / "runtime"
DEFAULT_BUILD_DIR = REPO_ROOT / ".build" / "monitor-baseline"
BASELINE_FILE = "baseline.csv"
#: The analyzer's CSV dataset format (SDK ``DatasetFormat.csv(header=True)``): the first line is a header.
DATASET_FORMAT = {"csv": {"header": True, "output_columns_position": "START"}}
DEFAULT_TIMEOUT = cdk.Duration.hours(1)
POLL_INTERVAL = cdk.Duration.seconds(30)
HANDLER_LOG_RETENTION_DAYS = 30


@dataclass(frozen=True, kw_only=True)
class MonitorResources:
    """The processing cluster of a Model Monitor job (baselining or a monitoring run).

    The analyzer is Spark; one instance suffices for this model. ``max_runtime`` must end an hourly
    monitoring run within its hour.
    """

    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    volume_size_gb: int = 20
    max_runtime: cdk.Duration = cdk.Duration.minutes(30)


#: The baselining job may run longer than an hourly check, but ends before the deploy stops waiting.
DEFAULT_BASELINE_RESOURCES = MonitorResources(max_runtime=cdk.Duration.minutes(50))


def baseline_dataset(metadata: ModelMetadata) -> bytes:
    """``baseline.csv`` reduced to the model's feature columns, header kept, sorted by feature name.

    Only ``metadata.feature_names`` survive, so a label (or id) column in the file never becomes a
    monitored feature. Columns are written in name order because the record preprocessor hands
    captured requests over as JSON records, whose columns Spark's schema inference sorts by name:
    sorted, the baseline matches whether the analyzer pairs columns by name or by position.
    """
    path = metadata.require_file(BASELINE_FILE)
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if not header:
            raise ModelArtifactsError(f"{path} is empty: it needs a header row of feature names")
        missing = [name for name in metadata.feature_names if name not in header]
        if missing:
            raise ModelArtifactsError(f"{path}: header lacks feature column(s) {', '.join(missing)} named in "
                                      "metadata.json; rebuild the artifacts with `make model`")
        names = sorted(metadata.feature_names)
        positions = [header.index(name) for name in names]
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(names)
        rows = 0
        for number, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != len(header):
                raise ModelArtifactsError(f"{path}:{number}: {len(row)} values, header has {len(header)}")
            writer.writerow([row[position] for position in positions])
            rows += 1
    if rows == 0:
        raise ModelArtifactsError(f"{path} has a header but no rows to baseline")
    return out.getvalue().encode()


class DataQualityBaseline(Construct):
    """Runs the baselining job on deploy and whenever the baseline data changes.

    ``role`` is the SageMaker execution role the job runs as; this construct grants it exactly what the
    job touches (the dataset object, the output prefix, the key). Depend on :attr:`resource` to make
    something wait for the baseline files.
    """

    def __init__(self, scope: Construct, construct_id: str, *, metadata: ModelMetadata, role: iam.IRole,
                 output_bucket: s3.IBucket, output_prefix: str, encryption_key: kms.IKey, job_name_prefix: str,
                 resources: MonitorResources = DEFAULT_BASELINE_RESOURCES, timeout: cdk.Duration = DEFAULT_TIMEOUT,
                 build_dir: Path = DEFAULT_BUILD_DIR) -> None:
        super().__init__(scope, construct_id)
        self.output_prefix = output_prefix.strip("/")
        self.output_uri = f"s3://{output_bucket.bucket_name}/{self.output_prefix}"
        self.statistics_uri = f"{self.output_uri}/statistics.json"
        self.constraints_uri = f"{self.output_uri}/constraints.json"
        self.feature_names = tuple(sorted(metadata.feature_names))

        dataset_path = write_content_addressed(baseline_dataset(metadata), build_dir=build_dir, file_name=BASELINE_FILE)
        self.dataset_asset = s3_assets.Asset(self, "Dataset", path=str(dataset_path))
        self._grant_job(role, output_bucket, encryption_key)

        self.handler_role = iam.Role(self, "HandlerRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                                     description="Starts and watches the Model Monitor baselining job")
        self.on_event_function = self._handler("OnEvent", "baseline_job.on_event",
                                               log_name=f"{job_name_prefix}-baseline-on-event", log_key=encryption_key)
        self.is_complete_function = self._handler("IsComplete", "baseline_job.is_complete",
                                                  log_name=f"{job_name_prefix}-baseline-is-complete",
                                                  log_key=encryption_key)
        self._grant_handlers(role, job_name_prefix)

        provider_logs = encrypted_log_group(
            self, "ProviderLogs", name_prefix=f"/aws/vendedlogs/{job_name_prefix}-baseline-provider",
            encryption_key=encryption_key, retention_days=HANDLER_LOG_RETENTION_DAYS,
            removal_policy=cdk.RemovalPolicy.DESTROY)
        # Own roles for the framework's functions: the defaults attach AWSLambdaBasicExecutionRole.
        self.framework_roles = {
            "OnEvent": iam.Role(self, "FrameworkOnEventRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                                description="CDK Provider framework: relays the baseline custom resource"),
            "CompleteAndTimeout": iam.Role(self, "FrameworkPollRole",
                                           assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                                           description="CDK Provider framework: polls the baselining job"),
        }
        for framework_role in self.framework_roles.values():
            provider_logs.grant_write(framework_role)
        self.provider = cr.Provider(
            self, "Provider", on_event_handler=self.on_event_function, is_complete_handler=self.is_complete_function,
            query_interval=POLL_INTERVAL, total_timeout=timeout, log_group=provider_logs,
            framework_on_event_role=self.framework_roles["OnEvent"],
            framework_complete_and_timeout_role=self.framework_roles["CompleteAndTimeout"],
            disable_waiter_state_machine_logging=False,
            waiter_state_machine_log_options=cr.LogOptions(
                destination=provider_logs, level=sfn.LogLevel.ALL, include_execution_data=False))
        self.resource = cdk.CustomResource(
            self, "Resource", service_token=self.provider.service_token, resource_type="Custom::ModelMonitorBaseline",
            properties={
                "JobNamePrefix": job_name_prefix,
                "RoleArn": role.role_arn,
                "ImageUri": model_monitor_image_uri(self),
                "DatasetUri": self.dataset_asset.s3_object_url,
                "DatasetHash": self.dataset_asset.asset_hash,
                "OutputUri": self.output_uri,
                "KmsKeyArn": encryption_key.key_arn,
                "InstanceType": resources.instance_type,
                "InstanceCount": str(resources.instance_count),
                "VolumeSizeInGB": str(resources.volume_size_gb),
                "MaxRuntimeInSeconds": str(int(resources.max_runtime.to_seconds())),
                "DatasetFormat": json.dumps(DATASET_FORMAT, sort_keys=True),
            })
        # The job runs with the role's policies: they must exist before the job starts.
        self.resource.node.add_dependency(role)
        self._acknowledge_framework()

    # -- permissions ---------------------------------------------------------------------------------------------
    def _grant_job(self, role: iam.IRole, output_bucket: s3.IBucket, encryption_key: kms.IKey) -> None:
        asset = self.dataset_asset
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[asset.bucket.arn_for_objects(asset.s3_object_key)]))
        # An S3Prefix input lists the prefix before downloading; the prefix is the object key itself.
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[asset.bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [asset.s3_object_key]}}))
        role.add_to_principal_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[output_bucket.arn_for_objects(f"{self.output_prefix}/*")]))
        encryption_key.grant(role, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey",
                             "kms:CreateGrant")
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            output_objects = cdk.Stack.of(self).resolve(output_bucket.arn_for_objects(f"{self.output_prefix}/*"))
            cdk.Validations.of(policy.node.default_child).acknowledge(cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{nag_resource_name(output_objects)}]",
                reason="The baselining job writes statistics.json and constraints.json, only under the fixed "
                       "baseline prefix the job definition reads."))

    def _handler(self, construct_id: str, handler: str, *, log_name: str, log_key: kms.IKey) -> lambda_.Function:
        log_group = encrypted_log_group(self, f"{construct_id}Logs", name_prefix=f"/aws/lambda/{log_name}",
                                        encryption_key=log_key, retention_days=HANDLER_LOG_RETENTION_DAYS,
                                        removal_policy=cdk.RemovalPolicy.DESTROY)
        log_group.grant_write(self.handler_role)
        return lambda_.Function(
            self, construct_id, runtime=lambda_.Runtime.PYTHON_3_14, architecture=lambda_.Architecture.ARM_64,
            code=lambda_.Code.from_asset(str(HANDLER_CODE_DIR), exclude=["__pycache__", "*.pyc"]),
            handler=handler, role=self.handler_role, timeout=cdk.Duration.minutes(1), memory_size=256,
            log_group=log_group, description=f"Model Monitor baseline: {handler}")

    def _grant_handlers(self, job_role: iam.IRole, job_name_prefix: str) -> None:
        stack = cdk.Stack.of(self)
        # SageMaker lower-cases job names in ARNs; the prefix is lower case already (see ModelMonitor).
        jobs = stack.format_arn(service="sagemaker", resource="processing-job", resource_name=f"{job_name_prefix}-*")
        self.handler_role.add_to_policy(iam.PolicyStatement(
            actions=["sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob"], resources=[jobs]))
        self.handler_role.add_to_policy(iam.PolicyStatement(
            actions=["iam:PassRole"], resources=[job_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}))
        # The log groups are granted by their own ARN (no wildcard): only the job-name prefix needs a reason.
        policy = self.handler_role.node.find_child("DefaultPolicy").node.default_child
        cdk.Validations.of(policy).acknowledge(cdk.Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{nag_resource_name(stack.resolve(jobs))}]",
            reason="Each deploy starts a processing job with a unique, timestamped name; the grant covers only "
                   "names under this stack's baselining prefix."))

    def _acknowledge_framework(self) -> None:
        """The Provider framework's functions and waiter state machine are CDK's; acknowledge what they need."""
        stack = cdk.Stack.of(self)

        def invoke_ids(*functions: lambda_.IFunction) -> list[str]:
            return [f"AwsSolutions-IAM5[Resource::{nag_resource_name(stack.resolve(fn.function_arn))}:*]"
                    for fn in functions]

        invoke_reason = ("The Provider framework grants lambda:InvokeFunction on the function and its versions "
                         "(<arn>:*); it invokes only this construct's own handler functions.")
        handlers = invoke_ids(self.on_event_function, self.is_complete_function)
        for framework_role in self.framework_roles.values():
            policy = framework_role.node.find_child("DefaultPolicy").node.default_child
            for rule in handlers:
                cdk.Validations.of(policy).acknowledge(cdk.Acknowledgment(id=rule, reason=invoke_reason))
        waiter = self.provider.node.find_child("waiter-state-machine")
        waiter_policy = waiter.node.find_child("Role").node.find_child("DefaultPolicy").node.default_child
        framework_functions = [self.provider.node.find_child(name) for name in ("framework-isComplete",
                                                                               "framework-onTimeout")]
        for rule in invoke_ids(*framework_functions):
            cdk.Validations.of(waiter_policy).acknowledge(cdk.Acknowledgment(
                id=rule, reason="The waiter state machine invokes only the framework's own isComplete and onTimeout "
                                "functions and their versions."))
        # aws-cdk-lib's WaiterStateMachine.renderLoggingConfiguration adds this statement, resources ["*"],
        # whenever the waiter logs; no option scopes it, and the waiter's logging is what SF1 asks for.
        cdk.Validations.of(waiter_policy).acknowledge(cdk.Acknowledgment(
            id="AwsSolutions-IAM5[Resource::*]",
            reason="CDK's Provider framework grants its waiter state machine one fixed logging statement on *: "
                   "the vended-log-delivery actions (logs:*LogDelivery, PutResourcePolicy, DescribeResourcePolicies, "
                   "DescribeLogGroups), which take no narrower resource, plus logs:CreateLogStream and "
                   "logs:PutLogEvents, which CDK puts in the same statement. The role is assumed only by this "
                   "waiter, which runs no user code and only invokes the framework's own functions."))
        cdk.Validations.of(waiter.node.default_child).acknowledge(cdk.Acknowledgment(
            id="AwsSolutions-SF2",
            reason="The Provider framework's waiter state machine exposes no tracing option; it only polls one "
                   "processing job, and every poll is logged (level ALL) to the provider log group."))
