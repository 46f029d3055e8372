"""``<Model>-Realtime``: a SageMaker endpoint with autoscaling, data capture, alarms and a dashboard."""
from __future__ import annotations

import dataclasses

import aws_cdk as cdk
from aws_cdk import aws_sns as sns
from constructs import Construct

from ml_constructs.common.alert_topic import AlertTopic
from ml_constructs.common.model_package import ModelPackage
from ml_constructs.common.naming import pascal_case
from ml_constructs.common.secure_storage import DataKey, ObjectExpiry, SecureBucket
from ml_constructs.monitoring.drift_monitor import DriftMonitor, DriftSource, LabelSource
from ml_constructs.monitoring.model_monitor import ModelMonitor
from ml_constructs.realtime.alarms import EndpointAlarms, EndpointDashboard
from ml_constructs.realtime.endpoint import DEFAULT_CAPTURE_PREFIX, DataCapture, ProductionVariant, RealtimeEndpoint, ShadowVariant
from ml_constructs.realtime.modes import AsyncInference, AsyncScaling, ServerlessCapacity
from ml_constructs.realtime.update_guard.construct import EndpointUpdateGuard, UpdateRemedies
from stacks import drift_wiring
from stacks.deployment import Deployment


class RealtimeStack(cdk.Stack):
    """Wires the real-time constructs from configuration; no AWS logic lives here."""

    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        config = deployment.config
        realtime = config.realtime
        self.storage_settings = config.storage
        endpoint_name = deployment.endpoint_name

        self.data_key = DataKey(self, "DataKey", description=f"Encrypts {endpoint_name} data capture and alerts")
        self.alerts = AlertTopic(self, "Alerts", encryption_key=self.data_key.key, email=config.alerts.email)

        # One package per model: ``main`` (deploy.model.artifacts_dir) and, when set, ``candidate``.
        folders = {"main": deployment.model.artifacts_dir}
        if deployment.candidate is not None:
            folders["candidate"] = deployment.candidate.artifacts_dir
        ids = {role: f"Package{pascal_case(folder.name)}" for role, folder in folders.items()}
        if len(set(ids.values())) < len(ids):  # two folders of the same name in different places
            ids["candidate"] += "Candidate"
        self.packages: dict[str, ModelPackage] = {
            role: ModelPackage(self, ids[role], artifacts_dir=str(folder),
                               framework_version=config.model.framework_version)
            for role, folder in folders.items()}
        variants = [ProductionVariant(name=variant.name, package=self.packages[variant.model],
                                      instance_type=variant.instance_type,
                                      initial_instance_count=variant.initial_instance_count,
                                      initial_weight=variant.initial_weight)
                    for variant in realtime.active_variants(has_candidate=deployment.candidate is not None)]
        shadow = None
        if realtime.rollout == "shadow":
            # The candidate's variant becomes a shadow: it gets copies of requests and answers nobody.
            candidates = [variant for variant in variants if variant.package is self.packages.get("candidate")]
            variants = [variant for variant in variants if variant not in candidates]
            shadow = ShadowVariant(variant=dataclasses.replace(candidates[0], initial_weight=1.0),
                                   sampling_percent=realtime.shadow.sampling_percent)

        data_capture = None
        if realtime.capture_enabled:
            # Only captured traffic expires: Model Monitor keeps its baseline and reports in the same bucket.
            self.capture_storage = SecureBucket(
                self, "CaptureStorage", encryption_key=self.data_key.key, lifecycle=config.storage.lifecycle(
                    ObjectExpiry(prefix=f"{DEFAULT_CAPTURE_PREFIX}/", days=config.storage.capture_expiry_days)))
            data_capture = DataCapture(bucket=self.capture_storage.bucket, encryption_key=self.data_key.key,
                                       prefix=DEFAULT_CAPTURE_PREFIX,
                                       sampling_percent=realtime.data_capture.sampling_percent)

        guardrails = realtime.guardrails.to_construct() if realtime.guardrails.enabled else None
        serverless = async_inference = None
        if realtime.mode == "serverless":
            settings = realtime.serverless
            serverless = ServerlessCapacity(memory_mb=settings.memory_mb, max_concurrency=settings.max_concurrency,
                                            provisioned_concurrency=settings.provisioned_concurrency)
        elif realtime.mode == "async":
            async_inference = self._async_inference(realtime.async_)
        if guardrails and realtime.mode != "instances":
            # Canary and linear steps count instances; these endpoints shift all at once, with the same bake
            # and rollback alarms (docs/realtime-modes.md).
            guardrails = dataclasses.replace(guardrails, strategy="ALL_AT_ONCE", size_unit="INSTANCE_COUNT", size=1)

        self.endpoint = RealtimeEndpoint(
            self, "Endpoint", endpoint_name=endpoint_name, variants=variants, data_capture=data_capture,
            volume_key=self.data_key.key, guardrails=guardrails, ownership=realtime.ownership,
            autoscaling=realtime.autoscaling.to_construct() if realtime.mode == "instances" else None,
            serverless=serverless, async_inference=async_inference, shadow=shadow)

        self.alarms = EndpointAlarms(self, "Alarms", endpoint=self.endpoint,
                                     thresholds=realtime.alarms.to_construct())
        self.alerts.notify_on(*self.alarms.all_alarms)
        if guardrails and guardrails.auto_rollback:
            self.endpoint.add_rollback_alarms(*self.alarms.rollback_alarms)
        self.update_guard = EndpointUpdateGuard(self, "UpdateGuard", endpoint=self.endpoint, log_key=self.data_key.key,
                                                remedies=update_remedies(self.stack_name))
        self.dashboard = EndpointDashboard(self, "Dashboard", endpoint=self.endpoint, alarms=self.alarms)

        cdk.CfnOutput(self, "EndpointName", value=endpoint_name)
        cdk.CfnOutput(self, "AlertTopicArn", value=self.alerts.topic.topic_arn)
        if data_capture:
            cdk.CfnOutput(self, "DataCaptureUri", value=data_capture.destination_uri)
        if async_inference:
            cdk.CfnOutput(self, "AsyncBucketName", value=async_inference.bucket.bucket_name)

        # deploy.monitoring.engine: the built-in drift job reads data capture (none on a serverless endpoint, so
        # no drift job there); Model Monitor (deploy.realtime.monitor) only where the account still has it.
        self.drift: DriftMonitor | None = None
        self.monitor: ModelMonitor | None = None
        if config.monitoring.engine == "builtin" and data_capture is not None:
            builtin = config.monitoring.builtin
            self.drift = DriftMonitor(
                self, "Drift", artifacts_dir=deployment.model.artifacts_dir, name=endpoint_name,
                source=DriftSource(bucket=data_capture.bucket, prefix=f"{data_capture.prefix}/{endpoint_name}",
                                   format="capture"),
                report_bucket=data_capture.bucket, report_prefix=drift_wiring.REPORT_PREFIX,
                labels=LabelSource(bucket=data_capture.bucket, prefix=realtime.monitor.model_quality.ground_truth_prefix),
                encryption_key=self.data_key.key, alert_topic=self.alerts.topic,
                thresholds=drift_wiring.thresholds(builtin), schedule=drift_wiring.scheduled(builtin))
            self.dashboard.dashboard.add_widgets(*self.drift.dashboard_widgets())
            self.drift.add_outputs()
        if config.monitoring.engine == "model-monitor" and realtime.model_monitor_enabled:
            monitor = realtime.monitor
            self.monitor = ModelMonitor(
                self, "Monitor", endpoint=self.endpoint, artifacts_dir=deployment.model.artifacts_dir,
                encryption_key=self.data_key.key, alert_topic=self.alerts,
                alert_on_failed_runs=monitor.alert_on_failed_runs,
                baseline_timeout=cdk.Duration.minutes(monitor.baseline_timeout_minutes),
                resources=monitor.resources, data_quality=monitor.data_quality.to_construct(),
                model_quality=monitor.model_quality.to_construct(decision_threshold=deployment.decision_threshold))
            self.monitor.alarms.add_to_dashboard(self.dashboard.dashboard)
            self.monitor.add_outputs()


    def _async_inference(self, settings) -> AsyncInference:
        """The bucket and the two outcome topics an asynchronous endpoint writes to, all under the data key."""
        self.async_storage = SecureBucket(self, "AsyncStorage", encryption_key=self.data_key.key,
                                          lifecycle=self.storage_settings.lifecycle())
        self.async_topics = {outcome: sns.Topic(self, f"Async{outcome}", master_key=self.data_key.key,
                                                enforce_ssl=True)
                             for outcome in ("Success", "Failure")}
        return AsyncInference(
            bucket=self.async_storage.bucket, encryption_key=self.data_key.key,
            success_topic=self.async_topics["Success"], error_topic=self.async_topics["Failure"],
            max_concurrent_invocations_per_instance=settings.max_concurrent_invocations_per_instance,
            scaling=AsyncScaling(min_capacity=settings.min_capacity, max_capacity=settings.max_capacity,
                                 backlog_per_instance_target=settings.backlog_per_instance_target))


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
