"""Alarms and dashboard widgets for Model Monitor: feature drift, model quality, failed runs.

Model Monitor publishes one metric per feature, ``feature_baseline_drift_<feature>`` (the distance
between the captured and the baseline distribution), in ``aws/sagemaker/Endpoints/data-metrics``, and
model-quality metrics (``auc``, ``accuracy``, ...) in ``aws/sagemaker/Endpoints/model-metrics``, both
with the dimensions ``Endpoint`` and ``MonitoringSchedule``. It publishes no metric for a run that
fails; SageMaker does emit "SageMaker Processing Job State Change" events for the runs' processing jobs,
whose detail carries the ``MonitoringScheduleArn`` (as DescribeProcessingJob does), so failed runs
reach the topic through an EventBridge rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_events as events
from constructs import Construct

from ml_constructs.common.alert_topic import AlertTopic
from ml_constructs.common.naming import pascal_case

DATA_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
MODEL_METRICS_NAMESPACE = "aws/sagemaker/Endpoints/model-metrics"
#: Runs publish one datapoint per scheduled run; an hour-long period sees it whatever the cadence.
METRIC_PERIOD = cdk.Duration.hours(1)
#: A run with no captured traffic in its window fails this way; it is an idle hour, not an incident.
NO_DATA_REASON_PREFIX = "Job inputs had no data"
FAILED_RUNS_RULE_SUFFIX = "-monitor-failed-runs"
MAX_RULE_NAME_LENGTH = 64


def failed_runs_rule_name(endpoint_name: str) -> str:
    """The failed-runs rule's fixed name (EventBridge allows 64 characters; endpoint names may have 63)."""
    return f"{endpoint_name[:MAX_RULE_NAME_LENGTH - len(FAILED_RUNS_RULE_SUFFIX)]}{FAILED_RUNS_RULE_SUFFIX}"


def metric_feature_drift(*, endpoint_name: str, schedule_name: str, feature: str,
                         period: cdk.Duration = METRIC_PERIOD) -> cloudwatch.Metric:
    """Baseline drift distance of one feature (0 = same distribution), worst value in the period."""
    return cloudwatch.Metric(namespace=DATA_METRICS_NAMESPACE, metric_name=f"feature_baseline_drift_{feature}",
                             dimensions_map={"Endpoint": endpoint_name, "MonitoringSchedule": schedule_name},
                             statistic="Maximum", period=period)


def metric_model_quality(*, endpoint_name: str, schedule_name: str, metric_name: str = "auc",
                         period: cdk.Duration = METRIC_PERIOD) -> cloudwatch.Metric:
    """A model-quality metric of the binary classifier (``auc``, ``accuracy``, ``f1``, ``recall``...)."""
    return cloudwatch.Metric(namespace=MODEL_METRICS_NAMESPACE, metric_name=metric_name,
                             dimensions_map={"Endpoint": endpoint_name, "MonitoringSchedule": schedule_name},
                             statistic="Minimum", period=period)


@dataclass(frozen=True, kw_only=True)
class MonitoredSchedules:
    """What the alarms watch: the endpoint, its schedules and the features in the baseline."""

    endpoint_name: str
    data_quality_schedule_name: str
    data_quality_schedule_arn: str
    feature_names: Sequence[str]
    model_quality_schedule_name: str | None = None
    model_quality_schedule_arn: str | None = None


