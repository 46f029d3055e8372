"""A SageMaker real-time endpoint: models, endpoint config (variants, data capture), endpoint, autoscaling,
deployment guardrails with auto-rollback, and who owns weights and instance counts across updates."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Sequence

import aws_cdk as cdk
import jsii
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct, IValidation

from ml_constructs.common.model_package import ModelPackage
from ml_constructs.common.instance_types import has_instance_storage, is_burstable
from ml_constructs.common.naming import nag_resource_name, pascal_case
from ml_constructs.realtime.guardrails import MAX_ROLLBACK_ALARMS, DeploymentGuardrails, FleetBounds
from ml_constructs.realtime.modes import AsyncInference, ServerlessCapacity, async_endpoint_metric, scale_on_backlog
from ml_constructs.realtime.variant_ownership import VariantOwnership

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_METRIC_PERIOD = cdk.Duration.minutes(1)
#: Captured requests and responses land under this prefix of the capture bucket.
DEFAULT_CAPTURE_PREFIX = "data-capture"
SAGEMAKER_NAMESPACE = "AWS/SageMaker"
#: CPU, memory and disk are published per instance group here, not under AWS/SageMaker.
INSTANCE_METRICS_NAMESPACE = "/aws/sagemaker/Endpoints"
DESIRED_INSTANCE_COUNT = "sagemaker:variant:DesiredInstanceCount"


@dataclass(frozen=True, kw_only=True)
class ProductionVariant:
    """One model version on its own instances, receiving ``initial_weight`` / sum(weights) of traffic."""

    name: str
    package: ModelPackage
    instance_type: str = DEFAULT_INSTANCE_TYPE
    initial_instance_count: int = 1
    initial_weight: float = 1.0


@dataclass(frozen=True, kw_only=True)
class Autoscaling:
    """Target tracking on SageMakerVariantInvocationsPerInstance (invocations per instance per minute)."""

    min_capacity: int = 1
    max_capacity: int = 10
    invocations_per_instance: int = 1000
    scale_in_cooldown: cdk.Duration = cdk.Duration.minutes(5)
    scale_out_cooldown: cdk.Duration = cdk.Duration.minutes(1)


@dataclass(frozen=True, kw_only=True)
class DataCapture:
    """Capture requests and responses to ``s3://<bucket>/<prefix>/`` encrypted with ``encryption_key``."""

    bucket: s3.IBucket
    encryption_key: kms.IKey
    prefix: str = DEFAULT_CAPTURE_PREFIX
    sampling_percent: int = 100

    @property
    def destination_uri(self) -> str:
        return f"s3://{self.bucket.bucket_name}/{self.prefix}"


@dataclass(frozen=True, kw_only=True)
class ShadowVariant:
    """A candidate that receives ``sampling_percent`` % of production requests as copies; its answers go nowhere."""

    variant: ProductionVariant
    sampling_percent: int = 50


def fleet_bounds(variants: Sequence[ProductionVariant], autoscaling: Autoscaling | None,
                 ownership: VariantOwnership) -> dict[str, FleetBounds]:
    """Instances each variant may have when an update starts (its new fleet is sized from that)."""
    scaling_range = (autoscaling.min_capacity, autoscaling.max_capacity) if autoscaling else None
    return {variant.name: ownership.fleet_bounds(initial_instance_count=variant.initial_instance_count,
                                                 autoscaling_range=scaling_range) for variant in variants}


