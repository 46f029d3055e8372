"""SageMaker Model Monitor for a real-time endpoint: baseline as code, data and model quality, alarms.

What runs where:

* on deploy (and whenever ``baseline.csv`` changes) the analyzer computes ``statistics.json`` and
  ``constraints.json`` from the training data (:class:`~ml_constructs.monitoring.model_monitor_baseline.construct.DataQualityBaseline`);
* every hour (configurable) a data-quality run compares the endpoint's captured requests with them;
  a record preprocessor drops the captured response so that only the request's features are compared;
* every day (configurable) a model-quality run joins captured predictions with ground-truth labels
  uploaded under a prefix (``python -m ops.labels upload``) by inference id. It runs without baseline
  constraints: a model-quality baseline needs predictions on a labelled set, which the training
  artifacts do not carry; the AUC floor alarm stands in for them;
* drift and AUC alarms, and failed runs, notify the stack's alert topic.

Everything the jobs write lands under ``monitoring/`` in the data-capture bucket, encrypted with the
data key; the jobs run network-isolated with a role scoped to exactly those prefixes.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from ml_constructs.common.alert_topic import AlertTopic
from ml_constructs.common.archive import write_content_addressed
from ml_constructs.common.image_registry import (
    MODEL_MONITOR_REGISTRY, MODEL_MONITOR_REGISTRY_ACCOUNTS, MODEL_MONITOR_REPOSITORY, model_monitor_image_uri)
from ml_constructs.common.model_metadata import ModelMetadata
from ml_constructs.common.naming import nag_resource_name
from ml_constructs.monitoring.model_monitor_baseline.construct import DataQualityBaseline, MonitorResources
from ml_constructs.monitoring.monitor_alarms import MonitorAlarms, MonitoredSchedules
from ml_constructs.realtime.endpoint import RealtimeEndpoint

REPO_ROOT = Path(__file__).resolve().parents[2]
PREPROCESSOR_SOURCE = Path(__file__).resolve().parent / "preprocessor" / "record_preprocessor.py"
DEFAULT_BUILD_DIR = REPO_ROOT / ".build" / "monitor-preprocessor"
PREPROCESSOR_PLACEHOLDER = "FEATURE_NAMES: tuple = ()  # rendered at synth from metadata.json"
HOURLY = "cron(0 * ? * * *)"
DAILY_AT_MIDNIGHT = "cron(0 0 ? * * *)"
MONITORING_PREFIX = "monitoring"
BASELINE_PREFIX = f"{MONITORING_PREFIX}/baseline/data-quality"
REPORTS_PREFIX = f"{MONITORING_PREFIX}/reports"
DEFAULT_GROUND_TRUTH_PREFIX = f"{MONITORING_PREFIX}/ground-truth"
ENDPOINT_LOCAL_PATH = "/opt/ml/processing/input/endpoint"
OUTPUT_LOCAL_PATH = "/opt/ml/processing/output"
PROCESSING_LOG_GROUP = "/aws/sagemaker/ProcessingJobs"
MAX_NAME = 63
#: CloudFormation waits at most an hour for a custom resource; the Provider framework polls within that.
MIN_BASELINE_TIMEOUT = cdk.Duration.minutes(15)
MAX_BASELINE_TIMEOUT = cdk.Duration.hours(1)
BASELINE_TIMEOUT_MARGIN = cdk.Duration.minutes(10)


@dataclass(frozen=True, kw_only=True)
class DataQuality:
    """Captured requests against the training baseline, on ``schedule``; drift above ``drift_threshold`` pages."""

    schedule: str = HOURLY
    drift_threshold: float = 0.1


@dataclass(frozen=True, kw_only=True)
class ModelQuality:
    """Binary-classification quality against delayed labels under ``ground_truth_prefix`` of the capture bucket.

    Each run judges the 24 hours of inferences that ended ``label_delay`` before it: labels for them have
    had that long to arrive. ``probability_attribute`` locates the probability in the captured response;
    the default ``"0"`` is the first column of a ``text/csv`` response, which ``inference.py`` sends when the
    request says ``Accept: text/csv`` (one probability per line). Its JSON response is not addressed by it:
    only inferences requested with ``Accept: text/csv`` and one feature row can be labelled. Predictions at or
    above ``probability_threshold`` count as positive.
    """

    schedule: str = DAILY_AT_MIDNIGHT
    probability_attribute: str = "0"
    probability_threshold: float = 0.5
    ground_truth_prefix: str = DEFAULT_GROUND_TRUTH_PREFIX
    label_delay: cdk.Duration = cdk.Duration.hours(24)
    min_auc: float | None = 0.75


def bounded_name(base: str, suffix: str) -> str:
    """``<base>-<suffix>`` cut to SageMaker's 63 characters by shortening ``base``."""
    room = MAX_NAME - len(suffix) - 1
    return f"{base[:room].rstrip('-')}-{suffix}"


