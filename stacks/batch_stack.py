"""``<Model>-Batch``: nightly Batch Transform on a schedule, predictions stored by date and model version."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from ml_constructs.batch.alarms import BatchAlarms, BatchDashboard
from ml_constructs.batch.schedule import ScoringSchedule
from ml_constructs.batch.scoring import PREDICTIONS_PREFIX, BatchScoring, DriftCheck, ScoringStorage
from ml_constructs.common.alert_topic import AlertTopic
from ml_constructs.common.model_package import ModelPackage
from ml_constructs.common.secure_storage import DataKey, SecureBucket
from ml_constructs.monitoring.drift_monitor import DriftMonitor, DriftSource
from stacks import drift_wiring
from stacks.deployment import Deployment


class BatchStack(cdk.Stack):
    """Wires the batch constructs from configuration; no AWS logic lives here."""

    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = deployment.config
        batch = config.batch
        name = f"{deployment.base_name}-batch"
        job_name_prefix = deployment.batch_job_prefix

        self.data_key = DataKey(self, "DataKey", description=f"Encrypts {name} predictions, manifests and alerts")
        self.alerts = AlertTopic(self, "Alerts", encryption_key=self.data_key.key, email=config.alerts.email)

        storage = batch.storage
        input_key: kms.IKey | None = None
        if storage.input_bucket_name:
            input_bucket = s3.Bucket.from_bucket_name(self, "InputBucket", storage.input_bucket_name)
            if storage.input_kms_key_arn:
                input_key = kms.Key.from_key_arn(self, "InputKey", storage.input_kms_key_arn)
            access_logs = None
        else:
            self.input_storage = SecureBucket(self, "InputStorage", encryption_key=self.data_key.key,
                                              lifecycle=config.storage.lifecycle())
            input_bucket, input_key = self.input_storage.bucket, self.data_key.key
            access_logs = self.input_storage.access_logs_bucket
        if storage.output_bucket_name:
            output_bucket = s3.Bucket.from_bucket_name(self, "OutputBucket", storage.output_bucket_name)
        else:
            self.output_storage = SecureBucket(self, "OutputStorage", encryption_key=self.data_key.key,
                                               access_logs_bucket=access_logs, lifecycle=config.storage.lifecycle())
            output_bucket = self.output_storage.bucket

        # deploy.monitoring.engine builtin: the drift job runs as the workflow's step after each transform
        # (Model Monitor has no batch mode, so the model-monitor engine leaves batch without drift checks).
        self.drift: DriftMonitor | None = None
        if config.monitoring.engine == "builtin":
            self.drift = DriftMonitor(
                self, "Drift", artifacts_dir=deployment.model.artifacts_dir, name=name,
                source=DriftSource(bucket=input_bucket, prefix=storage.default_input_prefix, format="batch",
                                   output_bucket=output_bucket, output_prefix=PREDICTIONS_PREFIX),
                report_bucket=output_bucket, report_prefix=drift_wiring.REPORT_PREFIX,
                encryption_key=self.data_key.key, alert_topic=self.alerts.topic,
                thresholds=drift_wiring.thresholds(config.monitoring.builtin),
                schedule=drift_wiring.after_each_batch_run(runs_scheduled=batch.schedule.enabled))
            if input_key is not None and input_key is not self.data_key.key:
                input_key.grant(self.drift.role, "kms:Decrypt")

        self.package = ModelPackage(self, "Package", artifacts_dir=str(deployment.model.artifacts_dir),
                                    framework_version=config.model.framework_version)
        self.scoring = BatchScoring(
            self, "Scoring", package=self.package, alert_topic=self.alerts.topic, job_name_prefix=job_name_prefix,
            state_machine_name=name, execution_timeout=cdk.Duration.minutes(batch.execution_timeout_minutes),
            storage=ScoringStorage(input_bucket=input_bucket, output_bucket=output_bucket, data_key=self.data_key.key,
                                   input_key=input_key, default_input_prefix=storage.default_input_prefix),
            transform=batch.transform.to_construct(), retry=batch.retry.to_construct(),
            drift=DriftCheck(function=self.drift.function) if self.drift else None)

        self.schedule = ScoringSchedule(
            self, "Schedule", state_machine=self.scoring.state_machine, schedule_name=name,
            expression=batch.schedule.expression, time_zone=batch.schedule.time_zone, enabled=batch.schedule.enabled)
        self.alarms = BatchAlarms(self, "Alarms", scoring=self.scoring, name=name,
                                  schedule=self.schedule if batch.schedule.enabled else None)
        self.alerts.notify_on(*self.alarms.all_alarms)
        self.dashboard = BatchDashboard(self, "Dashboard", scoring=self.scoring, name=name, alarms=self.alarms,
                                        schedule=self.schedule)

        if self.drift:
            self.dashboard.dashboard.add_widgets(*self.drift.dashboard_widgets())
            self.drift.add_outputs()

        cdk.CfnOutput(self, "StateMachineArn", value=self.scoring.state_machine.state_machine_arn)
        cdk.CfnOutput(self, "InputBucketName", value=input_bucket.bucket_name)
        cdk.CfnOutput(self, "DefaultInputUri", value=self.scoring.storage.default_input_uri)
        cdk.CfnOutput(self, "PredictionsUri", value=self.scoring.storage.predictions_uri)
        cdk.CfnOutput(self, "ModelVersion", value=self.package.model_version)
        cdk.CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)
