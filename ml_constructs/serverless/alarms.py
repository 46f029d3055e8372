"""Alarms and a CloudWatch dashboard for a Lambda model function and its API."""
from __future__ import annotations

from dataclasses import dataclass

from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from ml_constructs.serverless.model_function import LambdaModelFunction
from ml_constructs.serverless.prediction_api import PredictionApi

#: Latency and duration alarms need this many consecutive breaching minutes: one slow minute is not a page.
SUSTAINED_MINUTES = 3


@dataclass(frozen=True, kw_only=True)
class ServerlessAlarmThresholds:
    """When to page. Duration is a share of the function timeout (a function near its timeout is about to fail)."""

    errors_per_5min: int = 5
    throttles_per_5min: int = 1
    duration_p99_percent_of_timeout: float = 80.0
    api_5xx_per_5min: int = 5
    api_latency_p99_ms: float = 1000.0
    async_failures: int = 1


class ServerlessAlarms(Construct):
    """Function errors, throttles and p99 duration; API 5XX and p99 latency; failed asynchronous events."""

    def __init__(self, scope: Construct, construct_id: str, *, function: LambdaModelFunction,
                 api: PredictionApi | None = None, name_prefix: str,
                 thresholds: ServerlessAlarmThresholds = ServerlessAlarmThresholds()) -> None:
        super().__init__(scope, construct_id)
        self.thresholds = thresholds
        timeout_ms = function.timeout.to_milliseconds()
        self.duration_threshold_ms = timeout_ms * thresholds.duration_p99_percent_of_timeout / 100

        def alarm(construct_id: str, name: str, metric: cloudwatch.IMetric, description: str, threshold: float,
                  *, sustained: bool = False) -> cloudwatch.Alarm:
            """Count alarms page at >= threshold in one period; sustained (p99) ones above it for a few minutes."""
            return cloudwatch.Alarm(
                self, construct_id, alarm_name=f"{name_prefix}-{name}", metric=metric, alarm_description=description,
                threshold=threshold, evaluation_periods=SUSTAINED_MINUTES if sustained else 1,
                comparison_operator=(cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD if sustained else
                                     cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD),
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)

        self.errors = alarm(
            "Errors", "errors", function.metric_errors(),
            f"{thresholds.errors_per_5min} or more failed invocations of the live alias in 5 minutes",
            thresholds.errors_per_5min)
        self.throttles = alarm(
            "Throttles", "throttles", function.metric_throttles(),
            f"{thresholds.throttles_per_5min} or more throttled invocations in 5 minutes "
            "(reserved or account concurrency exhausted)", thresholds.throttles_per_5min)
        self.duration = alarm(
            "DurationP99", "duration-p99", function.metric_duration(),
            f"p99 duration above {thresholds.duration_p99_percent_of_timeout:g}% of the "
            f"{timeout_ms / 1000:g} s timeout for {SUSTAINED_MINUTES} minutes",
            self.duration_threshold_ms, sustained=True)
        self.async_failures = alarm(
            "AsyncFailures", "async-failures", function.metric_async_failures(),
            "Asynchronous events (S3 uploads) failed after their retries and wait in the on-failure queue",
            thresholds.async_failures)
        self.api_5xx: cloudwatch.Alarm | None = None
        self.api_latency: cloudwatch.Alarm | None = None
        if api is not None:
            self.api_5xx = alarm(
                "Api5xx", "api-5xx", api.metric_server_errors(),
                f"{thresholds.api_5xx_per_5min} or more 5XX responses from POST /predict in 5 minutes",
                thresholds.api_5xx_per_5min)
            self.api_latency = alarm(
                "ApiLatencyP99", "api-latency-p99", api.metric_latency(),
                f"p99 API latency above {thresholds.api_latency_p99_ms:g} ms for {SUSTAINED_MINUTES} minutes",
                thresholds.api_latency_p99_ms, sustained=True)

    @property
    def all_alarms(self) -> list[cloudwatch.Alarm]:
        alarms = [self.errors, self.throttles, self.duration, self.async_failures, self.api_5xx, self.api_latency]
        return [alarm for alarm in alarms if alarm is not None]


class ServerlessDashboard(Construct):
    """Traffic, errors, latency against the timeout, concurrency, the handler's own metrics, alarm states."""

    def __init__(self, scope: Construct, construct_id: str, *, function: LambdaModelFunction,
                 api: PredictionApi | None = None, alarms: ServerlessAlarms | None = None,
                 dashboard_name: str) -> None:
        super().__init__(scope, construct_id)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=dashboard_name)
        duration_lines = []
        if alarms is not None:
            duration_lines = [cloudwatch.HorizontalAnnotation(value=alarms.duration_threshold_ms,
                                                              label="alarm threshold")]
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Invocations, errors, throttles", width=12, left=[
                function.metric_invocations(), function.metric_errors(period=function.metric_invocations().period),
                function.metric_throttles(period=function.metric_invocations().period)]),
            cloudwatch.GraphWidget(title="Duration (ms)", width=12, left_annotations=duration_lines, left=[
                function.metric_duration(statistic="p50"), function.metric_duration(statistic="p99")]))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Predictions and client errors (handler)", width=12, left=[
                function.metric_app("Predictions"), function.metric_app("ClientErrors"),
                function.metric_app("FilesPredicted"), function.metric_app("FilesRejected")]),
            cloudwatch.GraphWidget(title="Prediction latency in the handler (ms)", width=12, left=[
                function.metric_app("PredictionLatency", statistic="p50"),
                function.metric_app("PredictionLatency", statistic="p99")]))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Concurrency and cold starts", width=12, left=[
                function.metric_concurrent_executions(), function.metric_provisioned_concurrency_spillover()],
                right=[function.metric_cold_starts()]),
            cloudwatch.GraphWidget(title="Failed asynchronous events (queue)", width=12,
                                   left=[function.metric_async_failures()]))
        if api is not None:
            self.dashboard.add_widgets(
                cloudwatch.GraphWidget(title="API requests and errors", width=12, left=[
                    api.metric_count(), api.metric_client_errors(period=api.metric_count().period),
                    api.metric_server_errors(period=api.metric_count().period)]),
                cloudwatch.GraphWidget(title="API latency (ms)", width=12, left=[
                    api.metric_latency(statistic="p50"), api.metric_latency(),
                    api.metric_integration_latency()]))
        if alarms is not None:
            self.dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Alarms", width=24,
                                                                    alarms=alarms.all_alarms))


__all__ = ["ServerlessAlarms", "ServerlessAlarmThresholds", "ServerlessDashboard"]
