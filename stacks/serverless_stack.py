"""``<Model>-Serverless``: an ONNX model in Lambda behind API Gateway, an S3 upload trigger, alarms, a dashboard."""
from __future__ import annotations

import dataclasses

import aws_cdk as cdk
from constructs import Construct

from ml_constructs.common.alert_topic import AlertTopic
from ml_constructs.common.secure_storage import DataKey, ObjectExpiry, SecureBucket
from ml_constructs.serverless.alarms import ServerlessAlarms, ServerlessDashboard
from ml_constructs.monitoring.drift_monitor import DriftMonitor, DriftSource, LabelSource
from ml_constructs.serverless.model_function import LambdaModelFunction, RequestCapture
from ml_constructs.serverless.prediction_api import PredictionApi
from ml_constructs.serverless.upload_trigger import UploadTrigger, upload_function_concurrency
from stacks import drift_wiring
from stacks.deployment import Deployment

MIB = 1024 * 1024
CAPTURE_PREFIX = "capture/serverless"


class ServerlessStack(cdk.Stack):
    """Wires the serverless constructs from configuration; no AWS logic lives here."""

    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = deployment.config
        serverless, uploads = config.serverless, config.serverless.upload_trigger
        name = f"{deployment.base_name}-serverless"
        metadata = deployment.model

        self.data_key = DataKey(self, "DataKey",
                                description=f"Encrypts {name} uploads, results, failures, alerts, logs")
        self.alerts = AlertTopic(self, "Alerts", encryption_key=self.data_key.key, email=config.alerts.email)
        environment = {"MAX_REQUEST_BYTES": str(serverless.api.max_request_kb * 1024),
                       "MAX_INSTANCES": str(serverless.api.max_instances)}
        if uploads.enabled:
            environment.update({"INPUT_PREFIX": uploads.input_prefix, "OUTPUT_PREFIX": uploads.output_prefix,
                                "REJECTED_PREFIX": uploads.rejected_prefix,
                                "MAX_FILE_BYTES": str(uploads.max_file_mb * MIB)})
        # deploy.monitoring.engine builtin: the function writes a sample of its requests and answers here, and
        # the drift job reads them hourly (Model Monitor has no Lambda mode: model-monitor leaves this off).
        capture = None
        if config.monitoring.engine == "builtin":
            # Only the sampled requests expire (deploy.storage.capture_expiry_days); reports stay.
            self.capture_storage = SecureBucket(
                self, "CaptureStorage", encryption_key=self.data_key.key, lifecycle=config.storage.lifecycle(
                    ObjectExpiry(prefix=f"{CAPTURE_PREFIX}/", days=config.storage.capture_expiry_days)))
            capture = RequestCapture(bucket=self.capture_storage.bucket, prefix=CAPTURE_PREFIX,
                                     sample_percent=config.monitoring.builtin.serverless_sample_percent)
        self.model_function = LambdaModelFunction(
            self, "Model", artifacts_dir=str(metadata.artifacts_dir), encryption_key=self.data_key.key,
            service_name=name, architecture=serverless.architecture, tracing=serverless.tracing,
            sizing=dataclasses.replace(serverless.sizing, reserved_concurrency=upload_function_concurrency(
                configured=serverless.reserved_concurrency, upload_default=uploads.reserved_concurrency)
                if uploads.enabled else serverless.reserved_concurrency),
            async_invocation=uploads.async_invocation, environment=environment,
            log_retention_days=serverless.log_retention_days, metrics_namespace=deployment.metrics_namespace,
            capture=capture)

        self.api = PredictionApi(
            self, "Api", handler=self.model_function.alias, api_name=name, n_features=metadata.n_features,
            encryption_key=self.data_key.key, max_instances=serverless.api.max_instances, auth=serverless.api.auth,
            throttling=serverless.api.throttling,
            quota_per_day=serverless.api.quota_per_day, stage_name=serverless.api.stage_name,
            access_log_retention_days=serverless.api.access_log_retention_days,
            web_acl_arn=serverless.api.web_acl_arn, execution_logging=serverless.api.execution_logging,
            account_logging_role=serverless.api.create_account_logging_role)

        self.upload_trigger: UploadTrigger | None = None
        if uploads.enabled:
            self.data_storage = SecureBucket(self, "DataStorage", encryption_key=self.data_key.key,
                                             lifecycle=config.storage.lifecycle())
            self.upload_trigger = UploadTrigger(
                self, "UploadTrigger", bucket=self.data_storage.bucket, encryption_key=self.data_key.key,
                target=self.model_function.alias, role=self.model_function.role, input_prefix=uploads.input_prefix,
                output_prefix=uploads.output_prefix, rejected_prefix=uploads.rejected_prefix)

        limits = serverless.alarms
        self.alarms = ServerlessAlarms(self, "Alarms", function=self.model_function, api=self.api, name_prefix=name,
                                       thresholds=limits.to_construct())
        self.alerts.notify_on(*self.alarms.all_alarms)
        self.dashboard = ServerlessDashboard(self, "Dashboard", function=self.model_function, api=self.api,
                                             alarms=self.alarms, dashboard_name=name)

        self.drift: DriftMonitor | None = None
        if capture is not None:
            builtin = config.monitoring.builtin
            bucket = self.capture_storage.bucket
            self.drift = DriftMonitor(
                self, "Drift", artifacts_dir=metadata.artifacts_dir, name=name,
                source=DriftSource(bucket=bucket, prefix=CAPTURE_PREFIX, format="samples"),
                report_bucket=bucket, report_prefix=drift_wiring.REPORT_PREFIX,
                labels=LabelSource(bucket=bucket, prefix=drift_wiring.LABELS_PREFIX),
                encryption_key=self.data_key.key, alert_topic=self.alerts.topic,
                thresholds=drift_wiring.thresholds(builtin), schedule=drift_wiring.scheduled(builtin))
            self.dashboard.dashboard.add_widgets(*self.drift.dashboard_widgets())
            self.drift.add_outputs()
            cdk.CfnOutput(self, "CaptureUri", value=f"s3://{bucket.bucket_name}/{CAPTURE_PREFIX}/")

        cdk.CfnOutput(self, "PredictUrl", value=self.api.url)
        cdk.CfnOutput(self, "FunctionAliasArn", value=self.model_function.alias.function_arn)
        cdk.CfnOutput(self, "ModelVersion", value=metadata.model_version)
        cdk.CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)
        if self.upload_trigger:
            cdk.CfnOutput(self, "UploadUri", value=f"s3://{self.data_storage.bucket.bucket_name}/{uploads.input_prefix}")
        if self.api.api_key:
            cdk.CfnOutput(self, "ApiKeyId", value=self.api.api_key.key_id)