def _validate(*, endpoint_name: str, variants: Sequence[ProductionVariant], autoscaling: Autoscaling | None,
              data_capture: DataCapture | None, guardrails: DeploymentGuardrails | None,
              ownership: VariantOwnership, serverless: ServerlessCapacity | None = None,
              async_inference: AsyncInference | None = None, shadow: ShadowVariant | None = None) -> None:
    problems: list[str] = _mode_problems(variants=variants, autoscaling=autoscaling, data_capture=data_capture,
                                         serverless=serverless, async_inference=async_inference, shadow=shadow)
    if not variants:
        problems.append("at least one production variant is required")
    names = [variant.name for variant in variants]
    if len(set(names)) != len(names):
        problems.append(f"variant names must be unique, got {names}")
    if variants and sum(variant.initial_weight for variant in variants) <= 0:
        problems.append("at least one variant needs an initial_weight above 0")
    if not re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", endpoint_name):
        problems.append(f"endpoint_name {endpoint_name!r} must be letters, digits and hyphens (max 63)")
    for variant in variants:
        if autoscaling and is_burstable(variant.instance_type):
            problems.append(f"variant {variant.name}: burstable instance type {variant.instance_type} cannot autoscale")
    if len({has_instance_storage(variant.instance_type) for variant in variants}) > 1:
        problems.append("variants mix instance types with local NVMe storage and EBS-backed ones; one endpoint "
                        "config either has a KMS volume key (EBS only) or none (NVMe only), so use one kind")
    if autoscaling and not 1 <= autoscaling.min_capacity <= autoscaling.max_capacity:
        problems.append(f"autoscaling needs 1 <= min_capacity <= max_capacity, got "
                        f"{autoscaling.min_capacity}..{autoscaling.max_capacity}")
    if data_capture and not 0 < data_capture.sampling_percent <= 100:
        problems.append(f"data capture sampling_percent must be 1..100, got {data_capture.sampling_percent}")
    if guardrails and variants and (serverless or async_inference) and guardrails.strategy != "ALL_AT_ONCE":
        problems.append(f"guardrails.strategy: {guardrails.strategy} sizes its steps in instances; a serverless or "
                        "asynchronous endpoint shifts ALL_AT_ONCE (with the same bake and rollback alarms)")
    elif guardrails and variants:
        for field, message in guardrails.problems(
                fleets=fleet_bounds(variants, autoscaling, ownership),
                instance_types={variant.name: variant.instance_type for variant in variants}):
            problems.append(f"guardrails.{field}: {message}")
    if problems:
        raise ValueError("RealtimeEndpoint: " + "; ".join(problems))


def _mode_problems(*, variants: Sequence[ProductionVariant], autoscaling: Autoscaling | None,
                   data_capture: DataCapture | None, serverless: ServerlessCapacity | None,
                   async_inference: AsyncInference | None, shadow: ShadowVariant | None) -> list[str]:
    """What SageMaker refuses to combine with Serverless Inference, asynchronous inference and shadow variants."""
    problems: list[str] = []
    if serverless and async_inference:
        problems.append("an endpoint is either serverless or asynchronous, not both")
    if serverless:
        problems += serverless.problems()
        if len(variants) > 1:
            problems.append("a serverless endpoint serves one production variant (no canary variants)")
        if data_capture:
            problems.append("serverless endpoints do not support data capture")
        if shadow:
            problems.append("serverless endpoints do not support shadow variants")
        if autoscaling:
            problems.append("serverless endpoints scale by concurrency, not instance autoscaling")
    if async_inference:
        problems += async_inference.problems()
        if shadow:
            problems.append("asynchronous endpoints do not support shadow variants")
        if autoscaling:
            problems.append("asynchronous endpoints scale on their backlog (AsyncScaling), not invocations")
    if shadow:
        if len(variants) != 1:
            problems.append(f"shadow testing needs exactly one production variant, got {len(variants)}")
        if not 1 <= shadow.sampling_percent <= 100:
            problems.append(f"shadow sampling_percent must be 1..100, got {shadow.sampling_percent}")
        if shadow.variant.name in {variant.name for variant in variants}:
            problems.append(f"shadow variant name {shadow.variant.name!r} is already a production variant")
    return problems


