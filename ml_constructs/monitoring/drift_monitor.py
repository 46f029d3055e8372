"""The built-in drift and quality monitor: a scheduled Lambda that compares captured traffic with the model's
packaging-time baseline, publishes per-feature metrics, writes a per-window report, and alarms.

Works in every AWS account (SageMaker Model Monitor is closed to new customers) and for every pattern: the
source is SageMaker data capture (real-time), sampled requests (serverless) or a Batch Transform run's input
and output (batch); see ``drift_job/runtime/drift_readers.py`` for the formats.

* The baseline (``drift_baseline.json`` beside the model) ships as a Lambda layer holding that one file, so the
  job needs no read permission on any model bucket and the baseline changes exactly when the model does.
* Metrics go out as Embedded Metric Format lines in the job's log group (no ``cloudwatch:PutMetricData``,
  which only accepts ``Resource: "*"``), one namespace per model, a ``Feature`` dimension per feature.
* Missing data is handled deliberately: a window without traffic publishes ``RowsAnalysed = 0`` and no drift,
  invalid-rate or quality value, so those alarms treat missing data as NOT breaching (no traffic is not drift);
  the job itself publishes ``WindowsAnalysed = 1`` every run, and its heartbeat alarm treats missing data as
  BREACHING, so a job that stops running (or fails every run) is never mistaken for a healthy quiet model.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Mapping

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

from ml_constructs.common.encrypted_log_group import encrypted_log_group
from ml_constructs.common.lambda_bundling import LAMBDA_PYTHON_VERSION, LambdaPackageSpec, lambda_code
from ml_constructs.common.model_metadata import ModelArtifactsError, ModelMetadata
from ml_constructs.common.naming import nag_resource_name

RUNTIME_DIR = Path(__file__).resolve().parent / "drift_job" / "runtime"
HANDLER = "drift_handler.handler"
BASELINE_FILE = "drift_baseline.json"
#: Layers are unpacked under /opt.
BASELINE_PATH = f"/opt/{BASELINE_FILE}"
NAMESPACE_PREFIX = "MLDrift"
FEATURE_DIMENSION = "Feature"
SOURCE_FORMATS = ("capture", "samples", "batch")
DEFAULT_LOG_RETENTION_DAYS = 30
#: Heartbeat: this many hourly periods without a finished run before the job-stalled alarm fires.
HEARTBEAT_PERIODS = 3


@dataclass(frozen=True, kw_only=True)
class DriftSource:
    """Where the captured traffic is: ``capture`` (SageMaker data capture JSONL), ``samples`` (serverless
    ``{"inference_id", "features", "score"}`` lines) or ``batch`` (transform input CSV; ``output_prefix`` holds
    the ``.out`` files)."""

    bucket: s3.IBucket
    prefix: str
    format: Literal["capture", "samples", "batch"] = "capture"
    output_prefix: str | None = None
    output_bucket: s3.IBucket | None = None
    """Batch only: the bucket of the ``.out`` files when it is not ``bucket`` (default: ``bucket``)."""

    @property
    def outputs_bucket(self) -> s3.IBucket:
        return self.output_bucket or self.bucket


@dataclass(frozen=True, kw_only=True)
class LabelSource:
    """Where ``ops.labels upload`` puts ground truth (Model Monitor's ground-truth JSONL)."""

    bucket: s3.IBucket
    prefix: str


@dataclass(frozen=True, kw_only=True)
class DriftThresholds:
    """Alarm thresholds; ``feature_psi`` overrides ``psi`` per feature name."""

    psi: float = 0.2
    ks: float = 0.2
    prediction_psi: float = 0.2
    invalid_rate: float = 0.05
    min_auc: float = 0.75
    feature_psi: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class DriftSchedule:
    """How often the job runs and how much traffic one run reads (the window ends at the scheduled time)."""

    expression: str = "rate(1 hour)"
    window: cdk.Duration = cdk.Duration.hours(1)
    enabled: bool = True
    label_lookback: cdk.Duration = cdk.Duration.days(7)
    """How far back a label's captured prediction may be (labels arrive late)."""
    scheduled: bool = True
    """False: no Scheduler schedule; something else starts each run (the batch workflow, after each transform).
    ``window`` still sets the alarms' period, so make it the time between runs (one day for a nightly batch)."""
    heartbeat: bool = True
    """The job-stalled alarm (no finished run for 3 periods). Off when runs are not expected regularly (a batch
    whose schedule is switched off), where it would only ever fire."""


@dataclass(frozen=True, kw_only=True)
class DriftJobSizing:
    """3008 MB: numpy's sort/searchsorted over 1M x 12 floats needs ~0.5 GB, and memory buys CPU (bench/monitoring.py)."""

    memory_mb: int = 3008
    timeout: cdk.Duration = cdk.Duration.minutes(15)


def _relative(prefix: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def _validate(*, source: DriftSource, thresholds: DriftThresholds, schedule: DriftSchedule, sizing: DriftJobSizing,
              feature_names: list[str]) -> None:
    problems = []
    if source.format not in SOURCE_FORMATS:
        problems.append(f"source format {source.format!r} is not one of {', '.join(SOURCE_FORMATS)}")
    if source.format == "batch" and source.output_prefix is None:
        problems.append("a batch source needs output_prefix (where the transform writes <object>.out)")
    # KS and the invalid rate are shares (at most 1); PSI is unbounded, but past 10 no alarm would ever fire.
    for name, upper in (("psi", 10.0), ("prediction_psi", 10.0), ("ks", 1.0), ("invalid_rate", 1.0)):
        if not 0 < getattr(thresholds, name) <= upper:
            problems.append(f"threshold {name} {getattr(thresholds, name)} must be above 0 and at most {upper:g}")
    for feature, value in thresholds.feature_psi.items():
        if not 0 < value <= 10:
            problems.append(f"feature_psi[{feature!r}] {value} must be above 0 and at most 10")
    if not 0 < thresholds.min_auc <= 1:
        problems.append(f"min_auc {thresholds.min_auc} must be in (0, 1]")
    unknown = sorted(set(thresholds.feature_psi) - set(feature_names))
    if unknown:
        problems.append(f"feature_psi names unknown feature(s): {', '.join(unknown)}")
    if not re.fullmatch(r"(rate|cron)\(.+\)", schedule.expression):
        problems.append(f"schedule {schedule.expression!r} is not a rate(...) or cron(...) expression")
    if not 1 <= schedule.window.to_minutes() <= 24 * 60:
        problems.append("the window must be between 1 minute and 24 hours")
    if not 128 <= sizing.memory_mb <= 10_240 or not 1 <= sizing.timeout.to_seconds() <= 900:
        problems.append("memory_mb must be 128..10240 and the timeout 1..900 seconds")
    if problems:
        raise ValueError("invalid DriftMonitor: " + "; ".join(problems))


class DriftMonitor(Construct):
    """The drift job, its schedule and alarms. Public children: ``function``, ``role``, ``log_group``,
    ``baseline_layer``, ``schedule``, ``alarms`` (name -> alarm), ``feature_alarms`` (feature -> alarm)."""

    def __init__(self, scope: Construct, construct_id: str, *, artifacts_dir: Path | str, source: DriftSource,
                 report_bucket: s3.IBucket, report_prefix: str, encryption_key: kms.IKey, alert_topic: sns.ITopic,
                 labels: LabelSource | None = None, thresholds: DriftThresholds = DriftThresholds(),
                 schedule: DriftSchedule = DriftSchedule(), sizing: DriftJobSizing = DriftJobSizing(),
                 log_retention_days: int = DEFAULT_LOG_RETENTION_DAYS, name: str | None = None) -> None:
        """``name`` (default: the model's name) names the metric namespace ``MLDrift/<name>``, the schedule and
        the log group: give each deployment of one model its own (``fraud-detector-realtime``,
        ``fraud-detector-serverless``) so their metrics, alarms and schedules never mix."""
        super().__init__(scope, construct_id)
        self.metadata = ModelMetadata.load(artifacts_dir)
        self.name = name or self.metadata.model_name
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.name):
            raise ValueError(f"invalid DriftMonitor: name {self.name!r} must be 1-64 letters, digits, '.', '_' or '-'")
        self.feature_names = list(self.metadata.feature_names)
        _validate(source=source, thresholds=thresholds, schedule=schedule, sizing=sizing,
                  feature_names=self.feature_names)
        baseline = Path(self.metadata.artifacts_dir) / BASELINE_FILE
        if not baseline.is_file():
            raise ModelArtifactsError(f"{baseline} not found: package the model with its drift baseline "
                                      "(training.drift_baseline.build_drift_baseline) to use the built-in monitor")
        self.namespace = f"{NAMESPACE_PREFIX}/{self.name}"
        self.thresholds = thresholds
        self.schedule_settings = schedule
        self.report_prefix = _relative(report_prefix)
        self.has_labels = labels is not None
        stack = cdk.Stack.of(self)

        self.baseline_layer = lambda_.LayerVersion(
            self, "Baseline", description=f"{self.metadata.model_name} {self.metadata.model_version} drift baseline",
            code=lambda_.Code.from_asset(str(self.metadata.artifacts_dir), exclude=["*", f"!{BASELINE_FILE}"]),
            compatible_architectures=[lambda_.Architecture.ARM_64])
        self.log_group = encrypted_log_group(self, "Logs", name_prefix=f"/aws/lambda/{self.name}-drift",
                                             encryption_key=encryption_key, retention_days=log_retention_days)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"{self.metadata.model_name} drift job: read captured traffic, write reports")
        settings = {"psi_threshold": thresholds.psi, "ks_threshold": thresholds.ks,
                    "prediction_psi_threshold": thresholds.prediction_psi,
                    "invalid_rate_threshold": thresholds.invalid_rate,
                    "decision_threshold": self.metadata.decision_threshold,
                    "window_minutes": int(schedule.window.to_minutes()),
                    "label_lookback_hours": int(schedule.label_lookback.to_hours())}
        environment = {"SOURCE_FORMAT": source.format, "SOURCE_BUCKET": source.bucket.bucket_name,
                       "SOURCE_PREFIX": _relative(source.prefix), "REPORT_BUCKET": report_bucket.bucket_name,
                       "REPORT_PREFIX": self.report_prefix, "BASELINE_PATH": BASELINE_PATH,
                       "METRIC_NAMESPACE": self.namespace, "SETTINGS": json.dumps(settings, sort_keys=True)}
        if source.output_prefix is not None:
            environment["OUTPUT_PREFIX"] = _relative(source.output_prefix)
        if source.output_bucket is not None:
            environment["OUTPUT_BUCKET"] = source.output_bucket.bucket_name
        if labels is not None:
            environment.update({"LABELS_BUCKET": labels.bucket.bucket_name, "LABELS_PREFIX": _relative(labels.prefix)})
        self.package = LambdaPackageSpec(source_dir=RUNTIME_DIR, architecture="arm64",
                                         python_version=LAMBDA_PYTHON_VERSION)
        self.function = lambda_.Function(
            self, "Function", runtime=lambda_.Runtime.PYTHON_3_12, architecture=lambda_.Architecture.ARM_64,
            handler=HANDLER, code=lambda_code(self.package), layers=[self.baseline_layer],
            memory_size=sizing.memory_mb, timeout=sizing.timeout, role=self.role, log_group=self.log_group,
            # One run at a time: two overlapping runs of the same window would publish every metric twice.
            reserved_concurrent_executions=1, environment=environment,
            description=f"{self.metadata.model_name} drift and quality job (built-in monitoring engine)")
        self._grant(source=source, report_bucket=report_bucket, labels=labels, encryption_key=encryption_key,
                    stack=stack)
        cdk.Validations.of(self.function).acknowledge(cdk.Acknowledgment(
            id="AwsSolutions-L1",
            reason=f"numpy's compiled wheel and the bytecode are built and tested for CPython {LAMBDA_PYTHON_VERSION}; "
                   "a newer runtime is a deliberate change of lambda_bundling.LAMBDA_PYTHON_VERSION."))

        self.schedule = self._schedule(schedule, stack) if schedule.scheduled else None
        self.alarms: dict[str, cloudwatch.Alarm] = {}
        self.feature_alarms: dict[str, cloudwatch.Alarm] = {}
        self._alarms(alert_topic)

    # -- permissions ----------------------------------------------------------------------------------------------
    def _grant(self, *, source: DriftSource, report_bucket: s3.IBucket, labels: LabelSource | None,
               encryption_key: kms.IKey, stack: cdk.Stack) -> None:
        reads: list[tuple[s3.IBucket, str, str]] = [
            (source.bucket, _relative(source.prefix), "the captured traffic of the monitored model")]
        if source.output_prefix is not None:
            reads.append((source.outputs_bucket, _relative(source.output_prefix), "the batch predictions (<object>.out)"))
        if labels is not None:
            reads.append((labels.bucket, _relative(labels.prefix), "the ground-truth labels uploaded by ops.labels"))
        reads.append((report_bucket, f"{self.report_prefix}predictions/", "its own prediction index (for labels)"))
        reasons = {}
        for bucket, prefix, what in reads:
            objects = bucket.arn_for_objects(f"{prefix}*")
            self.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[objects]))
            self.role.add_to_policy(iam.PolicyStatement(actions=["s3:ListBucket"], resources=[bucket.bucket_arn],
                                                        conditions={"StringLike": {"s3:prefix": [f"{prefix}*"]}}))
            reasons[nag_resource_name(stack.resolve(objects))] = (
                f"The drift job reads {what}: objects whose keys are generated per hour under this one prefix.")
        writes = report_bucket.arn_for_objects(f"{self.report_prefix}*")
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[writes]))
        reasons[nag_resource_name(stack.resolve(writes))] = (
            "The drift job writes one report and one prediction index per window, keyed by the window's time, "
            "only under the report prefix.")
        encryption_key.grant(self.role, "kms:Decrypt", "kms:GenerateDataKey")
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        for resource, reason in reasons.items():
            cdk.Validations.of(policy).acknowledge(cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{resource}]", reason=reason))
        # The log group is created before the function with an explicit name, so no logs:CreateLogGroup.
        self.role.add_to_policy(iam.PolicyStatement(actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                                                    resources=[self.log_group.log_group_arn]))

    def _schedule(self, settings: DriftSchedule, stack: cdk.Stack) -> scheduler.Schedule:
        name = f"{self.name}-drift"[:64]
        schedule_arn = stack.format_arn(service="scheduler", resource="schedule", resource_name=f"default/{name}")
        role = iam.Role(self, "ScheduleRole", description=f"Lets schedule {name} invoke the drift job",
                        assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={
                            "StringEquals": {"aws:SourceAccount": stack.account, "aws:SourceArn": schedule_arn}}))
        schedule = scheduler.Schedule(
            self, "Schedule", schedule_name=name, enabled=settings.enabled,
            description=f"Runs the {self.metadata.model_name} drift job at {settings.expression}",
            schedule=scheduler.ScheduleExpression.expression(settings.expression),
            target=targets.LambdaInvoke(self.function, role=role, retry_attempts=2,
                                        max_event_age=cdk.Duration.hours(1),
                                        input=scheduler.ScheduleTargetInput.from_object(
                                            {"scheduled_time": scheduler.ContextAttribute.scheduled_time})))
        cdk.Validations.of(role.node.find_child("DefaultPolicy").node.default_child).acknowledge(cdk.Acknowledgment(
            id=f"AwsSolutions-IAM5[Resource::{nag_resource_name(stack.resolve(self.function.function_arn))}:*]",
            reason="CDK's grantInvoke for the Scheduler target covers this one function and its versions "
                   "(<function ARN>:*); no other function can be invoked."))
        return schedule

    # -- access and outputs ---------------------------------------------------------------------------------------
    def grant_run(self, grantee: iam.IGrantable) -> iam.Grant:
        """Let ``grantee`` start the job on demand (``python -m ops.monitor run``)."""
        return self.function.grant_invoke(grantee)

    def add_outputs(self) -> None:
        """Stack outputs the operator commands need: the function to run and where reports go."""
        cdk.CfnOutput(self, "DriftFunctionName", value=self.function.function_name,
                      description="python -m ops.monitor run --function <this>")
        cdk.CfnOutput(self, "DriftReportsPrefix", value=self.report_prefix)

    # -- metrics --------------------------------------------------------------------------------------------------
    @property
    def period(self) -> cdk.Duration:
        return self.schedule_settings.window

    def metric(self, name: str, *, feature: str | None = None, statistic: str = "Maximum",
               period: cdk.Duration | None = None) -> cloudwatch.Metric:
        return cloudwatch.Metric(namespace=self.namespace, metric_name=name, statistic=statistic,
                                 period=period or self.period,
                                 dimensions_map={FEATURE_DIMENSION: feature} if feature else None)

    def metric_feature_psi(self, feature: str) -> cloudwatch.Metric:
        return self.metric("PSI", feature=feature)

    def metric_feature_ks(self, feature: str) -> cloudwatch.Metric:
        return self.metric("KS", feature=feature)

    def metric_feature_missing_rate(self, feature: str) -> cloudwatch.Metric:
        return self.metric("MissingRate", feature=feature)

    def metric_prediction_psi(self) -> cloudwatch.Metric:
        return self.metric("PredictionPSI")

    def metric_prediction_ks(self) -> cloudwatch.Metric:
        return self.metric("PredictionKS")

    def metric_invalid_rate(self) -> cloudwatch.Metric:
        return self.metric("InvalidRate")

    def metric_rows_analysed(self) -> cloudwatch.Metric:
        return self.metric("RowsAnalysed", statistic="Sum")

    def metric_windows_analysed(self) -> cloudwatch.Metric:
        return self.metric("WindowsAnalysed", statistic="Sum")

    def metric_auc(self) -> cloudwatch.Metric:
        return self.metric("AUC", statistic="Minimum")

    def metric_accuracy(self) -> cloudwatch.Metric:
        return self.metric("Accuracy", statistic="Minimum")

    def metric_precision(self) -> cloudwatch.Metric:
        return self.metric("Precision", statistic="Minimum")

    # -- alarms ---------------------------------------------------------------------------------------------------
    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, *, threshold: float, description: str,
               comparison: cloudwatch.ComparisonOperator = cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
               missing: cloudwatch.TreatMissingData = cloudwatch.TreatMissingData.NOT_BREACHING,
               evaluation_periods: int = 1) -> cloudwatch.Alarm:
        return cloudwatch.Alarm(self, construct_id, metric=metric, threshold=threshold,
                                evaluation_periods=evaluation_periods, comparison_operator=comparison,
                                treat_missing_data=missing, alarm_description=description)

    def _alarms(self, alert_topic: sns.ITopic) -> None:
        model = self.metadata.model_name
        for index, feature in enumerate(self.feature_names):
            threshold = self.thresholds.feature_psi.get(feature, self.thresholds.psi)
            self.feature_alarms[feature] = self._alarm(
                f"FeatureDrift{index}", self.metric_feature_psi(feature), threshold=threshold,
                description=f"{model}: feature {feature} drifted from the training baseline (PSI >= {threshold:g}); "
                            "an hour without traffic is not drift (missing data: not breaching).")
        self.alarms["prediction"] = self._alarm(
            "PredictionDrift", self.metric_prediction_psi(), threshold=self.thresholds.prediction_psi,
            description=f"{model}: the score distribution drifted (PSI >= {self.thresholds.prediction_psi:g}).")
        self.alarms["invalid"] = self._alarm(
            "InvalidRecords", self.metric_invalid_rate(), threshold=self.thresholds.invalid_rate,
            description=f"{model}: {self.thresholds.invalid_rate:.0%} or more of the captured records were "
                        "unreadable, of the wrong width, non-numeric or NaN/Inf.")
        if self.schedule_settings.heartbeat:
            self.alarms["stalled"] = self._alarm(
                "JobStalled", self.metric_windows_analysed(), threshold=1,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                missing=cloudwatch.TreatMissingData.BREACHING, evaluation_periods=HEARTBEAT_PERIODS,
                description=f"{model}: the drift job finished no window for {HEARTBEAT_PERIODS} periods (it publishes "
                            "WindowsAnalysed every run, even without traffic, so missing data here is breaching).")
        if self.has_labels:
            self.alarms["quality"] = self._alarm(
                "QualityFloor", self.metric_auc(), threshold=self.thresholds.min_auc,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                description=f"{model}: AUC on labelled predictions fell below {self.thresholds.min_auc:g}; no "
                            "labels in a window is not a quality drop (missing data: not breaching).")
        action = cloudwatch_actions.SnsAction(alert_topic)
        for alarm in [*self.feature_alarms.values(), *self.alarms.values()]:
            alarm.add_alarm_action(action)
            alarm.add_ok_action(action)

    # -- dashboard ------------------------------------------------------------------------------------------------
    def dashboard_widgets(self) -> list[cloudwatch.IWidget]:
        psi_line = cloudwatch.HorizontalAnnotation(value=self.thresholds.psi, label="PSI threshold")
        widgets: list[cloudwatch.IWidget] = [
            cloudwatch.GraphWidget(title="Feature drift (PSI)", width=12,
                                   left=[self.metric_feature_psi(name) for name in self.feature_names],
                                   left_annotations=[psi_line]),
            cloudwatch.GraphWidget(title="Feature drift (KS)", width=12,
                                   left=[self.metric_feature_ks(name) for name in self.feature_names]),
            cloudwatch.GraphWidget(title="Prediction drift", width=8,
                                   left=[self.metric_prediction_psi(), self.metric_prediction_ks()]),
            cloudwatch.GraphWidget(title="Captured rows and invalid rate", width=8,
                                   left=[self.metric_rows_analysed()], right=[self.metric_invalid_rate()]),
            cloudwatch.AlarmStatusWidget(title="Drift alarms", width=8,
                                         alarms=[*self.feature_alarms.values(), *self.alarms.values()]),
        ]
        if self.has_labels:
            widgets.append(cloudwatch.GraphWidget(
                title="Quality on delayed labels", width=12,
                left=[self.metric_auc(), self.metric_accuracy(), self.metric_precision()],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=self.thresholds.min_auc, label="AUC floor")]))
        return widgets
