"""``<Model>-Realtime``: a SageMaker endpoint with autoscaling, data capture, alarms and a dashboard."""
from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from constructs import Construct

from ml_constructs.alert_topic import AlertTopic
from ml_constructs.endpoint_alarms import EndpointAlarms, EndpointAlarmThresholds, EndpointDashboard
from ml_constructs.endpoint_update_guard import EndpointUpdateGuard, UpdateRemedies
from ml_constructs.model_monitor import DataQuality, ModelMonitor, ModelQuality, MonitorResources
from ml_constructs.model_package import ModelPackage
from ml_constructs.naming import pascal_case
from ml_constructs.realtime_endpoint import (DEFAULT_CAPTURE_PREFIX, Autoscaling, DataCapture, ProductionVariant,
                                             RealtimeEndpoint)
from ml_constructs.secure_storage import DEFAULT_CAPTURE_EXPIRY_DAYS, DataKey, Lifecycle, ObjectExpiry, SecureBucket
from stacks.config import AppConfig


class RealtimeStack(cdk.Stack):
    """Wires the real-time constructs from configuration; no AWS logic lives here."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        realtime = config.realtime
        endpoint_name = realtime.endpoint_name or f"{config.model.name}-realtime"

        self.data_key = DataKey(self, "DataKey", description=f"Encrypts {endpoint_name} data capture and alerts")
        self.alerts = AlertTopic(self, "Alerts", encryption_key=self.data_key.key, email=config.alerts.email)

        packages: dict[str, ModelPackage] = {}
        variants = []
        for variant in realtime.variants:
            artifacts_dir = variant.artifacts_dir or config.model.artifacts_dir
            if artifacts_dir not in packages:
                packages[artifacts_dir] = ModelPackage(
                    self, f"Package{pascal_case(Path(artifacts_dir).name)}", artifacts_dir=artifacts_dir,
                    framework_version=config.model.framework_version)
            variants.append(ProductionVariant(
                name=variant.name, package=packages[artifacts_dir], instance_type=variant.instance_type,
                initial_instance_count=variant.initial_instance_count, initial_weight=variant.initial_weight))
        self.packages = packages

        data_capture = None
        if realtime.data_capture.enabled:
            # Only captured traffic expires: Model Monitor keeps its baseline and reports in the same bucket.
            self.capture_storage = SecureBucket(
                self, "CaptureStorage", encryption_key=self.data_key.key, lifecycle=Lifecycle(expirations=(
                    ObjectExpiry(prefix=f"{DEFAULT_CAPTURE_PREFIX}/", days=DEFAULT_CAPTURE_EXPIRY_DAYS),)))
            data_capture = DataCapture(bucket=self.capture_storage.bucket, encryption_key=self.data_key.key,
                                       prefix=DEFAULT_CAPTURE_PREFIX,
                                       sampling_percent=realtime.data_capture.sampling_percent)

        scaling = realtime.autoscaling
        self.endpoint = RealtimeEndpoint(
            self, "Endpoint", endpoint_name=endpoint_name, variants=variants, data_capture=data_capture,
            volume_key=self.data_key.key,
            guardrails=realtime.guardrails.to_construct() if realtime.guardrails.enabled else None,
            ownership=realtime.ownership,
            autoscaling=Autoscaling(
                min_capacity=scaling.min_capacity, max_capacity=scaling.max_capacity,
                invocations_per_instance=scaling.invocations_per_instance,
                scale_in_cooldown=cdk.Duration.seconds(scaling.scale_in_cooldown_s),
                scale_out_cooldown=cdk.Duration.seconds(scaling.scale_out_cooldown_s)) if scaling.enabled else None)

        self.alarms = EndpointAlarms(self, "Alarms", endpoint=self.endpoint, thresholds=EndpointAlarmThresholds(
            latency_p99_ms=realtime.alarms.latency_p99_ms,
            errors_5xx_per_5min=realtime.alarms.errors_5xx_per_5min))
        self.alerts.notify_on(*self.alarms.all_alarms)
        if realtime.guardrails.enabled and realtime.guardrails.auto_rollback:
            self.endpoint.add_rollback_alarms(*self.alarms.all_alarms)
        self.update_guard = EndpointUpdateGuard(self, "UpdateGuard", endpoint=self.endpoint, log_key=self.data_key.key,
                                                remedies=update_remedies(self.stack_name))
        self.dashboard = EndpointDashboard(self, "Dashboard", endpoint=self.endpoint, alarms=self.alarms)

        cdk.CfnOutput(self, "EndpointName", value=endpoint_name)
        cdk.CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)
        if data_capture:
            cdk.CfnOutput(self, "DataCaptureUri", value=data_capture.destination_uri)

        # Model Monitor (deploy.realtime.monitor): baseline from the training data, schedules, alarms.
        if realtime.monitor.enabled:
            monitor, quality = realtime.monitor, realtime.monitor.model_quality
            self.monitor = ModelMonitor(
                self, "Monitor", endpoint=self.endpoint, artifacts_dir=config.model.artifacts_dir,
                encryption_key=self.data_key.key, alert_topic=self.alerts,
                alert_on_failed_runs=monitor.alert_on_failed_runs,
                baseline_timeout=cdk.Duration.minutes(monitor.baseline_timeout_minutes),
                resources=MonitorResources(instance_type=monitor.instance_type,
                                           volume_size_gb=monitor.volume_size_gb,
                                           max_runtime=cdk.Duration.seconds(monitor.max_runtime_s)),
                data_quality=DataQuality(schedule=monitor.data_quality.schedule,
                                         drift_threshold=monitor.data_quality.drift_threshold),
                model_quality=ModelQuality(
                    schedule=quality.schedule, probability_attribute=quality.probability_attribute,
                    probability_threshold=quality.probability_threshold,
                    ground_truth_prefix=quality.ground_truth_prefix,
                    label_delay=cdk.Duration.hours(quality.label_delay_hours),
                    min_auc=quality.min_auc) if quality.enabled else None)
            self.monitor.alarms.add_to_dashboard(self.dashboard.dashboard)
            self.monitor.add_outputs()


def update_remedies(stack_name: str) -> UpdateRemedies:
    """The update guard's failure messages, in this app's config keys and commands."""
    deploy = f"npx cdk deploy {stack_name}"
    return UpdateRemedies(
        instance_type_change=(
            "Variant {variant} is autoscaled and its instance type changes from {old_type} to {new_type}; SageMaker "
            "refuses that update while the variant is a registered scalable target, and CloudFormation cannot "
            "deregister it first (aws-cdk #29626). Nothing was changed. Do it in two deploys: (1) with {variant} "
            f"still on {{old_type}} in cdk.json, run `{deploy} -c deploy.realtime.autoscaling.enabled=false` "
            "(removes the scalable targets; the endpoint is not updated); (2) set {new_type} in cdk.json and run "
            f"`{deploy}` (the endpoint moves to {{new_type}}, then autoscaling is registered again)."),
        variant_set_change=(
            "The endpoint's variants change from [{old_names}] to [{new_names}] while deployment guardrails are on; "
            "SageMaker requires blue/green and rolling updates to keep the variant names. Nothing was changed. "
            f"Deploy this change once without guardrails, with weights and counts from cdk.json: `{deploy} "
            "-c deploy.realtime.guardrails.enabled=false -c deploy.realtime.weights_owner=config "
            "-c deploy.realtime.instance_counts_owner=config`; later deploys use guardrails again."))
