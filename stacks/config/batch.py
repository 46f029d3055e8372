"""Configuration of the batch pattern: a scheduled SageMaker Batch Transform run by Step Functions."""
from __future__ import annotations

import zoneinfo

import aws_cdk as cdk
from pydantic import Field

from ml_constructs.batch.scoring import RetryPolicy, TransformSettings
from stacks.config.base import ConfigModel, setting

DEFAULT_INSTANCE_TYPE = "ml.m5.xlarge"
DEFAULT_INSTANCE_COUNT = 4
DEFAULT_SCHEDULE = "cron(0 2 * * ? *)"
DEFAULT_TIME_ZONE = "UTC"
INSTANCE_TYPE_PATTERN = r"ml\.[a-z0-9]+\.[a-z0-9]+"
#: CreateTransformJob: MaxConcurrentTransforms * MaxPayloadInMB must not exceed 100 MB.
MAX_CONCURRENT_PAYLOAD_MB = 100
#: Transform job names allow 63 characters: ``<prefix>-<execution name (UUID, 36)>-<attempt><retry>``.
MAX_JOB_NAME_PREFIX = 23
#: Lower case: SageMaker lower-cases job names in ARNs, and the IAM policy built from the prefix must match them.
JOB_NAME_PREFIX_PATTERN = r"[a-z0-9](-*[a-z0-9]){0,22}"
BUCKET_NAME_PATTERN = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
KMS_KEY_ARN_PATTERN = r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-zA-Z0-9-]+"
SCHEDULE_PATTERN = r"(cron|rate)\(.+\)"
PREFIX_PATTERN = r"([A-Za-z0-9!_.*'()-]+/)*"


class BatchTransformConfig(ConfigModel):
    """The transform job: instances, payload packing and the ID column kept next to each prediction."""

    instance_type: str = setting(DEFAULT_INSTANCE_TYPE, pattern=INSTANCE_TYPE_PATTERN,
                                     help="a SageMaker instance type such as ml.m5.xlarge")
    instance_count: int = setting(DEFAULT_INSTANCE_COUNT, ge=1, le=100)
    max_payload_mb: int = setting(6, ge=1, le=100,
                                      help="MaxPayloadInMB: lines are packed into requests of at most this size")
    max_concurrent_transforms: int = setting(4, ge=1, le=100,
                                                 help="requests in flight per instance (one per vCPU suits the "
                                                      "scikit-learn container's one worker per vCPU)")
    id_column: int | None = setting(0, ge=0, le=1000)
    """0-based column of the row identifier, excluded from features and written next to the prediction;
    null: every column is a feature and the whole input row is kept."""
    job_timeout_minutes: int = setting(360, ge=10, le=7 * 24 * 60)

    def to_construct(self) -> TransformSettings:
        return TransformSettings(instance_type=self.instance_type, instance_count=self.instance_count,
                                 max_payload_mb=self.max_payload_mb,
                                 max_concurrent_transforms=self.max_concurrent_transforms, id_column=self.id_column,
                                 job_timeout=cdk.Duration.minutes(self.job_timeout_minutes))

    def problems(self) -> list[str]:
        if self.max_concurrent_transforms * self.max_payload_mb > MAX_CONCURRENT_PAYLOAD_MB:
            return [f"max_concurrent_transforms * max_payload_mb is {self.max_concurrent_transforms} * "
                    f"{self.max_payload_mb} = {self.max_concurrent_transforms * self.max_payload_mb} MB; "
                    f"SageMaker allows at most {MAX_CONCURRENT_PAYLOAD_MB} MB"]
        return []


