"""Configuration of the real-time (SageMaker endpoint) pattern."""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from stacks.config.schema import constrained

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_INSTANCE_COUNT = 2
INSTANCE_TYPE_PATTERN = r"ml\.[a-z0-9]+\.[a-z0-9]+"
VARIANT_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
ENDPOINT_NAME_PATTERN = VARIANT_NAME_PATTERN


def is_burstable(instance_type: str) -> bool:
    """``ml.t2``/``ml.t3`` instances cannot be autoscaled (SageMaker refuses the scalable target)."""
    return re.fullmatch(r"ml\.t\d[a-z]*\..+", instance_type) is not None


@dataclass(frozen=True, kw_only=True)
class VariantConfig:
    """One production variant: a model version on its own instances with a share of traffic."""

    name: str = constrained("v1", pattern=VARIANT_NAME_PATTERN, help="letters, digits and hyphens (max 63)")
    artifacts_dir: str | None = None
    """Training artifacts of this variant's model; null means ``model.artifacts_dir``."""
    instance_type: str = constrained(DEFAULT_INSTANCE_TYPE, pattern=INSTANCE_TYPE_PATTERN,
                                     help="a SageMaker instance type such as ml.m5.large")
    initial_instance_count: int = constrained(DEFAULT_INSTANCE_COUNT, minimum=1, maximum=100)
    initial_weight: float = constrained(1.0, minimum=0.0, maximum=1000.0)


@dataclass(frozen=True, kw_only=True)
class AutoscalingConfig:
    """Target tracking on SageMakerVariantInvocationsPerInstance, applied to every variant."""

    enabled: bool = True
    min_capacity: int = constrained(1, minimum=1, maximum=100)
    max_capacity: int = constrained(10, minimum=1, maximum=100)
    invocations_per_instance: int = constrained(1000, minimum=1, maximum=1_000_000,
                                                help="target invocations per instance per minute")
    scale_in_cooldown_s: int = constrained(300, minimum=0, maximum=3600)
    scale_out_cooldown_s: int = constrained(60, minimum=0, maximum=3600)

    def problems(self) -> list[str]:
        if self.min_capacity > self.max_capacity:
            return [f"min_capacity: {self.min_capacity} must not exceed max_capacity ({self.max_capacity})"]
        return []


@dataclass(frozen=True, kw_only=True)
class DataCaptureConfig:
    """Request/response capture to S3 (needed by Model Monitor)."""

    enabled: bool = True
    sampling_percent: int = constrained(100, minimum=1, maximum=100)


@dataclass(frozen=True, kw_only=True)
class RealtimeAlarmsConfig:
    """Alarm thresholds. Latency is configured in ms and compared in µs, SageMaker's unit."""

    latency_p99_ms: float = constrained(500.0, minimum=1.0, maximum=60_000.0)
    errors_5xx_per_5min: int = constrained(10, minimum=1, maximum=1_000_000)


@dataclass(frozen=True, kw_only=True)
class RealtimeConfig:
    """The SageMaker real-time endpoint pattern."""

    enabled: bool = True
    endpoint_name: str | None = constrained(None, pattern=ENDPOINT_NAME_PATTERN,
                                            help="letters, digits and hyphens (max 63)")
    """Fixed endpoint name (alarms reference it without a dependency cycle); null means ``<model>-realtime``."""
    variants: tuple[VariantConfig, ...] = field(default_factory=lambda: (VariantConfig(),))
    autoscaling: AutoscalingConfig = field(default_factory=AutoscalingConfig)
    data_capture: DataCaptureConfig = field(default_factory=DataCaptureConfig)
    alarms: RealtimeAlarmsConfig = field(default_factory=RealtimeAlarmsConfig)

    def problems(self) -> list[str]:
        found: list[str] = []
        if not self.variants:
            return ["variants: at least one production variant is required"]
        names = [variant.name for variant in self.variants]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            found.append(f"variants: names must be unique, repeated: {', '.join(duplicates)}")
        if sum(variant.initial_weight for variant in self.variants) <= 0:
            found.append("variants: at least one variant needs an initial_weight above 0")
        for index, variant in enumerate(self.variants):
            if self.autoscaling.enabled and is_burstable(variant.instance_type):
                found.append(f"variants[{index}].instance_type: {variant.instance_type} is burstable and cannot "
                             "autoscale; choose a non-burstable type (e.g. ml.m5.large) or set autoscaling.enabled "
                             "to false")
            if self.autoscaling.enabled and not (
                    self.autoscaling.min_capacity <= variant.initial_instance_count <= self.autoscaling.max_capacity):
                found.append(f"variants[{index}].initial_instance_count: {variant.initial_instance_count} is outside "
                             f"autoscaling min_capacity..max_capacity ({self.autoscaling.min_capacity}.."
                             f"{self.autoscaling.max_capacity})")
        return found
