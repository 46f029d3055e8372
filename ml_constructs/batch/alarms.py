"""Alarms and a CloudWatch dashboard for batch scoring runs."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from constructs import Construct

from ml_constructs.batch.schedule import ScoringSchedule
from ml_constructs.batch.scoring import BatchScoring

#: Step Functions publishes execution counts as they happen; one failure in 5 minutes pages.
ALARM_PERIOD = cdk.Duration.minutes(5)
MS_PER_MINUTE = 60_000


def _at_least_once(scope: Construct, construct_id: str, *, metric: cloudwatch.IMetric, alarm_name: str,
                   description: str) -> cloudwatch.Alarm:
    return cloudwatch.Alarm(scope, construct_id, alarm_name=alarm_name, alarm_description=description, metric=metric,
                            threshold=1, evaluation_periods=1,
                            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING)


class BatchAlarms(Construct):
    """Failed and timed-out executions; with a schedule, also scheduled runs that were never started."""

    def __init__(self, scope: Construct, construct_id: str, *, scoring: BatchScoring, name: str,
                 schedule: ScoringSchedule | None = None) -> None:
        super().__init__(scope, construct_id)
        self.failed = _at_least_once(
            self, "ExecutionsFailed", metric=scoring.metric_failed(period=ALARM_PERIOD, statistic="Sum"),
            alarm_name=f"{name}-executions-failed",
            description=f"A {name} run failed (the failure notification carries the execution and reason)")
        self.timed_out = _at_least_once(
            self, "ExecutionsTimedOut", metric=scoring.metric_timed_out(period=ALARM_PERIOD, statistic="Sum"),
            alarm_name=f"{name}-executions-timed-out",
            description=f"A {name} run exceeded the state machine timeout; its transform job was stopped")
        self.dropped = None
        if schedule is not None:
            self.dropped = _at_least_once(
                self, "ScheduleDropped", metric=schedule.metric_dropped(period=ALARM_PERIOD),
                alarm_name=f"{name}-schedule-dropped",
                description=f"EventBridge Scheduler could not start the scheduled {name} run")

    @property
    def all_alarms(self) -> list[cloudwatch.Alarm]:
        return [alarm for alarm in (self.failed, self.timed_out, self.dropped) if alarm is not None]


class BatchDashboard(Construct):
    """Executions started/succeeded/failed, run duration, schedule health and alarm states."""

    def __init__(self, scope: Construct, construct_id: str, *, scoring: BatchScoring, name: str,
                 alarms: BatchAlarms | None = None, schedule: ScoringSchedule | None = None) -> None:
        super().__init__(scope, construct_id)
        hour = cdk.Duration.hours(1)
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=name,
                                              default_interval=cdk.Duration.days(14))
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="Executions per hour", width=12, left=[
                scoring.metric_started(period=hour, statistic="Sum", label="started"),
                scoring.metric_succeeded(period=hour, statistic="Sum", label="succeeded"),
                scoring.metric_failed(period=hour, statistic="Sum", label="failed"),
                scoring.metric_timed_out(period=hour, statistic="Sum", label="timed out"),
                scoring.metric_aborted(period=hour, statistic="Sum", label="aborted")]),
            cloudwatch.GraphWidget(title="Run duration (minutes)", width=12, left=[
                cloudwatch.MathExpression(expression=f"{statistic.lower()} / {MS_PER_MINUTE}",
                                          label=f"{statistic} duration",
                                          using_metrics={statistic.lower(): scoring.metric_duration(statistic=statistic)},
                                          period=hour)
                for statistic in ("Maximum", "Average")]))
        row: list[cloudwatch.IWidget] = []
        if schedule is not None:
            row.append(cloudwatch.GraphWidget(title="Schedule invocations per hour", width=12, left=[
                schedule.metric_attempts(), schedule.metric_target_errors(),
                schedule.metric_dropped(period=hour)]))
        if alarms is not None:
            row.append(cloudwatch.AlarmStatusWidget(title="Alarms", width=12, alarms=alarms.all_alarms))
        if row:
            self.dashboard.add_widgets(*row)


__all__ = ["BatchAlarms", "BatchDashboard"]