class BatchScheduleConfig(ConfigModel):
    """When runs start: an EventBridge Scheduler cron or rate expression in a time zone."""

    enabled: bool = True
    """false keeps the schedule but DISABLED (manual runs still work)."""
    expression: str = setting(DEFAULT_SCHEDULE, pattern=SCHEDULE_PATTERN,
                                  help="an EventBridge Scheduler expression such as cron(0 2 * * ? *) or "
                                       "rate(12 hours)")
    time_zone: str = DEFAULT_TIME_ZONE
    """IANA time zone the cron is evaluated in, e.g. Europe/Berlin."""

    def problems(self) -> list[str]:
        if not zoneinfo.available_timezones():
            return []  # no tz database on this machine (no /usr/share/zoneinfo, no tzdata): Scheduler will check
        try:
            zoneinfo.ZoneInfo(self.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            return [f"time_zone: {self.time_zone!r} is not an IANA time zone such as UTC or Europe/Berlin"]
        return []


class BatchStorageConfig(ConfigModel):
    """Input and output buckets: created (KMS, versioned, TLS-only, retained) or existing ones by name."""

    input_bucket_name: str | None = setting(None, pattern=BUCKET_NAME_PATTERN, help="an S3 bucket name")
    """null creates the input bucket."""
    input_kms_key_arn: str | None = setting(None, pattern=KMS_KEY_ARN_PATTERN, help="a KMS key ARN")
    """Key of an existing SSE-KMS input bucket (the transform job needs kms:Decrypt on it)."""
    output_bucket_name: str | None = setting(None, pattern=BUCKET_NAME_PATTERN, help="an S3 bucket name")
    """null creates the output bucket; predictions are encrypted with this stack's key either way."""
    default_input_prefix: str = setting("input/", pattern=PREFIX_PATTERN,
                                            help="a key prefix ending in / such as input/")
    """Scheduled runs score every object under ``s3://<input bucket>/<default_input_prefix>``."""

    def problems(self) -> list[str]:
        if self.input_kms_key_arn and not self.input_bucket_name:
            return ["input_kms_key_arn: only applies to an existing bucket; set input_bucket_name or remove it"]
        return []


class BatchRetryConfig(ConfigModel):
    """Retries with exponential backoff: throttling/API errors, and transform jobs that found no capacity."""

    max_attempts: int = setting(4, ge=0, le=8)
    interval_s: int = setting(30, ge=1, le=3600)
    backoff_rate: float = setting(2.0, ge=1.0, le=10.0)
    capacity_retries: int = setting(2, ge=0, le=9)
    """How often a job that failed with CapacityError is started again."""
    capacity_wait_minutes: int = setting(15, ge=1, le=240)
    """Wait before the first capacity retry; doubles on each further one."""

    def to_construct(self) -> RetryPolicy:
        return RetryPolicy(max_attempts=self.max_attempts, interval=cdk.Duration.seconds(self.interval_s),
                           backoff_rate=self.backoff_rate, capacity_retries=self.capacity_retries,
                           capacity_wait=cdk.Duration.minutes(self.capacity_wait_minutes))


class BatchConfig(ConfigModel):
    """The batch pattern: nightly scoring of an S3 input, predictions stored by date and model version."""

    enabled: bool = True
    job_name_prefix: str | None = setting(None, pattern=JOB_NAME_PREFIX_PATTERN,
                                              help=f"lower-case letters, digits and hyphens (max "
                                                   f"{MAX_JOB_NAME_PREFIX})")
    """Transform job names read ``<prefix>-<execution name>-<attempt><retry>``; null means the model name in
    lower case (plus ``-<env>`` with ``-c env=<env>``)."""
    execution_timeout_minutes: int = setting(720, ge=15, le=7 * 24 * 60)
    transform: BatchTransformConfig = Field(default_factory=BatchTransformConfig)
    schedule: BatchScheduleConfig = Field(default_factory=BatchScheduleConfig)
    storage: BatchStorageConfig = Field(default_factory=BatchStorageConfig)
    retry: BatchRetryConfig = Field(default_factory=BatchRetryConfig)

    def problems(self) -> list[str]:
        if self.transform.job_timeout_minutes >= self.execution_timeout_minutes:
            return [f"transform.job_timeout_minutes ({self.transform.job_timeout_minutes}) must be below "
                    f"execution_timeout_minutes ({self.execution_timeout_minutes}) so a stuck job is stopped and "
                    "reported before the execution itself times out"]
        return []


__all__ = ["BatchConfig", "BatchTransformConfig", "BatchScheduleConfig", "BatchStorageConfig", "BatchRetryConfig"]
