"""Real-time endpoints that keep no instances running: Serverless Inference, asynchronous inference that scales
to zero, and shadow variants that see copies of production traffic and answer nobody."""
from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_applicationautoscaling as appscaling
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns

#: SageMaker Serverless Inference limits (ServerlessConfig): memory in 1 GB steps, at most 200 concurrent calls.
SERVERLESS_MEMORY_MB = (1024, 2048, 3072, 4096, 5120, 6144)
MAX_SERVERLESS_CONCURRENCY = 200
#: A scalable target at 0 instances never receives invocations, so target tracking alone never scales out:
#: this alarm on HasBacklogWithoutCapacity adds the first instance (SageMaker developer guide, "Autoscale an
#: asynchronous endpoint", scale up from zero).
BACKLOG_WITHOUT_CAPACITY = "HasBacklogWithoutCapacity"
BACKLOG_PER_INSTANCE = "ApproximateBacklogSizePerInstance"


@dataclass(frozen=True, kw_only=True)
class ServerlessCapacity:
    """Serverless Inference: pay per request and GB-second; cold starts take seconds.

    SageMaker excludes data capture, Model Monitor, several production variants, shadow variants, network
    isolation/VPC, GPUs and rolling updates for serverless endpoints.
    """

    memory_mb: int = 2048
    max_concurrency: int = 20
    #: Provisioned concurrency keeps this many environments warm (billed per hour); 0 for none.
    provisioned_concurrency: int = 0

    def problems(self) -> list[str]:
        problems = []
        if self.memory_mb not in SERVERLESS_MEMORY_MB:
            problems.append(f"serverless memory_mb must be one of {', '.join(map(str, SERVERLESS_MEMORY_MB))}, "
                            f"got {self.memory_mb}")
        if not 1 <= self.max_concurrency <= MAX_SERVERLESS_CONCURRENCY:
            problems.append(f"serverless max_concurrency must be 1..{MAX_SERVERLESS_CONCURRENCY}, "
                            f"got {self.max_concurrency}")
        if not 0 <= self.provisioned_concurrency <= self.max_concurrency:
            problems.append(f"serverless provisioned_concurrency must be 0..max_concurrency "
                            f"({self.max_concurrency}), got {self.provisioned_concurrency}")
        return problems

    def config(self) -> sagemaker.CfnEndpointConfig.ServerlessConfigProperty:
        return sagemaker.CfnEndpointConfig.ServerlessConfigProperty(
            memory_size_in_mb=self.memory_mb, max_concurrency=self.max_concurrency,
            provisioned_concurrency=self.provisioned_concurrency or None)


@dataclass(frozen=True, kw_only=True)
class AsyncScaling:
    """Instances follow the queue: 0 when it is empty, more as requests wait."""

    min_capacity: int = 0
    max_capacity: int = 4
    #: Target of ApproximateBacklogSizePerInstance (queued requests per instance).
    backlog_per_instance_target: float = 5.0
    scale_in_cooldown: cdk.Duration = cdk.Duration.minutes(10)
    scale_out_cooldown: cdk.Duration = cdk.Duration.minutes(1)


@dataclass(frozen=True, kw_only=True)
class AsyncInference:
    """Asynchronous inference: requests are queued from S3, results written to S3, outcome published to SNS."""

    bucket: s3.IBucket
    encryption_key: kms.IKey
    success_topic: sns.ITopic
    error_topic: sns.ITopic
    prefix: str = "async"
    max_concurrent_invocations_per_instance: int = 4
    scaling: AsyncScaling = AsyncScaling()

    @property
    def input_prefix(self) -> str:
        return f"{self.prefix}/input"

    @property
    def output_prefix(self) -> str:
        return f"{self.prefix}/output"

    @property
    def failure_prefix(self) -> str:
        return f"{self.prefix}/failures"

    def problems(self) -> list[str]:
        problems = []
        if not 1 <= self.max_concurrent_invocations_per_instance <= 1000:
            problems.append("async max_concurrent_invocations_per_instance must be 1..1000, got "
                            f"{self.max_concurrent_invocations_per_instance}")
        scaling = self.scaling
        if not 0 <= scaling.min_capacity <= scaling.max_capacity or scaling.max_capacity < 1:
            problems.append(f"async scaling needs 0 <= min_capacity <= max_capacity and max_capacity >= 1, got "
                            f"{scaling.min_capacity}..{scaling.max_capacity}")
        if scaling.backlog_per_instance_target <= 0:
            problems.append(f"async backlog_per_instance_target must be above 0, got "
                            f"{scaling.backlog_per_instance_target}")
        return problems

    def config(self) -> sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty:
        return sagemaker.CfnEndpointConfig.AsyncInferenceConfigProperty(
            client_config=sagemaker.CfnEndpointConfig.AsyncInferenceClientConfigProperty(
                max_concurrent_invocations_per_instance=self.max_concurrent_invocations_per_instance),
            output_config=sagemaker.CfnEndpointConfig.AsyncInferenceOutputConfigProperty(
                s3_output_path=self.bucket.s3_url_for_object(self.output_prefix),
                s3_failure_path=self.bucket.s3_url_for_object(self.failure_prefix),
                kms_key_id=self.encryption_key.key_arn,
                notification_config=sagemaker.CfnEndpointConfig.AsyncInferenceNotificationConfigProperty(
                    success_topic=self.success_topic.topic_arn, error_topic=self.error_topic.topic_arn,
                    include_inference_response_in=["SUCCESS_NOTIFICATION_TOPIC", "ERROR_NOTIFICATION_TOPIC"])))


def async_endpoint_metric(endpoint_name: str, metric_name: str, *, statistic: str = "Average",
                          period: cdk.Duration = cdk.Duration.minutes(1)) -> cloudwatch.Metric:
    """Asynchronous endpoints publish their queue metrics per endpoint (dimension EndpointName only)."""
    return cloudwatch.Metric(namespace="AWS/SageMaker", metric_name=metric_name, statistic=statistic, period=period,
                             dimensions_map={"EndpointName": endpoint_name})


def scale_on_backlog(target: appscaling.ScalableTarget, *, endpoint_name: str, scaling: AsyncScaling) -> None:
    """Target tracking on the backlog per instance, plus a step that adds the first instance from zero."""
    target.scale_to_track_metric(
        "BacklogPerInstance", target_value=scaling.backlog_per_instance_target,
        custom_metric=async_endpoint_metric(endpoint_name, BACKLOG_PER_INSTANCE),
        scale_in_cooldown=scaling.scale_in_cooldown, scale_out_cooldown=scaling.scale_out_cooldown)
    target.scale_on_metric(
        "ScaleOutFromZero", metric=async_endpoint_metric(endpoint_name, BACKLOG_WITHOUT_CAPACITY, statistic="Maximum"),
        scaling_steps=[appscaling.ScalingInterval(upper=0.5, change=0),
                       appscaling.ScalingInterval(lower=0.5, change=1)],
        adjustment_type=appscaling.AdjustmentType.CHANGE_IN_CAPACITY, cooldown=scaling.scale_out_cooldown,
        evaluation_periods=1, metric_aggregation_type=appscaling.MetricAggregationType.MAXIMUM)
