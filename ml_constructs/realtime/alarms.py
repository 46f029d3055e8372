"""Latency and error alarms for a real-time endpoint, and its CloudWatch dashboard."""
from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from ml_constructs.common.naming import pascal_case
from ml_constructs.realtime.endpoint import RealtimeEndpoint

DEFAULT_LATENCY_P99_MS = 500.0
DEFAULT_ERRORS_5XX_PER_5MIN = 10
DEFAULT_ASYNC_OLDEST_REQUEST_AGE_S = 900
DEFAULT_ASYNC_FAILURES_PER_5MIN = 1
MICROSECONDS_PER_MS = 1000
#: Latency must stay above the limit for this many consecutive minutes before paging.
LATENCY_EVALUATION_MINUTES = 3


@dataclass(frozen=True, kw_only=True)
class EndpointAlarmThresholds:
    """When to page: p99 model latency in ms (compared in µs) and 5XX responses per 5 minutes."""

    latency_p99_ms: float = DEFAULT_LATENCY_P99_MS
    errors_5xx_per_5min: int = DEFAULT_ERRORS_5XX_PER_5MIN
    #: Asynchronous endpoints: page when the oldest queued request is older than this...
    async_oldest_request_age_s: int = DEFAULT_ASYNC_OLDEST_REQUEST_AGE_S
    #: ...or when this many requests end in the failure path within 5 minutes.
    async_failures_per_5min: int = DEFAULT_ASYNC_FAILURES_PER_5MIN


class EndpointAlarms(Construct):
    """One p99 latency alarm and one 5XX alarm per production variant."""

    def __init__(self, scope: Construct, construct_id: str, *, endpoint: RealtimeEndpoint,
                 thresholds: EndpointAlarmThresholds = EndpointAlarmThresholds()) -> None:
        super().__init__(scope, construct_id)
        self.latency_alarms: dict[str, cloudwatch.Alarm] = {}
        self.error_alarms: dict[str, cloudwatch.Alarm] = {}
        for variant in endpoint.variants:
            name = variant.name
            self.latency_alarms[name] = cloudwatch.Alarm(
                self, f"LatencyP99{pascal_case(name)}",
                alarm_name=f"{endpoint.endpoint_name}-{name}-latency-p99",
                alarm_description=(f"p99 ModelLatency of {endpoint.endpoint_name}/{name} above "
                                   f"{thresholds.latency_p99_ms:g} ms for {LATENCY_EVALUATION_MINUTES} minutes"),
                metric=endpoint.metric_model_latency(variant_name=name),
                threshold=thresholds.latency_p99_ms * MICROSECONDS_PER_MS,
                evaluation_periods=LATENCY_EVALUATION_MINUTES,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
            self.error_alarms[name] = cloudwatch.Alarm(
                self, f"Errors5xx{pascal_case(name)}",
                alarm_name=f"{endpoint.endpoint_name}-{name}-5xx",
                alarm_description=(f"{thresholds.errors_5xx_per_5min} or more 5XX responses from "
                                   f"{endpoint.endpoint_name}/{name} in 5 minutes"),
                metric=endpoint.metric_invocation_5xx_errors(variant_name=name),
                threshold=thresholds.errors_5xx_per_5min, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)
        self.queue_alarms: list[cloudwatch.Alarm] = []
        if endpoint.async_inference:
            # An idle asynchronous endpoint publishes no queue data: missing data is a quiet queue, not an outage.
            self.queue_alarms = [
                cloudwatch.Alarm(
                    self, "OldestRequestAge", alarm_name=f"{endpoint.endpoint_name}-oldest-request-age",
                    alarm_description=(f"A request has waited more than {thresholds.async_oldest_request_age_s} s "
                                       f"in the queue of {endpoint.endpoint_name}"),
                    metric=endpoint.metric_oldest_request_age(),
                    threshold=thresholds.async_oldest_request_age_s, evaluation_periods=3,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING),
                cloudwatch.Alarm(
                    self, "AsyncFailures", alarm_name=f"{endpoint.endpoint_name}-async-failures",
                    alarm_description=(f"{thresholds.async_failures_per_5min} or more asynchronous requests of "
                                       f"{endpoint.endpoint_name} failed in 5 minutes"),
                    metric=endpoint.metric_async_failures(), threshold=thresholds.async_failures_per_5min,
                    evaluation_periods=1,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)]

    @property
    def all_alarms(self) -> list[cloudwatch.Alarm]:
        return [*self.latency_alarms.values(), *self.error_alarms.values(), *self.queue_alarms]

    @property
    def rollback_alarms(self) -> list[cloudwatch.Alarm]:
        """The alarms that judge a new model (latency and errors), not the queue's depth."""
        return [*self.latency_alarms.values(), *self.error_alarms.values()]


class EndpointDashboard(Construct):
    """Latency p50/p99, invocations, 4XX/5XX, instance count, CPU and memory for every variant."""

    def __init__(self, scope: Construct, construct_id: str, *, endpoint: RealtimeEndpoint,
                 alarms: EndpointAlarms | None = None) -> None:
        super().__init__(scope, construct_id)
        names = [variant.name for variant in endpoint.all_variants]  # the shadow too, side by side
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=endpoint.endpoint_name)
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Model latency (µs)", width=12, left=[
                endpoint.metric_model_latency(variant_name=name, statistic=statistic).with_(
                    label=f"{name} {statistic}")
                for name in names for statistic in ("p50", "p99")]),
            cloudwatch.GraphWidget(title="Invocations per minute", width=12, left=[
                endpoint.metric_invocations(variant_name=name).with_(label=name) for name in names]))
        errors = cloudwatch.GraphWidget(title="Errors per 5 minutes", width=12, left=[
            metric for name in names for metric in (
                endpoint.metric_invocation_4xx_errors(variant_name=name).with_(label=f"{name} 4XX"),
                endpoint.metric_invocation_5xx_errors(variant_name=name).with_(label=f"{name} 5XX"))])
        if endpoint.serverless:
            # No instances to count and no instance metrics: a serverless endpoint is sized by concurrency.
            self.dashboard.add_widgets(errors)
        else:
            self.dashboard.add_widgets(errors, cloudwatch.GraphWidget(title="Instances", width=12, left=[
                endpoint.metric_instance_count(variant_name=name) for name in names]))
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(title="CPU and memory (%)", width=12,
                                       left=[endpoint.metric_cpu_utilization(variant_name=name).with_(
                                           label=f"{name} CPU") for name in names],
                                       right=[endpoint.metric_memory_utilization(variant_name=name).with_(
                                           label=f"{name} memory") for name in names]))
        if endpoint.async_inference:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(title="Queue", width=12, left=[endpoint.metric_backlog_size()],
                                       right=[endpoint.metric_oldest_request_age()]),
                cloudwatch.GraphWidget(title="Failed requests and backlog without capacity", width=12,
                                       left=[endpoint.metric_async_failures()],
                                       right=[endpoint.metric_has_backlog_without_capacity()]))
        if alarms:
            self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", width=12,
                                                                    alarms=alarms.all_alarms))


__all__ = ["EndpointAlarms", "EndpointAlarmThresholds", "EndpointDashboard"]