def iso_hours_ago(hours: int) -> str:
    """An ISO 8601 offset before the run, as Model Monitor's StartTimeOffset/EndTimeOffset expect."""
    return f"-PT{hours}H"


def render_preprocessor(feature_names: tuple[str, ...], source: Path = PREPROCESSOR_SOURCE) -> bytes:
    """The record preprocessor with this model's feature names written in."""
    text = source.read_text()
    if text.count(PREPROCESSOR_PLACEHOLDER) != 1:
        raise ValueError(f"{source}: expected the line {PREPROCESSOR_PLACEHOLDER!r} exactly once")
    return text.replace(PREPROCESSOR_PLACEHOLDER, f"FEATURE_NAMES: tuple = {tuple(feature_names)!r}").encode()


def _validate(*, endpoint: RealtimeEndpoint, region: str, resources: MonitorResources, data_quality: DataQuality,
              model_quality: ModelQuality | None, baseline_timeout: cdk.Duration) -> None:
    problems: list[str] = []
    if not cdk.Token.is_unresolved(region) and region not in MODEL_MONITOR_REGISTRY_ACCOUNTS:
        problems.append(f"Model Monitor analyzer images are not published in region {region!r} (the SageMaker "
                        "Python SDK's model-monitor.json lists none there); deploy the endpoint without Model "
                        "Monitor in this region, or to one of: " + ", ".join(sorted(MODEL_MONITOR_REGISTRY_ACCOUNTS)))
    if endpoint.data_capture is None:
        problems.append(f"endpoint {endpoint.endpoint_name} has no data capture; Model Monitor analyses captured "
                        "requests, so enable data capture on the endpoint")
    runtime = resources.max_runtime.to_seconds()
    if not 60 <= runtime <= 3600:
        problems.append(f"max_runtime must be 60..3600 seconds (a run must end within its hour), got {runtime:g}")
    if not MIN_BASELINE_TIMEOUT.to_minutes() <= baseline_timeout.to_minutes() <= MAX_BASELINE_TIMEOUT.to_minutes():
        problems.append(f"baseline_timeout must be {MIN_BASELINE_TIMEOUT.to_minutes():g}.."
                        f"{MAX_BASELINE_TIMEOUT.to_minutes():g} minutes (CloudFormation waits at most an hour for a "
                        f"custom resource), got {baseline_timeout.to_minutes():g}")
    if resources.instance_count < 1:
        problems.append(f"instance_count must be at least 1, got {resources.instance_count}")
    if not 0 <= data_quality.drift_threshold <= 1:
        problems.append(f"drift_threshold must be 0..1, got {data_quality.drift_threshold}")
    if model_quality is not None:
        if not 0 <= model_quality.probability_threshold <= 1:
            problems.append(f"probability_threshold must be 0..1, got {model_quality.probability_threshold}")
        if model_quality.label_delay.to_hours() != int(model_quality.label_delay.to_hours()):
            problems.append("label_delay must be whole hours")
    if problems:
        raise ValueError("ModelMonitor: " + "; ".join(problems))


