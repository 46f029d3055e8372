"""Configuration of the serverless pattern: Lambda (ONNX) behind API Gateway, plus an S3 upload trigger."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from stacks.config.schema import constrained

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


@dataclass(frozen=True, kw_only=True)
class ApiConfig:
    """``POST /predict`` on an API Gateway REST API integrated with the function's ``live`` alias."""

    auth: Literal["iam", "api_key"] = "iam"
    """``iam``: callers sign requests with SigV4 and need execute-api:Invoke; ``api_key``: an API key and a
    usage plan (throttle and optional daily quota) instead."""
    stage_name: str = constrained("prod", pattern=STAGE_NAME_PATTERN, help="letters, digits and underscores")
    throttle_rate_limit: float = constrained(50.0, minimum=1.0, maximum=10_000.0,
                                             help="steady-state requests per second for the stage")
    throttle_burst_limit: int = constrained(100, minimum=1, maximum=5_000)
    quota_per_day: int | None = constrained(None, minimum=1, maximum=100_000_000)
    """Daily request quota of the usage plan (``api_key`` auth only); null means none."""
    max_request_kb: int = constrained(256, minimum=1, maximum=6144, help="Lambda's payload limit is 6 MB")
    max_instances: int = constrained(1000, minimum=1, maximum=100_000)
    web_acl_arn: str | None = constrained(None, pattern=WEB_ACL_ARN_PATTERN, help="a regional WAFv2 web ACL ARN")
    """Associate this WAFv2 web ACL with the stage; null means none (a web ACL costs even when idle)."""
    execution_logging: bool = False
    """API Gateway execution logs (ERROR level), in a log group API Gateway creates itself: not encrypted with
    the stack's key, never expiring, not deleted with the stack. Access logs are always on (encrypted)."""
    access_log_retention_days: int = constrained(90, minimum=1, maximum=3653)
    create_account_logging_role: bool = True
    """Create the role API Gateway writes logs with and set it in the account's API Gateway settings (one
    setting per account and region, shared by every REST API there; retained when the stack is deleted).
    Any REST API logging (access logs included) fails without it. False where that setting is managed
    elsewhere and already exists."""

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


@dataclass(frozen=True, kw_only=True)
class UploadTriggerConfig:
    """Files of rows (CSV, JSON Lines) uploaded under ``input_prefix`` are scored into ``output_prefix``."""

    enabled: bool = True
    input_prefix: str = constrained("incoming/", pattern=PREFIX_PATTERN, help="a key prefix ending with '/'")
    output_prefix: str = constrained("predictions/", pattern=PREFIX_PATTERN, help="a key prefix ending with '/'")
    rejected_prefix: str = constrained("rejected/", pattern=PREFIX_PATTERN, help="a key prefix ending with '/'")
    max_file_mb: int = constrained(20, minimum=1, maximum=200, help="the whole file is held in memory")
    retry_attempts: int = constrained(2, minimum=0, maximum=2)
    max_event_age_minutes: int = constrained(360, minimum=1, maximum=360)

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


@dataclass(frozen=True, kw_only=True)
class ServerlessAlarmsConfig:
    """Alarm thresholds; every alarm notifies the stack's SNS topic."""

    errors_per_5min: int = constrained(5, minimum=1, maximum=1_000_000)
    throttles_per_5min: int = constrained(1, minimum=1, maximum=1_000_000)
    duration_p99_percent_of_timeout: float = constrained(80.0, minimum=1.0, maximum=100.0)
    api_5xx_per_5min: int = constrained(5, minimum=1, maximum=1_000_000)
    api_latency_p99_ms: float = constrained(1000.0, minimum=1.0, maximum=29_000.0)
    async_failures: int = constrained(1, minimum=1, maximum=1_000_000,
                                      help="messages in the on-failure queue")


@dataclass(frozen=True, kw_only=True)
class ServerlessConfig:
    """The serverless pattern: zero cost when idle, pay per request."""

    enabled: bool = True
    architecture: Literal["arm64", "x86_64"] = "arm64"
    memory_mb: int = constrained(512, minimum=128, maximum=10_240)
    timeout_s: int = constrained(30, minimum=1, maximum=900)
    reserved_concurrency: int | None = constrained(None, minimum=1, maximum=10_000)
    """Cap on concurrent executions; null means the account's unreserved pool (no cap)."""
    provisioned_concurrency: int = constrained(0, minimum=0, maximum=10_000)
    """Pre-initialized environments on the ``live`` alias; 0 keeps idle cost at zero (cold starts happen)."""
    log_retention_days: int = constrained(30, minimum=1, maximum=3653)
    tracing: bool = True
    api: ApiConfig = field(default_factory=ApiConfig)
    upload_trigger: UploadTriggerConfig = field(default_factory=UploadTriggerConfig)
    alarms: ServerlessAlarmsConfig = field(default_factory=ServerlessAlarmsConfig)

    def problems(self) -> list[str]:
        found = _retention_problems("log_retention_days", self.log_retention_days)
        if self.reserved_concurrency is not None and self.provisioned_concurrency > self.reserved_concurrency:
            found.append(f"provisioned_concurrency: {self.provisioned_concurrency} exceeds reserved_concurrency "
                         f"({self.reserved_concurrency})")
        needed = self.upload_trigger.max_file_mb * FILE_MEMORY_FACTOR
        if self.upload_trigger.enabled and needed > self.memory_mb:
            found.append(f"upload_trigger.max_file_mb: a {self.upload_trigger.max_file_mb} MB file needs about "
                         f"{needed} MB of memory ({FILE_MEMORY_FACTOR}x: text, rows, output lines); raise memory_mb "
                         "or lower max_file_mb")
        return found


__all__ = ["ApiConfig", "ServerlessAlarmsConfig", "ServerlessConfig", "UploadTriggerConfig",
           "API_INTEGRATION_TIMEOUT_S"]