class RealtimeEndpoint(Construct):
    """A SageMaker endpoint serving one or more model packages as weighted production variants.

    The endpoint name is fixed up front: alarms and scaling targets reference it by name, which
    avoids a dependency cycle between the endpoint and its rollback alarms.

    ``guardrails`` (default: none, i.e. SageMaker's all-at-once blue/green) shape every later
    ``UpdateEndpoint``; alarms passed to :meth:`add_rollback_alarms` roll an update back.
    ``ownership`` decides whether live weights and instance counts survive an update.

    Modes that keep no instances running: ``serverless`` (Serverless Inference), ``async_inference`` (queued
    requests, instances scale to zero on the backlog); ``shadow`` adds a candidate that sees copies of requests.
    """

    def __init__(self, scope: Construct, construct_id: str, *, endpoint_name: str,
                 variants: Sequence[ProductionVariant], autoscaling: Autoscaling | None = None,
                 data_capture: DataCapture | None = None, volume_key: kms.IKey | None = None,
                 guardrails: DeploymentGuardrails | None = None,
                 ownership: VariantOwnership = VariantOwnership(), serverless: ServerlessCapacity | None = None,
                 async_inference: AsyncInference | None = None, shadow: ShadowVariant | None = None) -> None:
        super().__init__(scope, construct_id)
        _validate(endpoint_name=endpoint_name, variants=variants, autoscaling=autoscaling, data_capture=data_capture,
                  guardrails=guardrails, ownership=ownership, serverless=serverless, async_inference=async_inference,
                  shadow=shadow)
        self.serverless = serverless
        self.async_inference = async_inference
        self.shadow = shadow
        self.endpoint_name = endpoint_name
        self.variants = tuple(variants)
        self.data_capture = data_capture
        self.autoscaling = autoscaling
        self.guardrails = guardrails
        self.ownership = ownership
        self.rollback_alarms: list[cloudwatch.IAlarm] = []

        self.role = iam.Role(self, "ExecutionRole", assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                             description=f"Runs the models of SageMaker endpoint {endpoint_name}")
        self._grant_runtime_permissions(volume_key)

        self.models: dict[str, sagemaker.CfnModel] = {}
        for variant in self.all_variants:
            variant.package.grant_read(self.role)
            model = sagemaker.CfnModel(
                self, f"Model{pascal_case(variant.name)}", execution_role_arn=self.role.role_arn,
                # Serverless Inference refuses network-isolated models (SageMaker's serverless exclusions).
                enable_network_isolation=serverless is None,
                primary_container=sagemaker.CfnModel.ContainerDefinitionProperty(
                    image=variant.package.image_uri, model_data_url=variant.package.model_data_url,
                    environment=variant.package.environment))
            model.node.add_dependency(self.role)  # the model validates the image and artifact with the role
            self.models[variant.name] = model

        self.endpoint_config = sagemaker.CfnEndpointConfig(
            self, "EndpointConfig",
            production_variants=[self._variant_property(variant) for variant in self.variants],
            shadow_production_variants=[self._variant_property(
                shadow.variant, weight=self.variants[0].initial_weight * shadow.sampling_percent / 100)]
            if shadow else None,
            async_inference_config=async_inference.config() if async_inference else None,
            data_capture_config=self._data_capture_config(),
            # A serverless endpoint has no instance volume to encrypt; SageMaker refuses KmsKeyId for it.
            kms_key_id=None if serverless else self._volume_key_id(volume_key))
        self.endpoint = sagemaker.CfnEndpoint(
            self, "Endpoint", endpoint_name=endpoint_name,
            endpoint_config_name=self.endpoint_config.attr_endpoint_config_name,
            retain_all_variant_properties=ownership.retain_all_variant_properties,
            exclude_retained_variant_properties=ownership.exclude_retained_variant_properties())
        self._render_deployment_config()
        self.node.add_validation(_RollbackAlarmValidation(self))

        self.scalable_targets: dict[str, appscaling.ScalableTarget] = {}
        if autoscaling:
            for variant in self.variants:
                self.scalable_targets[variant.name] = self._autoscale(variant, autoscaling)
        if async_inference:
            scaling = async_inference.scaling
            for variant in self.variants:
                target = self._scalable_target(variant, scaling.min_capacity, scaling.max_capacity)
                scale_on_backlog(target, endpoint_name=endpoint_name, scaling=scaling)
                self.scalable_targets[variant.name] = target

    @property
    def all_variants(self) -> tuple[ProductionVariant, ...]:
        """Production variants, then the shadow variant if any."""
        return self.variants + ((self.shadow.variant,) if self.shadow else ())

    def _variant_property(self, variant: ProductionVariant, *,
                          weight: float | None = None) -> sagemaker.CfnEndpointConfig.ProductionVariantProperty:
        model_name = self.models[variant.name].attr_model_name
        if self.serverless:
            return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
                variant_name=variant.name, model_name=model_name, initial_variant_weight=variant.initial_weight,
                serverless_config=self.serverless.config())
        return sagemaker.CfnEndpointConfig.ProductionVariantProperty(
            variant_name=variant.name, model_name=model_name, instance_type=variant.instance_type,
            initial_instance_count=variant.initial_instance_count,
            initial_variant_weight=variant.initial_weight if weight is None else weight)

    # -- deployment guardrails ---------------------------------------------------------------------------------------
    def add_rollback_alarms(self, *alarms: cloudwatch.IAlarm) -> None:
        """Roll an endpoint update back when any of ``alarms`` fires during its bake periods.

        SageMaker reads the alarms with the endpoint's execution role ("Ensure that your IAM execution role
        has permission to perform the cloudwatch:DescribeAlarms action on the auto-rollback alarms", developer
        guide, "Auto-Rollback Configuration and Monitoring"), so the role gets exactly that, on these alarms.
        """
        if not alarms:
            return
        self.rollback_alarms.extend(alarms)
        self.role.add_to_policy(iam.PolicyStatement(actions=["cloudwatch:DescribeAlarms"],
                                                    resources=[alarm.alarm_arn for alarm in alarms]))
        self._render_deployment_config()

    def _render_deployment_config(self) -> None:
        if self.guardrails is None:
            return
        self.endpoint.deployment_config = self.guardrails.deployment_config(
            [alarm.alarm_name for alarm in self.rollback_alarms])

    def rollback_alarm_problems(self) -> list[str]:
        """Rules on the rollback alarms, checked when the app is synthesized (alarms arrive after construction)."""
        guardrails = self.guardrails
        if guardrails is None or not guardrails.auto_rollback:
            return []
        count = len(self.rollback_alarms)
        if count == 0:
            return ["guardrails.auto_rollback is on but no rollback alarm was added (add_rollback_alarms)"]
        problems = []
        if count > MAX_ROLLBACK_ALARMS:
            problems.append(f"guardrails.auto_rollback: {count} rollback alarms, SageMaker accepts at most "
                            f"{MAX_ROLLBACK_ALARMS} (AutoRollbackConfig.Alarms)")
        for alarm in self.rollback_alarms:
            window = alarm_window_s(alarm)
            if window and guardrails.wait_interval_s < window:
                problems.append(
                    f"guardrails.wait_interval_s: {guardrails.wait_interval_s} s is shorter than the "
                    f"{window} s that rollback alarm {alarm.node.path} needs to fire; traffic would move on before "
                    f"the alarm could stop it: wait at least {window} s")
        return problems

    # -- construction helpers -------------------------------------------------------------------------------------
    def _grant_runtime_permissions(self, volume_key: kms.IKey | None) -> None:
        stack = cdk.Stack.of(self)
        log_group_arn = stack.format_arn(service="logs", resource="log-group",
                                         resource_name=f"/aws/sagemaker/Endpoints/{self.endpoint_name}:*",
                                         arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        self.role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[log_group_arn]))
        statement = iam.PolicyStatement(actions=["cloudwatch:PutMetricData"], resources=["*"],
                                        conditions={"StringEquals": {"cloudwatch:namespace": [
                                            SAGEMAKER_NAMESPACE, INSTANCE_METRICS_NAMESPACE]}})
        self.role.add_to_policy(statement)
        # ECR has no per-repository authorization token: GetAuthorizationToken only accepts "*".
        self.role.add_to_policy(iam.PolicyStatement(actions=["ecr:GetAuthorizationToken"], resources=["*"]))
        if volume_key:
            volume_key.grant(self.role, "kms:CreateGrant", "kms:DescribeKey")
        capture_objects = None
        if self.data_capture:
            capture_objects = self.data_capture.bucket.arn_for_objects(f"{self.data_capture.prefix}/*")
            self.role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=[capture_objects]))
            self.data_capture.encryption_key.grant(self.role, "kms:GenerateDataKey", "kms:Encrypt")
        async_objects = self._grant_async_permissions() if self.async_inference else []
        self._acknowledge_role_wildcards(log_group_arn, capture_objects, async_objects)

    def _grant_async_permissions(self) -> list[str]:
        """Read queued inputs, write results and failures under the async prefixes, publish the outcome."""
        config = self.async_inference
        inputs = config.bucket.arn_for_objects(f"{config.input_prefix}/*")
        outputs = [config.bucket.arn_for_objects(f"{config.output_prefix}/*"),
                   config.bucket.arn_for_objects(f"{config.failure_prefix}/*")]
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:GetObject"], resources=[inputs]))
        self.role.add_to_policy(iam.PolicyStatement(actions=["s3:PutObject"], resources=outputs))
        config.encryption_key.grant(self.role, "kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt")
        topics = [config.success_topic, config.error_topic]
        self.role.add_to_policy(iam.PolicyStatement(actions=["sns:Publish"],
                                                    resources=[topic.topic_arn for topic in topics]))
        for topic in topics:
            # Named actions instead of grant_publish's GenerateDataKey*: publishing needs exactly these two.
            if getattr(topic, "master_key", None) is not None:
                topic.master_key.grant(self.role, "kms:GenerateDataKey", "kms:Decrypt")
        return [inputs, *outputs]

    def _acknowledge_role_wildcards(self, log_group_arn: str, capture_objects: str | None,
                                    async_objects: Sequence[str] = ()) -> None:
        policy = self.role.node.find_child("DefaultPolicy").node.default_child
        stack = cdk.Stack.of(self)
        reasons = {
            "*": "ecr:GetAuthorizationToken has no resource-level permission, and cloudwatch:PutMetricData is "
                 "limited to the two SageMaker metric namespaces by a condition.",
            nag_resource_name(stack.resolve(log_group_arn)): "The container writes to log streams it names at run time, only inside "
                                          "this endpoint's own log group /aws/sagemaker/Endpoints/<name>.",
        }
        if capture_objects:
            reasons[nag_resource_name(stack.resolve(capture_objects))] = (
                "Data capture writes objects whose keys SageMaker generates per hour and variant, only under "
                "the capture prefix of its own bucket.")
        for objects in async_objects:
            reasons[nag_resource_name(stack.resolve(objects))] = (
                "Asynchronous inference reads request objects the caller names and writes results under keys "
                "SageMaker generates, only under this endpoint's async prefixes of its own bucket.")
        for resource, reason in reasons.items():
            cdk.Validations.of(policy).acknowledge(cdk.Acknowledgment(
                id=f"AwsSolutions-IAM5[Resource::{resource}]", reason=reason))

    def _data_capture_config(self) -> sagemaker.CfnEndpointConfig.DataCaptureConfigProperty | None:
        capture = self.data_capture
        if capture is None:
            return None
        return sagemaker.CfnEndpointConfig.DataCaptureConfigProperty(
            enable_capture=True, initial_sampling_percentage=capture.sampling_percent,
            destination_s3_uri=capture.destination_uri, kms_key_id=capture.encryption_key.key_arn,
            capture_options=[sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Input"),
                             sagemaker.CfnEndpointConfig.CaptureOptionProperty(capture_mode="Output")],
            capture_content_type_header=sagemaker.CfnEndpointConfig.CaptureContentTypeHeaderProperty(
                csv_content_types=["text/csv"], json_content_types=["application/json"]))

    def _volume_key_id(self, volume_key: kms.IKey | None) -> str | None:
        if volume_key is None or has_instance_storage(self.variants[0].instance_type):
            # SageMaker rejects KmsKeyId for instances with local NVMe storage (hardware-encrypted instance
            # storage); _validate refuses configs that mix such types with EBS-backed ones.
            return None
        return volume_key.key_arn

    def _autoscale(self, variant: ProductionVariant, autoscaling: Autoscaling) -> appscaling.ScalableTarget:
        target = self._scalable_target(variant, autoscaling.min_capacity, autoscaling.max_capacity)
        target.scale_to_track_metric(
            "InvocationsPerInstance", target_value=autoscaling.invocations_per_instance,
            predefined_metric=appscaling.PredefinedMetric.SAGEMAKER_VARIANT_INVOCATIONS_PER_INSTANCE,
            scale_in_cooldown=autoscaling.scale_in_cooldown, scale_out_cooldown=autoscaling.scale_out_cooldown)
        return target

    def _scalable_target(self, variant: ProductionVariant, min_capacity: int,
                         max_capacity: int) -> appscaling.ScalableTarget:
        stack = cdk.Stack.of(self)
        # Application Auto Scaling manages SageMaker variants with its own service-linked role (created on first use).
        service_linked_role = iam.Role.from_role_arn(
            self, f"ScalingRole{pascal_case(variant.name)}",
            stack.format_arn(service="iam", region="", resource="role",
                             resource_name="aws-service-role/sagemaker.application-autoscaling.amazonaws.com/"
                                           "AWSServiceRoleForApplicationAutoScaling_SageMakerEndpoint"),
            mutable=False)
        target = appscaling.ScalableTarget(
            self, f"ScalableTarget{pascal_case(variant.name)}", service_namespace=appscaling.ServiceNamespace.SAGEMAKER,
            resource_id=f"endpoint/{self.endpoint_name}/variant/{variant.name}",
            scalable_dimension=DESIRED_INSTANCE_COUNT, min_capacity=min_capacity,
            max_capacity=max_capacity, role=service_linked_role)
        target.node.add_dependency(self.endpoint)
        return target

    # -- metrics --------------------------------------------------------------------------------------------------
    def metric(self, metric_name: str, *, variant_name: str, statistic: str = "Sum",
               period: cdk.Duration = DEFAULT_METRIC_PERIOD, namespace: str = SAGEMAKER_NAMESPACE,
               label: str | None = None) -> cloudwatch.Metric:
        """Any endpoint metric for one variant (SageMaker publishes them with EndpointName and VariantName)."""
        return cloudwatch.Metric(namespace=namespace, metric_name=metric_name, statistic=statistic, period=period,
                                 dimensions_map={"EndpointName": self.endpoint_name, "VariantName": variant_name},
                                 label=label)

    def metric_model_latency(self, *, variant_name: str, statistic: str = "p99",
                             period: cdk.Duration = DEFAULT_METRIC_PERIOD) -> cloudwatch.Metric:
        """ModelLatency in **microseconds** (SageMaker's unit)."""
        return self.metric("ModelLatency", variant_name=variant_name, statistic=statistic, period=period)

    def metric_invocation_5xx_errors(self, *, variant_name: str,
                                     period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        """Responses the model container failed with 5XX, summed per 5 minutes (what rollbacks watch)."""
        return self.metric("Invocation5XXErrors", variant_name=variant_name, period=period)

    def metric_invocation_4xx_errors(self, *, variant_name: str,
                                     period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        """Requests rejected as client errors (4XX), summed per 5 minutes."""
        return self.metric("Invocation4XXErrors", variant_name=variant_name, period=period)

    def metric_invocations(self, *, variant_name: str,
                           period: cdk.Duration = DEFAULT_METRIC_PERIOD) -> cloudwatch.Metric:
        """Requests served by this variant, summed per minute."""
        return self.metric("Invocations", variant_name=variant_name, period=period)

    def metric_invocations_per_instance(self, *, variant_name: str,
                                        period: cdk.Duration = DEFAULT_METRIC_PERIOD) -> cloudwatch.Metric:
        """Invocations per instance per minute, the metric target tracking scales on."""
        return self.metric("InvocationsPerInstance", variant_name=variant_name, period=period)

    def metric_instance_count(self, *, variant_name: str,
                              period: cdk.Duration = DEFAULT_METRIC_PERIOD) -> cloudwatch.MathExpression:
        """In-service instances, derived as Invocations / InvocationsPerInstance (SageMaker publishes no count)."""
        # Metric ids must be unique within a graph that shows several variants, and match [a-z][a-zA-Z0-9_]*.
        suffix = re.sub(r"[^a-z0-9]", "_", variant_name.lower())
        invocations, per_instance = f"invocations_{suffix}", f"per_instance_{suffix}"
        return cloudwatch.MathExpression(
            expression=f"IF({per_instance} > 0, {invocations} / {per_instance}, 0)",
            using_metrics={invocations: self.metric_invocations(variant_name=variant_name, period=period),
                           per_instance: self.metric_invocations_per_instance(variant_name=variant_name,
                                                                              period=period)},
            label=f"{variant_name} instances (derived)", period=period)

    def metric_backlog_size(self) -> cloudwatch.Metric:
        """Asynchronous endpoints: requests waiting in the queue."""
        return async_endpoint_metric(self.endpoint_name, "ApproximateBacklogSize")

    def metric_oldest_request_age(self) -> cloudwatch.Metric:
        """Asynchronous endpoints: age in seconds of the oldest queued request."""
        return async_endpoint_metric(self.endpoint_name, "ApproximateAgeOfOldestRequest", statistic="Maximum")

    def metric_async_failures(self, *, period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        """Asynchronous endpoints: requests that ended in the failure path, summed per 5 minutes."""
        return async_endpoint_metric(self.endpoint_name, "InvocationFailures", statistic="Sum", period=period)

    def metric_has_backlog_without_capacity(self) -> cloudwatch.Metric:
        """Asynchronous endpoints: 1 while requests wait and no instance is running (scale-out from zero)."""
        return async_endpoint_metric(self.endpoint_name, "HasBacklogWithoutCapacity", statistic="Maximum")

    def metric_cpu_utilization(self, *, variant_name: str) -> cloudwatch.Metric:
        """Sum over cores: 100% per vCPU."""
        return self.metric("CPUUtilization", variant_name=variant_name, statistic="Average",
                           namespace=INSTANCE_METRICS_NAMESPACE)

    def metric_memory_utilization(self, *, variant_name: str) -> cloudwatch.Metric:
        """Average memory utilization of the variant's instances, in percent."""
        return self.metric("MemoryUtilization", variant_name=variant_name, statistic="Average",
                           namespace=INSTANCE_METRICS_NAMESPACE)


@jsii.implements(IValidation)
class _RollbackAlarmValidation:
    def __init__(self, endpoint: RealtimeEndpoint) -> None:
        self._endpoint = endpoint

    def validate(self) -> list[str]:
        return self._endpoint.rollback_alarm_problems()


def alarm_window_s(alarm: cloudwatch.IAlarm) -> int | None:
    """Seconds of breaching data a single-metric alarm needs before it fires (period x datapoints)."""
    cfn = alarm.node.default_child if isinstance(alarm, cloudwatch.Alarm) else None
    if not isinstance(cfn, cloudwatch.CfnAlarm):
        return None
    period, periods = cfn.period, cfn.datapoints_to_alarm or cfn.evaluation_periods
    if isinstance(period, (int, float)) and isinstance(periods, (int, float)):
        return int(period * periods)
    return None
