"""Configuration of the serverless pattern: Lambda (ONNX) behind API Gateway, plus an S3 upload trigger."""
from __future__ import annotations

import aws_cdk as cdk
from pydantic import Field

from ml_constructs.serverless.model_function import AsyncInvocation, FunctionSizing
from ml_constructs.serverless.prediction_api import ApiThrottling
from ml_constructs.serverless.alarms import ServerlessAlarmThresholds
from typing import Literal

from stacks.config.base import ConfigModel, setting

#: A key prefix: letters, digits and ``-_.!*'()/``, ending with a slash.
PREFIX_PATTERN = r"[A-Za-z0-9!_.*'()/-]*[A-Za-z0-9!_.*'()-]/"
STAGE_NAME_PATTERN = r"[A-Za-z0-9_]{1,128}"
WEB_ACL_ARN_PATTERN = r"arn:aws[a-z-]*:wafv2:[a-z0-9-]+:\d{12}:regional/webacl/.+"
#: The retention periods CloudWatch Logs accepts, in days (ml_constructs.common.encrypted_log_group maps them; a test
#: keeps the two lists equal).
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)
#: Memory a scored file needs, as a multiple of its size, with headroom: a 20 MiB CSV (428k rows) peaked at
#: ~155 MiB here (the bytes, decoded text, float32 rows and the JSON Lines output), and took 3.3 s of one core.
FILE_MEMORY_FACTOR = 10
#: API Gateway REST integrations time out after 29 s by default: a longer function timeout only helps S3 files.
API_INTEGRATION_TIMEOUT_S = 29


class ApiConfig(ConfigModel):
    """``POST /predict`` on an API Gateway REST API integrated with the function's ``live`` alias."""

    auth: Literal["iam", "api_key"] = "iam"
    """``iam``: callers sign requests with SigV4 and need execute-api:Invoke; ``api_key``: an API key and a
    usage plan (throttle and optional daily quota) instead."""
    stage_name: str = setting("prod", pattern=STAGE_NAME_PATTERN, help="letters, digits and underscores")
    throttle_rate_limit: float = setting(50.0, ge=1.0, le=10_000.0,
                                             help="steady-state requests per second for the stage")
    throttle_burst_limit: int = setting(100, ge=1, le=5_000)
    quota_per_day: int | None = setting(None, ge=1, le=100_000_000)
    """Daily request quota of the usage plan (``api_key`` auth only); null means none."""
    max_request_kb: int = setting(256, ge=1, le=6144, help="Lambda's payload limit is 6 MB")
    max_instances: int = setting(1000, ge=1, le=100_000)
    web_acl_arn: str | None = setting(None, pattern=WEB_ACL_ARN_PATTERN, help="a regional WAFv2 web ACL ARN")
    """Associate this WAFv2 web ACL with the stage; null means none (a web ACL costs even when idle)."""
    execution_logging: bool = False
    """API Gateway execution logs (ERROR level), in a log group API Gateway creates itself: not encrypted with
    the stack's key, never expiring, not deleted with the stack. Access logs are always on (encrypted)."""
    access_log_retention_days: int = setting(90, ge=1, le=3653)
    create_account_logging_role: bool = True
    """Create the role API Gateway writes logs with and set it in the account's API Gateway settings (one
    setting per account and region, shared by every REST API there; retained when the stack is deleted).
    Any REST API logging (access logs included) fails without it. False where that setting is managed
    elsewhere and already exists."""

    @property
    def throttling(self) -> ApiThrottling:
        return ApiThrottling(rate_limit=self.throttle_rate_limit, burst_limit=self.throttle_burst_limit)

    def problems(self) -> list[str]:
        found = []
        if self.quota_per_day is not None and self.auth != "api_key":
            found.append("quota_per_day: a quota needs a usage plan, which exists only with auth 'api_key'")
        found += _retention_problems("access_log_retention_days", self.access_log_retention_days)
        return found


def _retention_problems(name: str, days: int) -> list[str]:
    if days in LOG_RETENTION_DAYS:
        return []
    return [f"{name}: {days} is not a CloudWatch Logs retention; allowed values are "
            + ", ".join(map(str, LOG_RETENTION_DAYS))]


class UploadTriggerConfig(ConfigModel):
    """Files of rows (CSV, JSON Lines) uploaded under ``input_prefix`` are scored into ``output_prefix``."""

    enabled: bool = True
    input_prefix: str = setting("incoming/", pattern=PREFIX_PATTERN, help="a key prefix ending with '/'")
    output_prefix: str = setting("predictions/", pattern=PREFIX_PATTERN, help="a key prefix ending with '/'")
    rejected_prefix: str = setting("rejected/", pattern=PREFIX_PATTERN, help="a key prefix ending with '/'")
    max_file_mb: int = setting(20, ge=1, le=200, help="the whole file is held in memory")
    retry_attempts: int = setting(2, ge=0, le=2)
    max_event_age_minutes: int = setting(360, ge=1, le=360)
    reserved_concurrency: int = setting(10, ge=1, le=1000,
                                        help="concurrent executions scoring uploaded files (keeps a burst of "
                                             "uploads from starving the API)")

    @property
    def async_invocation(self) -> AsyncInvocation:
        return AsyncInvocation(retry_attempts=self.retry_attempts,
                               max_event_age=cdk.Duration.minutes(self.max_event_age_minutes))

    def problems(self) -> list[str]:
        found = []
        for name in ("output_prefix", "rejected_prefix"):
            written = getattr(self, name)
            if written.startswith(self.input_prefix) or self.input_prefix.startswith(written):
                found.append(f"{name}: {written!r} overlaps input_prefix {self.input_prefix!r}; the function would "
                             "trigger itself on its own output (a loop)")
        if self.output_prefix == self.rejected_prefix:
            found.append("rejected_prefix: must differ from output_prefix")
        return found


