"""Configuration of Model Monitor on the real-time endpoint (``deploy.realtime.monitor``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from stacks.config.schema import constrained

#: The schedule forms Model Monitor accepts (CreateMonitoringSchedule's ScheduleExpression): hourly,
#: daily at an hour, or every N hours from an hour. Minute and day fields are fixed.
MONITOR_CRON_PATTERN = r"cron\(0 (\*|([01]?\d|2[0-3])(/([1-9]|1\d|2[0-4]))?) \? \* \* \*\)"
MONITOR_CRON_HELP = ("cron(0 * ? * * *) (hourly), cron(0 H ? * * *) (daily at hour H UTC) or cron(0 H/N ? * * *) "
                     "(every N hours), the forms Model Monitor accepts")
HOURLY = "cron(0 * ? * * *)"
DAILY_AT_MIDNIGHT = "cron(0 0 ? * * *)"
INSTANCE_TYPE_PATTERN = r"ml\.[a-z0-9]+\.[a-z0-9]+"
S3_PREFIX_PATTERN = r"[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*"


@dataclass(frozen=True, kw_only=True)
class DataQualityConfig:
    """Hourly comparison of captured requests with the baseline computed from ``baseline.csv``."""

    schedule: str = constrained(HOURLY, pattern=MONITOR_CRON_PATTERN, help=MONITOR_CRON_HELP)
    drift_threshold: float = constrained(0.1, minimum=0.0, maximum=1.0,
                                         help="feature_baseline_drift distance that pages")
    """A feature pages when its ``feature_baseline_drift_<feature>`` distance exceeds this (0..1)."""


@dataclass(frozen=True, kw_only=True)
class ModelQualityConfig:
    """Daily binary-classification quality against delayed ground-truth labels."""

    enabled: bool = True
    schedule: str = constrained(DAILY_AT_MIDNIGHT, pattern=MONITOR_CRON_PATTERN, help=MONITOR_CRON_HELP)
    probability_attribute: str = constrained("0", pattern=r"\d+",
                                             help="the column of the probability in the text/csv response")
    """Column of the fraud probability in the captured ``text/csv`` response (``inference.py`` answers one
    probability per line, so ``0``). Only inferences requested with ``Accept: text/csv`` can be judged: the JSON
    response has no column for this to address."""
    probability_threshold: float = constrained(0.5, minimum=0.0, maximum=1.0)
    ground_truth_prefix: str = constrained("monitoring/ground-truth", pattern=S3_PREFIX_PATTERN,
                                           help="an S3 key prefix without leading or trailing slash")
    label_delay_hours: int = constrained(24, minimum=0, maximum=24 * 30)
    """Labels arrive this long after the inference: each run judges the 24 hours that end this long ago."""
    min_auc: float = constrained(0.75, minimum=0.0, maximum=1.0, help="AUC below which the alarm pages")


@dataclass(frozen=True, kw_only=True)
class MonitorConfig:
    """Model Monitor on the endpoint's data capture: baseline, schedules, alarms."""

    enabled: bool = True
    instance_type: str = constrained("ml.m5.xlarge", pattern=INSTANCE_TYPE_PATTERN,
                                     help="a SageMaker instance type such as ml.m5.xlarge")
    volume_size_gb: int = constrained(20, minimum=1, maximum=512)
    max_runtime_s: int = constrained(1800, minimum=60, maximum=3600,
                                     help="seconds; an hourly schedule's runs must finish within the hour")
    baseline_timeout_minutes: int = constrained(60, minimum=15, maximum=60,
                                                help="minutes the deploy waits for the baselining job (CloudFormation "
                                                     "waits at most an hour for a custom resource)")
    alert_on_failed_runs: bool = True
    data_quality: DataQualityConfig = field(default_factory=DataQualityConfig)
    model_quality: ModelQualityConfig = field(default_factory=ModelQualityConfig)

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


__all__ = ["DataQualityConfig", "ModelQualityConfig", "MonitorConfig", "MONITOR_CRON_PATTERN"]
