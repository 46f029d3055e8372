"""``deploy.monitoring.builtin`` turned into the DriftMonitor's props, the same way for every pattern's stack."""
from __future__ import annotations

import re

import aws_cdk as cdk

from ml_constructs.monitoring.drift_monitor import DriftSchedule, DriftThresholds
from ml_constructs.monitoring.model_monitor import DEFAULT_GROUND_TRUTH_PREFIX
from stacks.config.monitor import BuiltinMonitoringConfig

#: Where each stack's drift job writes its reports and prediction index, and where ops.labels puts labels.
REPORT_PREFIX = "monitoring/drift"
LABELS_PREFIX = DEFAULT_GROUND_TRUTH_PREFIX
#: A nightly batch run is one window: the alarms' period is a day.
BATCH_WINDOW = cdk.Duration.days(1)
_RATE = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_UNITS = {"minute": cdk.Duration.minutes, "hour": cdk.Duration.hours, "day": cdk.Duration.days}


def thresholds(settings: BuiltinMonitoringConfig) -> DriftThresholds:
    return DriftThresholds(psi=settings.psi_threshold, ks=settings.ks_threshold,
                           prediction_psi=settings.prediction_psi_threshold,
                           invalid_rate=settings.invalid_rate_threshold, min_auc=settings.min_auc)


def window_of(expression: str) -> cdk.Duration:
    """The traffic one run reads: the interval of a ``rate(...)`` schedule (so windows tile without gaps or
    overlap); an hour for a ``cron(...)``, the default schedule's interval."""
    match = _RATE.fullmatch(expression.strip())
    if not match:
        return cdk.Duration.hours(1)
    count, unit = int(match.group(1)), match.group(2).rstrip("s")
    return _UNITS[unit](count)


def scheduled(settings: BuiltinMonitoringConfig) -> DriftSchedule:
    """Real-time and serverless: the job runs on ``settings.schedule`` over the traffic since the last run."""
    return DriftSchedule(expression=settings.schedule, window=window_of(settings.schedule))


def after_each_batch_run(*, runs_scheduled: bool) -> DriftSchedule:
    """Batch: no schedule of its own, the workflow starts the job after each transform; the stalled alarm only
    when nightly runs are expected (the batch schedule is on)."""
    return DriftSchedule(scheduled=False, window=BATCH_WINDOW, heartbeat=runs_scheduled)