class ModelMonitor(Construct):
    """Data-quality (and optionally model-quality) monitoring of one real-time endpoint.

    Public children: :attr:`role` (runs every job), :attr:`baseline`, :attr:`data_quality_job_definition`,
    :attr:`data_quality_schedule`, :attr:`model_quality_job_definition`, :attr:`model_quality_schedule`,
    :attr:`alarms` (a :class:`~ml_constructs.monitoring.monitor_alarms.MonitorAlarms`: the drift and AUC alarms, their
    ``metric_*`` helpers and ``add_to_dashboard``).
    """

    def __init__(self, scope: Construct, construct_id: str, *, endpoint: RealtimeEndpoint,
                 artifacts_dir: Path | str, encryption_key: kms.IKey,
                 resources: MonitorResources = MonitorResources(), data_quality: DataQuality = DataQuality(),
                 model_quality: ModelQuality | None = ModelQuality(), alert_topic: AlertTopic | None = None,
                 alert_on_failed_runs: bool = True, baseline_timeout: cdk.Duration = cdk.Duration.hours(1),
                 build_dir: Path = DEFAULT_BUILD_DIR) -> None:
        super().__init__(scope, construct_id)
        _validate(endpoint=endpoint, region=cdk.Stack.of(self).region, resources=resources,
                  data_quality=data_quality, model_quality=model_quality, baseline_timeout=baseline_timeout)
        capture = endpoint.data_capture
        assert capture is not None
        self.endpoint_name = endpoint.endpoint_name
        self.metadata = ModelMetadata.load(artifacts_dir)
        self.bucket = capture.bucket
        self.encryption_key = encryption_key
        self.resources = resources
        self.reports_uri = f"s3://{self.bucket.bucket_name}/{REPORTS_PREFIX}"
        self.image_uri = model_monitor_image_uri(self)
        name_base = self.endpoint_name.lower()

        self.role = iam.Role(self, "JobRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description=f"Runs the Model Monitor jobs of endpoint {self.endpoint_name}")
        self._grant_jobs(capture_prefix=capture.prefix,
                         ground_truth_prefix=model_quality.ground_truth_prefix.strip("/") if model_quality else None)

        self.baseline = DataQualityBaseline(
            self, "Baseline", metadata=self.metadata, role=self.role, output_bucket=self.bucket,
            output_prefix=BASELINE_PREFIX, encryption_key=encryption_key,
            job_name_prefix=bounded_name(name_base, "baseline")[:40].rstrip("-"),
            # The job stops on its own before the deploy gives up on it, so a rollback leaves nothing running.
            resources=replace(resources, max_runtime=baseline_timeout.minus(BASELINE_TIMEOUT_MARGIN)),
            timeout=baseline_timeout)
        self.feature_names = self.baseline.feature_names

        preprocessor_path = write_content_addressed(render_preprocessor(self.feature_names), build_dir=build_dir,
                                                    file_name="record_preprocessor.py")
        self.preprocessor_asset = s3_assets.Asset(self, "RecordPreprocessor", path=str(preprocessor_path))
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"],
            resources=[self.preprocessor_asset.bucket.arn_for_objects(self.preprocessor_asset.s3_object_key)]))

        self.data_quality_job_definition = self._data_quality_job_definition()
        # The job definition names the baseline files: they must exist before it (and its schedule) do.
        self.data_quality_job_definition.node.add_dependency(self.baseline.resource)
        self.data_quality_schedule_name = bounded_name(name_base, "data-quality")
        self.data_quality_schedule = self._schedule(
            "DataQualitySchedule", self.data_quality_schedule_name, self.data_quality_job_definition,
            "DataQuality", data_quality.schedule, endpoint)

        self.model_quality_job_definition: sagemaker.CfnModelQualityJobDefinition | None = None
        self.model_quality_schedule: sagemaker.CfnMonitoringSchedule | None = None
        self.model_quality_schedule_name: str | None = None
        self.ground_truth_uri: str | None = None
        if model_quality is not None:
            self.ground_truth_uri = f"s3://{self.bucket.bucket_name}/{model_quality.ground_truth_prefix.strip('/')}"
            self.model_quality_job_definition = self._model_quality_job_definition(model_quality)
            self.model_quality_schedule_name = bounded_name(name_base, "model-quality")
            self.model_quality_schedule = self._schedule(
                "ModelQualitySchedule", self.model_quality_schedule_name, self.model_quality_job_definition,
                "ModelQuality", model_quality.schedule, endpoint)

        self.alarms = MonitorAlarms(
            self, "Alarms", drift_threshold=data_quality.drift_threshold,
            min_auc=model_quality.min_auc if model_quality else None, alert_topic=alert_topic,
            alert_on_failed_runs=alert_on_failed_runs,
            schedules=MonitoredSchedules(
                endpoint_name=self.endpoint_name, feature_names=self.feature_names,
                data_quality_schedule_name=self.data_quality_schedule_name,
                data_quality_schedule_arn=self.data_quality_schedule.attr_monitoring_schedule_arn,
                model_quality_schedule_name=self.model_quality_schedule_name,
                model_quality_schedule_arn=(self.model_quality_schedule.attr_monitoring_schedule_arn
                                            if self.model_quality_schedule else None)))

    # -- job definitions ------------------------------------------------------------------------------------------
    def _common(self, cfn: type) -> dict[str, Any]:
        """Cluster, network, stopping condition and role shared by both job definitions.

        ``cfn`` is the L1 class: each declares its own (identically shaped) property classes.
        """
        resources = self.resources
        return {
            "job_resources": cfn.MonitoringResourcesProperty(cluster_config=cfn.ClusterConfigProperty(
                instance_count=resources.instance_count, instance_type=resources.instance_type,
                volume_size_in_gb=resources.volume_size_gb, volume_kms_key_id=self.encryption_key.key_arn)),
            "network_config": cfn.NetworkConfigProperty(enable_network_isolation=True,
                                                        enable_inter_container_traffic_encryption=True),
            "stopping_condition": cfn.StoppingConditionProperty(
                max_runtime_in_seconds=int(resources.max_runtime.to_seconds())),
            "role_arn": self.role.role_arn,
        }

    def _output(self, cfn: type, kind: str) -> Any:
        return cfn.MonitoringOutputConfigProperty(
            kms_key_id=self.encryption_key.key_arn,
            monitoring_outputs=[cfn.MonitoringOutputProperty(s3_output=cfn.S3OutputProperty(
                local_path=OUTPUT_LOCAL_PATH, s3_uri=f"{self.reports_uri}/{kind}", s3_upload_mode="EndOfJob"))])

    def _named(self, props: dict[str, Any], kind: str) -> str:
        """Job definitions are immutable: any change replaces them, and a replacement needs a new name.

        The name carries a hash of the definition, so it changes exactly when the definition does.
        """
        resolved = cdk.Stack.of(self).resolve(props)
        digest = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()[:8]
        return bounded_name(self.endpoint_name.lower(), f"{kind}-{digest}")

    def _data_quality_job_definition(self) -> sagemaker.CfnDataQualityJobDefinition:
        props = dict(
            self._common(sagemaker.CfnDataQualityJobDefinition),
            data_quality_app_specification=sagemaker.CfnDataQualityJobDefinition.DataQualityAppSpecificationProperty(
                image_uri=self.image_uri, record_preprocessor_source_uri=self.preprocessor_asset.s3_object_url,
                environment={"publish_cloudwatch_metrics": "Enabled"}),
            data_quality_baseline_config=sagemaker.CfnDataQualityJobDefinition.DataQualityBaselineConfigProperty(
                constraints_resource=sagemaker.CfnDataQualityJobDefinition.ConstraintsResourceProperty(
                    s3_uri=self.baseline.constraints_uri),
                statistics_resource=sagemaker.CfnDataQualityJobDefinition.StatisticsResourceProperty(
                    s3_uri=self.baseline.statistics_uri)),
            data_quality_job_input=sagemaker.CfnDataQualityJobDefinition.DataQualityJobInputProperty(
                endpoint_input=sagemaker.CfnDataQualityJobDefinition.EndpointInputProperty(
                    endpoint_name=self.endpoint_name, local_path=ENDPOINT_LOCAL_PATH, s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated")),
            data_quality_job_output_config=self._output(sagemaker.CfnDataQualityJobDefinition, "data-quality"))
        definition = sagemaker.CfnDataQualityJobDefinition(
            self, "DataQualityJobDefinition", job_definition_name=self._named(props, "dq"), **props)
        definition.node.add_dependency(self.role)
        return definition

    def _model_quality_job_definition(self, options: ModelQuality) -> sagemaker.CfnModelQualityJobDefinition:
        delay = int(options.label_delay.to_hours())
        props = dict(
            self._common(sagemaker.CfnModelQualityJobDefinition),
            model_quality_app_specification=sagemaker.CfnModelQualityJobDefinition.ModelQualityAppSpecificationProperty(
                image_uri=self.image_uri, problem_type="BinaryClassification"),
            model_quality_job_input=sagemaker.CfnModelQualityJobDefinition.ModelQualityJobInputProperty(
                endpoint_input=sagemaker.CfnModelQualityJobDefinition.EndpointInputProperty(
                    endpoint_name=self.endpoint_name, local_path=ENDPOINT_LOCAL_PATH, s3_input_mode="File",
                    s3_data_distribution_type="FullyReplicated",
                    probability_attribute=options.probability_attribute,
                    probability_threshold_attribute=options.probability_threshold,
                    start_time_offset=iso_hours_ago(delay + 24), end_time_offset=iso_hours_ago(delay)),
                ground_truth_s3_input=sagemaker.CfnModelQualityJobDefinition.MonitoringGroundTruthS3InputProperty(
                    s3_uri=self.ground_truth_uri)),
            model_quality_job_output_config=self._output(sagemaker.CfnModelQualityJobDefinition,
                                                         "model-quality"))
        definition = sagemaker.CfnModelQualityJobDefinition(
            self, "ModelQualityJobDefinition", job_definition_name=self._named(props, "mq"), **props)
        definition.node.add_dependency(self.role)
        return definition

    def _schedule(self, construct_id: str, name: str, definition: cdk.CfnResource, monitoring_type: str,
                  expression: str, endpoint: RealtimeEndpoint) -> sagemaker.CfnMonitoringSchedule:
        schedule = sagemaker.CfnMonitoringSchedule(
            self, construct_id, monitoring_schedule_name=name, endpoint_name=self.endpoint_name,
            monitoring_schedule_config=sagemaker.CfnMonitoringSchedule.MonitoringScheduleConfigProperty(
                monitoring_job_definition_name=definition.job_definition_name, monitoring_type=monitoring_type,
                schedule_config=sagemaker.CfnMonitoringSchedule.ScheduleConfigProperty(schedule_expression=expression)))
        # Referenced by name (the job definition's Ref is its ARN), so the order is explicit; the
        # endpoint is referenced by its fixed name too, and SageMaker checks that it exists.
        schedule.node.add_dependency(definition)
        schedule.node.add_dependency(endpoint.endpoint)
        return schedule

    # -- permissions ----------------------------------------------------------------------------------------------
    def _grant_jobs(self, *, capture_prefix: str, ground_truth_prefix: str | None) -> None:
        stack = cdk.Stack.of(self)
        bucket, role = self.bucket, self.role
        capture_prefix = capture_prefix.strip("/")
        readable = [f"{capture_prefix}/*", f"{MONITORING_PREFIX}/*"]
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:GetObject"], resources=[bucket.arn_for_objects(prefix) for prefix in readable]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
            conditions={"StringLike": {"s3:prefix": [*readable, capture_prefix, MONITORING_PREFIX]}}))
        role.add_to_policy(iam.PolicyStatement(
            actions=["s3:PutObject"], resources=[bucket.arn_for_objects(f"{REPORTS_PREFIX}/*")]))
        self.encryption_key.grant(role, "kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey",
                                  "kms:CreateGrant")
        log_group_arn = stack.format_arn(service="logs", resource="log-group",
                                         resource_name=f"{PROCESSING_LOG_GROUP}:*",
                                         arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[log_group_arn]))
        role.add_to_policy(iam.PolicyStatement(
            actions=["cloudwatch:PutMetricData"], resources=["*"],
            conditions={"StringEquals": {"cloudwatch:namespace": [
                "aws/sagemaker/Endpoints/data-metrics", "aws/sagemaker/Endpoints/model-metrics"]}}))
        role.add_to_policy(iam.PolicyStatement(
            actions=["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"],
            resources=[MODEL_MONITOR_REGISTRY.repository_arn(self, MODEL_MONITOR_REPOSITORY)]))
        # ECR has no per-repository authorization token: GetAuthorizationToken only accepts "*".
        role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))

        policy = role.node.find_child("DefaultPolicy").node.default_child
        reasons = {
            "*": "ecr:GetAuthorizationToken has no resource-level permission, and cloudwatch:PutMetricData is "
                 "limited to Model Monitor's two metric namespaces by a condition.",
            nag_resource_name(stack.resolve(log_group_arn)):
                "Processing jobs write log streams named per job at run time, only in SageMaker's "
                "/aws/sagemaker/ProcessingJobs log group.",
            nag_resource_name(stack.resolve(bucket.arn_for_objects(f"{capture_prefix}/*"))):
                "Monitoring runs read the captured requests, whose keys SageMaker generates per hour and "
                "variant under the data-capture prefix.",
            nag_resource_name(stack.resolve(bucket.arn_for_objects(f"{MONITORING_PREFIX}/*"))):
                "Monitoring runs read the baseline files and the uploaded ground-truth labels, only under this "
                "bucket's monitoring/ prefix.",
            nag_resource_name(stack.resolve(bucket.arn_for_objects(f"{REPORTS_PREFIX}/*"))):
                "Monitoring runs write reports under per-schedule, per-hour keys that SageMaker generates, only "
                "under the monitoring/reports/ prefix.",
        }
        for resource, reason in reasons.items():
            cdk.Validations.of(policy).acknowledge(cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{resource}]", reason=reason))

    # -- outputs --------------------------------------------------------------------------------------------------
    def add_outputs(self) -> None:
        """Stack outputs the operator commands need: schedule name, reports and ground-truth locations."""
        cdk.CfnOutput(self, "DataQualityScheduleName", value=self.data_quality_schedule_name)
        cdk.CfnOutput(self, "MonitoringReportsUri", value=self.reports_uri)
        cdk.CfnOutput(self, "BaselineUri", value=self.baseline.output_uri)
        if self.ground_truth_uri:
            cdk.CfnOutput(self, "GroundTruthUri", value=self.ground_truth_uri)


__all__ = ["ModelMonitor", "MonitorResources", "DataQuality", "ModelQuality", "render_preprocessor",
           "bounded_name", "HOURLY", "DAILY_AT_MIDNIGHT"]
