"""Configuration of the real-time (SageMaker endpoint) pattern."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from ml_constructs.common.instance_types import has_instance_storage, is_burstable
from ml_constructs.realtime.guardrails import (
    DEFAULT_EXECUTION_TIMEOUT_S, DEFAULT_TERMINATION_WAIT_S, DEFAULT_WAIT_INTERVAL_S, EXECUTION_TIMEOUT_RANGE,
    MAX_ROLLBACK_ALARMS, TERMINATION_WAIT_RANGE, WAIT_INTERVAL_RANGE, DeploymentGuardrails)
from ml_constructs.realtime.variant_ownership import VariantOwnership
from stacks.config.monitor import MonitorConfig
from stacks.config.schema import constrained

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_INSTANCE_COUNT = 2
INSTANCE_TYPE_PATTERN = r"ml\.[a-z0-9]+\.[a-z0-9]+"
VARIANT_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
ENDPOINT_NAME_PATTERN = VARIANT_NAME_PATTERN


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
class GuardrailsConfig:
    """SageMaker deployment guardrails for every ``cdk deploy`` that updates the endpoint.

    ``strategy``: ALL_AT_ONCE, CANARY or LINEAR (blue/green) or ROLLING (single-variant endpoints only).
    ``size``: canary size / linear step / rolling batch, in ``size_unit`` (INSTANCE_COUNT or CAPACITY_PERCENT).
    ``auto_rollback``: the pattern's p99 latency and 5XX alarms roll the update back when they fire.
    """

    enabled: bool = True
    strategy: Literal["ALL_AT_ONCE", "CANARY", "LINEAR", "ROLLING"] = "CANARY"
    size_unit: Literal["INSTANCE_COUNT", "CAPACITY_PERCENT"] = "INSTANCE_COUNT"
    size: int = constrained(1, minimum=1, maximum=100)
    wait_interval_s: int = constrained(DEFAULT_WAIT_INTERVAL_S, minimum=WAIT_INTERVAL_RANGE[0],
                                       maximum=WAIT_INTERVAL_RANGE[1])
    termination_wait_s: int = constrained(DEFAULT_TERMINATION_WAIT_S, minimum=TERMINATION_WAIT_RANGE[0],
                                          maximum=TERMINATION_WAIT_RANGE[1])
    maximum_execution_timeout_s: int = constrained(DEFAULT_EXECUTION_TIMEOUT_S, minimum=EXECUTION_TIMEOUT_RANGE[0],
                                                   maximum=EXECUTION_TIMEOUT_RANGE[1])
    rollback_batch_size: int | None = constrained(None, minimum=1, maximum=100)
    auto_rollback: bool = True

    def to_construct(self) -> DeploymentGuardrails:
        return DeploymentGuardrails(
            strategy=self.strategy, size_unit=self.size_unit, size=self.size, wait_interval_s=self.wait_interval_s,
            termination_wait_s=self.termination_wait_s, maximum_execution_timeout_s=self.maximum_execution_timeout_s,
            rollback_batch_size=self.rollback_batch_size, auto_rollback=self.auto_rollback)


#: The stack adds one p99 latency and one 5XX alarm per variant as rollback alarms.
ROLLBACK_ALARMS_PER_VARIANT = 2


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
    guardrails: GuardrailsConfig = field(default_factory=GuardrailsConfig)
    weights_owner: Literal["operator", "config"] = "operator"
    """``operator``: weights set with ``ops.traffic`` survive deploys; ``config``: every update resets them."""
    instance_counts_owner: Literal["operator", "config"] = "operator"
    """``operator``: counts set by autoscaling (or by hand) survive deploys; ``config``: every update resets them."""
    monitor: MonitorConfig = field(default_factory=MonitorConfig)

    @property
    def ownership(self) -> VariantOwnership:
        return VariantOwnership(weights_owner=self.weights_owner, instance_counts_owner=self.instance_counts_owner)

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
        if len({has_instance_storage(variant.instance_type) for variant in self.variants}) > 1:
            found.append("variants: instance types with local NVMe storage (e.g. ml.m5d.*) cannot be mixed with "
                         "EBS-backed ones (e.g. ml.m5.*) in one endpoint: the volume KMS key applies to all or none")
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
        return found + self._guardrail_problems() + self.monitor.problems_with_capture(self.data_capture.enabled)

    def _guardrail_problems(self) -> list[str]:
        guardrails = self.guardrails
        if not guardrails.enabled:
            return []
        scaling = self.autoscaling
        scaling_range = (scaling.min_capacity, scaling.max_capacity) if scaling.enabled else None
        fleets = {variant.name: self.ownership.fleet_bounds(initial_instance_count=variant.initial_instance_count,
                                                            autoscaling_range=scaling_range)
                  for variant in self.variants}
        found = [f"guardrails.{key}: {message}" for key, message in guardrails.to_construct().problems(
            fleets=fleets, instance_types={variant.name: variant.instance_type for variant in self.variants})]
        alarms = ROLLBACK_ALARMS_PER_VARIANT * len(self.variants)
        if guardrails.auto_rollback and alarms > MAX_ROLLBACK_ALARMS:
            found.append(f"guardrails.auto_rollback: {len(self.variants)} variants make {alarms} rollback alarms "
                         f"(p99 latency and 5XX each); SageMaker accepts at most {MAX_ROLLBACK_ALARMS}: use at most "
                         f"{MAX_ROLLBACK_ALARMS // ROLLBACK_ALARMS_PER_VARIANT} variants or set auto_rollback to false")
        return found
