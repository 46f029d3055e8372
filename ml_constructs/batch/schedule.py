"""An EventBridge Scheduler schedule that starts a state machine, with a role allowed to do only that."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_scheduler as scheduler
from aws_cdk import aws_scheduler_targets as targets
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

DEFAULT_EXPRESSION = "cron(0 2 * * ? *)"
DEFAULT_TIME_ZONE = "UTC"
#: A nightly run that could not be started within this window is dropped (and alarmed), not started late.
DEFAULT_MAX_EVENT_AGE = cdk.Duration.hours(2)
DEFAULT_RETRY_ATTEMPTS = 10


class ScoringSchedule(Construct):
    """Starts ``state_machine`` on a cron or rate expression evaluated in ``time_zone``.

    The schedule lives in its own schedule group so that its Scheduler metrics (attempts, dropped
    invocations, target errors) are this schedule's alone. Its role trusts only this schedule and may
    only call ``states:StartExecution`` on this state machine. ``enabled=False`` keeps the schedule
    but DISABLED. Each execution receives ``{"trigger": "schedule", "scheduled_time": ...}``.
    """

    def __init__(self, scope: Construct, construct_id: str, *, state_machine: sfn.IStateMachine, schedule_name: str,
                 expression: str = DEFAULT_EXPRESSION, time_zone: str = DEFAULT_TIME_ZONE, enabled: bool = True,
                 max_event_age: cdk.Duration = DEFAULT_MAX_EVENT_AGE,
                 retry_attempts: int = DEFAULT_RETRY_ATTEMPTS) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.group = scheduler.ScheduleGroup(self, "Group", schedule_group_name=schedule_name,
                                             removal_policy=cdk.RemovalPolicy.DESTROY)
        schedule_arn = stack.format_arn(service="scheduler", resource="schedule",
                                        resource_name=f"{schedule_name}/{schedule_name}")
        # Confused-deputy guard: only this schedule, in this account, may assume the role.
        self.role = iam.Role(self, "Role", description=f"Lets schedule {schedule_name} start its state machine",
                             assumed_by=iam.ServicePrincipal("scheduler.amazonaws.com", conditions={
                                 "StringEquals": {"aws:SourceAccount": stack.account, "aws:SourceArn": schedule_arn}}))
        self.schedule = scheduler.Schedule(
            self, "Schedule", schedule_name=schedule_name, schedule_group=self.group, enabled=enabled,
            description=f"Starts {schedule_name} at {expression} ({time_zone})",
            schedule=scheduler.ScheduleExpression.expression(expression, cdk.TimeZone.of(time_zone)),
            target=targets.StepFunctionsStartExecution(
                state_machine, role=self.role, max_event_age=max_event_age, retry_attempts=retry_attempts,
                input=scheduler.ScheduleTargetInput.from_object({
                    "trigger": "schedule", "scheduled_time": scheduler.ContextAttribute.scheduled_time})))
        # ScheduleGroup exposes its name as a plain string, so the schedule's GroupName carries no Ref and
        # CloudFormation could create both at once: CreateSchedule then fails with the group not found.
        self.schedule.node.add_dependency(self.group)
        self.expression = expression
        self.time_zone = time_zone
        self.enabled = enabled

    def metric_dropped(self, *, period: cdk.Duration = cdk.Duration.minutes(5)) -> cloudwatch.Metric:
        """Invocations Scheduler gave up on: a run that never started."""
        return self.group.metric_dropped(period=period, statistic="Sum")

    def metric_attempts(self, *, period: cdk.Duration = cdk.Duration.hours(1)) -> cloudwatch.Metric:
        return self.group.metric_attempts(period=period, statistic="Sum")

    def metric_target_errors(self, *, period: cdk.Duration = cdk.Duration.hours(1)) -> cloudwatch.Metric:
        """StartExecution calls that failed (retried until the maximum event age)."""
        return self.group.metric_target_errors(period=period, statistic="Sum")


__all__ = ["ScoringSchedule"]