class ServerlessAlarmsConfig(ConfigModel):
    """Alarm thresholds; every alarm notifies the stack's SNS topic."""

    errors_per_5min: int = setting(5, ge=1, le=1_000_000)
    throttles_per_5min: int = setting(1, ge=1, le=1_000_000)
    duration_p99_percent_of_timeout: float = setting(80.0, ge=1.0, le=100.0)
    api_5xx_per_5min: int = setting(5, ge=1, le=1_000_000)
    api_latency_p99_ms: float = setting(1000.0, ge=1.0, le=29_000.0)
    async_failures: int = setting(1, ge=1, le=1_000_000,
                                      help="messages in the on-failure queue")

    def to_construct(self) -> ServerlessAlarmThresholds:
        return ServerlessAlarmThresholds(**self.model_dump())


class ServerlessConfig(ConfigModel):
    """The serverless pattern: zero cost when idle, pay per request."""

    enabled: bool = True
    architecture: Literal["arm64", "x86_64"] = "arm64"
    memory_mb: int = setting(512, ge=128, le=10_240)
    timeout_s: int = setting(30, ge=1, le=900)
    reserved_concurrency: int | None = setting(None, ge=1, le=10_000)
    """Cap on concurrent executions; null means the account's unreserved pool (no cap)."""
    provisioned_concurrency: int = setting(0, ge=0, le=10_000)
    """Pre-initialized environments on the ``live`` alias; 0 keeps idle cost at zero (cold starts happen)."""
    warm: Literal["provisioned", "snapstart", "none"] = "none"
    """How cold starts are avoided: ``provisioned`` (``provisioned_concurrency`` environments kept warm, billed
    while idle), ``snapstart`` (Lambda SnapStart restores a snapshot; no idle cost) or ``none``."""
    metrics_namespace: str | None = setting(None, pattern=r"[A-Za-z0-9.\-_/#:]{1,255}",
                                            help="a CloudWatch namespace (letters, digits and . - _ / # :)")
    """Custom metrics namespace; null means ``MLDeployPatterns/<Model>``."""
    log_retention_days: int = setting(30, ge=1, le=3653)
    tracing: bool = True
    api: ApiConfig = Field(default_factory=ApiConfig)
    upload_trigger: UploadTriggerConfig = Field(default_factory=UploadTriggerConfig)
    alarms: ServerlessAlarmsConfig = Field(default_factory=ServerlessAlarmsConfig)

    @property
    def sizing(self) -> FunctionSizing:
        return FunctionSizing(memory_mb=self.memory_mb, timeout=cdk.Duration.seconds(self.timeout_s),
                              reserved_concurrency=self.reserved_concurrency,
                              provisioned_concurrency=self.provisioned_concurrency,
                              snap_start=self.warm == "snapstart")

    def problems(self) -> list[str]:
        found = _retention_problems("log_retention_days", self.log_retention_days)
        if self.reserved_concurrency is not None and self.provisioned_concurrency > self.reserved_concurrency:
            found.append(f"provisioned_concurrency: {self.provisioned_concurrency} exceeds reserved_concurrency "
                         f"({self.reserved_concurrency})")
        if self.warm == "snapstart" and self.provisioned_concurrency > 0:
            found.append(f"warm: snapstart cannot be combined with provisioned_concurrency "
                         f"({self.provisioned_concurrency}); set provisioned_concurrency to 0 or warm to provisioned")
        if self.warm == "none" and self.provisioned_concurrency > 0:
            found.append(f"provisioned_concurrency: {self.provisioned_concurrency} keeps environments warm, but warm is "
                         "none; set warm to provisioned (or provisioned_concurrency to 0)")
        if self.warm == "provisioned" and self.provisioned_concurrency == 0:
            found.append("warm: provisioned needs provisioned_concurrency of at least 1")
        if (self.reserved_concurrency is not None and self.upload_trigger.enabled
                and self.upload_trigger.reserved_concurrency > self.reserved_concurrency):
            found.append(f"upload_trigger.reserved_concurrency: {self.upload_trigger.reserved_concurrency} exceeds "
                         f"the function's reserved_concurrency ({self.reserved_concurrency})")
        needed = self.upload_trigger.max_file_mb * FILE_MEMORY_FACTOR
        if self.upload_trigger.enabled and needed > self.memory_mb:
            found.append(f"upload_trigger.max_file_mb: a {self.upload_trigger.max_file_mb} MB file needs about "
                         f"{needed} MB of memory ({FILE_MEMORY_FACTOR}x: text, rows, output lines); raise memory_mb "
                         "or lower max_file_mb")
        return found


__all__ = ["ApiConfig", "ServerlessAlarmsConfig", "ServerlessConfig", "UploadTriggerConfig",
           "API_INTEGRATION_TIMEOUT_S"]
