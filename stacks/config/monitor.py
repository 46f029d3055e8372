"""Configuration of Model Monitor on the real-time endpoint (``deploy.realtime.monitor``)."""
from __future__ import annotations

from typing import Literal

import aws_cdk as cdk
from pydantic import Field

from ml_constructs.monitoring.model_monitor import DEFAULT_GROUND_TRUTH_PREFIX, DataQuality, ModelQuality
from ml_constructs.monitoring.model_monitor_baseline.construct import MonitorResources

from stacks.config.base import ConfigModel, setting

#: The schedule forms Model Monitor accepts (CreateMonitoringSchedule's ScheduleExpression): hourly,
#: daily at an hour, or every N hours from an hour. Minute and day fields are fixed.
MONITOR_CRON_PATTERN = r"cron\(0 (\*|([01]?\d|2[0-3])(/([1-9]|1\d|2[0-4]))?) \? \* \* \*\)"
MONITOR_CRON_HELP = ("cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H UTC) or cron(0 H/N ? * * *) "
                     "(every N hours), the forms Model Monitor accepts")
HOURLY = "cron(0 * ? * * *)"
DAILY_AT_MIDNIGHT = "cron(0 0 ? * * *)"
INSTANCE_TYPE_PATTERN = r"ml\.[a-z0-9]+\.[a-z0-9]+"
S3_PREFIX_PATTERN = r"[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*"


class DataQualityConfig(ConfigModel):
    """Hourly comparison of captured requests with the baseline computed from ``baseline.csv``."""

    schedule: str = setting(HOURLY, pattern=MONITOR_CRON_PATTERN, help=MONITOR_CRON_HELP)
    drift_threshold: float = setting(0.1, ge=0.0, le=1.0,
                                         help="feature_baseline_drift distance that pages")
    """A feature pages when its ``feature_baseline_drift_<feature>`` distance exceeds this (0..1)."""

    def to_construct(self) -> DataQuality:
        return DataQuality(schedule=self.schedule, drift_threshold=self.drift_threshold)


class ModelQualityConfig(ConfigModel):
    """Daily binary-classification quality against delayed ground-truth labels."""

    enabled: bool = True
    schedule: str = setting(DAILY_AT_MIDNIGHT, pattern=MONITOR_CRON_PATTERN, help=MONITOR_CRON_HELP)
    probability_attribute: str = setting("0", pattern=r"\d+",
                                             help="the column of the probability in the text/csv response")
    """Column of the fraud probability in the captured ``text/csv`` response (``inference.py`` answers one
    probability per line, so ``0``). Only inferences requested with ``Accept: text/csv`` can be judged: the JSON
    response has no column for this to address. Predictions at or above the model's decision threshold
    (``decision_threshold`` in its metadata.json) count as positive."""
    ground_truth_prefix: str = setting(DEFAULT_GROUND_TRUTH_PREFIX, pattern=S3_PREFIX_PATTERN,
                                           help="an S3 key prefix without leading or trailing slash")
    label_delay_hours: int = setting(24, ge=0, le=24 * 30)
    """Labels arrive this long after the inference: each run judges the 24 hours that end this long ago."""
    min_auc: float = setting(0.75, ge=0.0, le=1.0, help="AUC below which the alarm pages")

    def to_construct(self, *, decision_threshold: float) -> ModelQuality | None:
        """The monitor construct's props, judging predictions at the model's own threshold; None when off."""
        if not self.enabled:
            return None
        return ModelQuality(schedule=self.schedule, probability_attribute=self.probability_attribute,
                            probability_threshold=decision_threshold, ground_truth_prefix=self.ground_truth_prefix,
                            label_delay=cdk.Duration.hours(self.label_delay_hours), min_auc=self.min_auc)


class MonitorConfig(ConfigModel):
    """Model Monitor on the endpoint's data capture: baseline, schedules, alarms."""

    enabled: bool = True
    instance_type: str = setting("ml.m5.xlarge", pattern=INSTANCE_TYPE_PATTERN,
                                     help="a SageMaker instance type such as ml.m5.xlarge")
    volume_size_gb: int = setting(20, ge=1, le=512)
    max_runtime_s: int = setting(1800, ge=60, le=3600,
                                     help="seconds; an hourly schedule's runs must finish within the hour")
    baseline_timeout_minutes: int = setting(60, ge=15, le=60,
                                                help="minutes the deploy waits for the baselining job (CloudFormation "
                                                     "waits at most an hour for a custom resource)")
    alert_on_failed_runs: bool = True
    data_quality: DataQualityConfig = Field(default_factory=DataQualityConfig)
    model_quality: ModelQualityConfig = Field(default_factory=ModelQualityConfig)

    @property
    def resources(self) -> MonitorResources:
        return MonitorResources(instance_type=self.instance_type, volume_size_gb=self.volume_size_gb,
                                max_runtime=cdk.Duration.seconds(self.max_runtime_s))

    def problems_with_capture(self, capture_enabled: bool) -> list[str]:
        """Model Monitor reads the endpoint's captured traffic: it cannot be on while capture is off.

        Data capture is a sibling section (``deploy.realtime.data_capture``), so the enclosing
        ``RealtimeConfig.problems()`` asks this, and the parser reports the answer with every other problem.
        Paths are relative to ``deploy.realtime``.
        """
        if self.enabled and not capture_enabled:
            return ["monitor.enabled: Model Monitor needs the endpoint's captured requests, but "
                    "deploy.realtime.data_capture.enabled is false; set deploy.realtime.data_capture.enabled to "
                    "true or deploy.realtime.monitor.enabled to false"]
        return []


class BuiltinMonitoringConfig(ConfigModel):
    """The built-in drift and quality checks (``deploy.monitoring.engine: builtin``): a scheduled job that compares
    recent requests with the model's ``drift_baseline.json`` (population stability index, Kolmogorov-Smirnov)."""

    schedule: str = setting("rate(1 hour)", pattern=r"(cron|rate)\(.+\)",
                            help="an EventBridge Scheduler expression such as rate(1 hour)")
    psi_threshold: float = setting(0.2, ge=0.0, le=10.0, help="a feature's PSI above this pages")
    ks_threshold: float = setting(0.2, ge=0.0, le=1.0, help="a feature's KS statistic above this pages")
    prediction_psi_threshold: float = setting(0.2, ge=0.0, le=10.0, help="the score distribution's PSI above "
                                                                         "this pages")
    invalid_rate_threshold: float = setting(0.05, ge=0.0, le=1.0, help="share of refused requests that pages")
    min_auc: float = setting(0.75, ge=0.0, le=1.0, help="AUC against ground truth below which the alarm pages")
    serverless_sample_percent: int = setting(10, ge=1, le=100,
                                             help="percent of serverless requests logged for drift checks")


class MonitoringConfig(ConfigModel):
    """Which engine watches the deployed model for drift and quality (``deploy.monitoring``)."""

    engine: Literal["builtin", "model-monitor"] = "builtin"
    """``builtin``: the project's scheduled checks on every pattern; ``model-monitor``: SageMaker Model Monitor
    on the real-time endpoint (configured under ``deploy.realtime.monitor``)."""
    builtin: BuiltinMonitoringConfig = Field(default_factory=BuiltinMonitoringConfig)


__all__ = ["DataQualityConfig", "ModelQualityConfig", "MonitorConfig", "MonitoringConfig", "BuiltinMonitoringConfig",
           "MONITOR_CRON_PATTERN"]