class MonitorAlarms(Construct):
    """One drift alarm per feature, rolled up into one composite that pages; an AUC floor; failed runs.

    Alarms keep their state while no run publishes (``TreatMissingData.IGNORE``): drift stays in ALARM
    until a later run shows the distribution back, instead of flapping to OK between hourly runs.
    """

    def __init__(self, scope: Construct, construct_id: str, *, schedules: MonitoredSchedules,
                 drift_threshold: float, min_auc: float | None = None, alert_topic: AlertTopic | None = None,
                 alert_on_failed_runs: bool = True) -> None:
        super().__init__(scope, construct_id)
        self.schedules = schedules
        self.drift_threshold = drift_threshold
        self.min_auc = min_auc
        endpoint = schedules.endpoint_name
        self.drift_alarms: dict[str, cloudwatch.Alarm] = {}
        for feature in schedules.feature_names:
            self.drift_alarms[feature] = cloudwatch.Alarm(
                self, f"Drift{pascal_case(feature)}", alarm_name=f"{endpoint}-drift-{feature}",
                alarm_description=f"Model Monitor: {feature} drifted from the training baseline by more than "
                                  f"{drift_threshold:g} on {endpoint}",
                metric=self.metric_feature_drift(feature), threshold=drift_threshold, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.IGNORE)
        self.drift_alarm = cloudwatch.CompositeAlarm(
            self, "Drift", composite_alarm_name=f"{endpoint}-feature-drift",
            alarm_description=f"Model Monitor: at least one input feature of {endpoint} drifted from the training "
                              "baseline. Investigate the data (see the README); nothing retrains automatically.",
            alarm_rule=cloudwatch.AlarmRule.any_of(*self.drift_alarms.values()))

        self.auc_alarm: cloudwatch.Alarm | None = None
        if schedules.model_quality_schedule_name and min_auc is not None:
            self.auc_alarm = cloudwatch.Alarm(
                self, "AucFloor", alarm_name=f"{endpoint}-model-quality-auc",
                alarm_description=f"Model Monitor: AUC of {endpoint} against delayed labels fell below {min_auc:g}",
                metric=self.metric_model_quality("auc"), threshold=min_auc, evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.IGNORE)

        self.failed_runs_rule: events.Rule | None = None
        if alert_topic is not None:
            alert_topic.notify_on(*self.paging_alarms)
            if alert_on_failed_runs:
                self.failed_runs_rule = self._failed_runs_rule(alert_topic)

    @property
    def paging_alarms(self) -> list[cloudwatch.IAlarm]:
        """The alarms that notify: the drift roll-up and the AUC floor (per-feature alarms only feed the roll-up)."""
        return [self.drift_alarm, *([self.auc_alarm] if self.auc_alarm else [])]

    def metric_feature_drift(self, feature: str) -> cloudwatch.Metric:
        """``feature_baseline_drift_<feature>`` of the data-quality schedule (Maximum over an hour)."""
        return metric_feature_drift(endpoint_name=self.schedules.endpoint_name,
                                    schedule_name=self.schedules.data_quality_schedule_name, feature=feature)

    def metric_model_quality(self, metric_name: str = "auc") -> cloudwatch.Metric:
        """A model-quality metric (``auc``, ``accuracy``, ``recall``...) of the model-quality schedule (Minimum)."""
        if not self.schedules.model_quality_schedule_name:
            raise ValueError("model quality is not monitored")
        return metric_model_quality(endpoint_name=self.schedules.endpoint_name,
                                    schedule_name=self.schedules.model_quality_schedule_name, metric_name=metric_name)

    def _failed_runs_rule(self, alert_topic: AlertTopic) -> events.Rule:
        schedule_arns = [arn for arn in (self.schedules.data_quality_schedule_arn,
                                         self.schedules.model_quality_schedule_arn) if arn]
        rule_name = failed_runs_rule_name(self.schedules.endpoint_name)
        rule = events.Rule(
            self, "FailedRuns", rule_name=rule_name,
            description=f"Model Monitor runs of {self.schedules.endpoint_name} that failed or stopped",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"], detail_type=["SageMaker Processing Job State Change"],
                detail={"MonitoringScheduleArn": schedule_arns,
                        "$or": [
                            {"ProcessingJobStatus": ["Failed"],
                             "FailureReason": [{"anything-but": {"prefix": NO_DATA_REASON_PREFIX}}]},
                            {"ProcessingJobStatus": ["Stopped"]}]}))
        detail = events.EventField.from_path
        # Through a role that only this rule may assume: the topic and key policies never name EventBridge.
        rule.add_target(alert_topic.rule_target(self, "FailedRunsRole", rule_name=rule_name,
                                                message=events.RuleTargetInput.from_text(
            f"Model Monitor run {detail('$.detail.ProcessingJobName')} of schedule "
            f"{detail('$.detail.MonitoringScheduleArn')} ended {detail('$.detail.ProcessingJobStatus')}: "
            f"{detail('$.detail.FailureReason')}")))
        return rule

    def add_to_dashboard(self, dashboard: cloudwatch.Dashboard) -> None:
        """Feature drift against the threshold, AUC against its floor, and the paging alarms' state."""
        threshold = cloudwatch.HorizontalAnnotation(value=self.drift_threshold, label="drift threshold")
        widgets: list[cloudwatch.IWidget] = [cloudwatch.GraphWidget(
            title="Feature drift from baseline (Model Monitor)", width=12, left_annotations=[threshold],
            # Labels only on the graph: a labelled metric makes an alarm render as metric math.
            left=[self.metric_feature_drift(feature).with_(label=feature) for feature in self.schedules.feature_names])]
        if self.auc_alarm is not None and self.min_auc is not None:
            widgets.append(cloudwatch.GraphWidget(
                title="Model quality against labels (Model Monitor)", width=12,
                left=[self.metric_model_quality(name).with_(label=name)
                      for name in ("auc", "accuracy", "recall", "precision")],
                left_annotations=[cloudwatch.HorizontalAnnotation(value=self.min_auc, label="AUC floor")]))
        dashboard.add_widgets(*widgets)
        dashboard.add_widgets(cloudwatch.AlarmStatusWidget(title="Model Monitor alarms", width=12,
                                                           alarms=[*self.paging_alarms, *self.drift_alarms.values()]))


__all__ = ["MonitorAlarms", "MonitoredSchedules", "metric_feature_drift", "metric_model_quality",
           "DATA_METRICS_NAMESPACE", "MODEL_METRICS_NAMESPACE"]
