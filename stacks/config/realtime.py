"""Configuration of the real-time (SageMaker endpoint) pattern."""
from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from ml_constructs.realtime.guardrails import (
    DEFAULT_EXECUTION_TIMEOUT_S, DEFAULT_TERMINATION_WAIT_S, DEFAULT_WAIT_INTERVAL_S, EXECUTION_TIMEOUT_RANGE,
    MAX_ROLLBACK_ALARMS, TERMINATION_WAIT_RANGE, WAIT_INTERVAL_RANGE, DeploymentGuardrails)
import aws_cdk as cdk

from ml_constructs.realtime.alarms import EndpointAlarmThresholds
from ml_constructs.common.instance_types import has_instance_storage, is_burstable
from ml_constructs.realtime.endpoint import Autoscaling
from ml_constructs.realtime.variant_ownership import VariantOwnership
from stacks.config.base import ConfigModel, setting
from stacks.config.monitor import MonitorConfig

DEFAULT_INSTANCE_TYPE = "ml.m5.large"
DEFAULT_INSTANCE_COUNT = 2
INSTANCE_TYPE_PATTERN = r"ml\.[a-z0-9]+\.[a-z0-9]+"
VARIANT_NAME_PATTERN = r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"
ENDPOINT_NAME_PATTERN = VARIANT_NAME_PATTERN


class VariantConfig(ConfigModel):
    """One production variant: instances and a share of traffic for the model or the candidate."""

    name: str = setting("v1", pattern=VARIANT_NAME_PATTERN, help="letters, digits and hyphens (max 63)")
    model: Literal["main", "candidate"] = "main"
    """``main``: serves ``deploy.model.artifacts_dir``; ``candidate``: serves ``deploy.model.candidate_dir`` and is
    left out while that is null (then one key deploys one model)."""
    instance_type: str = setting(DEFAULT_INSTANCE_TYPE, pattern=INSTANCE_TYPE_PATTERN,
                                     help="a SageMaker instance type such as ml.m5.large")
    initial_instance_count: int = setting(DEFAULT_INSTANCE_COUNT, ge=1, le=100)
    initial_weight: float = setting(1.0, ge=0.0, le=1000.0)


class AutoscalingConfig(ConfigModel):
    """Target tracking on SageMakerVariantInvocationsPerInstance, applied to every variant."""

    enabled: bool = True
    min_capacity: int = setting(DEFAULT_INSTANCE_COUNT, ge=1, le=100)
    max_capacity: int = setting(10, ge=1, le=100)
    invocations_per_instance: int = setting(1000, ge=1, le=1_000_000,
                                                help="target invocations per instance per minute")
    scale_in_cooldown_s: int = setting(300, ge=0, le=3600)
    scale_out_cooldown_s: int = setting(60, ge=0, le=3600)

    def to_construct(self) -> Autoscaling | None:
        """The endpoint construct's props; None when autoscaling is off."""
        if not self.enabled:
            return None
        return Autoscaling(min_capacity=self.min_capacity, max_capacity=self.max_capacity,
                           invocations_per_instance=self.invocations_per_instance,
                           scale_in_cooldown=cdk.Duration.seconds(self.scale_in_cooldown_s),
                           scale_out_cooldown=cdk.Duration.seconds(self.scale_out_cooldown_s))

    def problems(self) -> list[str]:
        if self.min_capacity > self.max_capacity:
            return [f"min_capacity: {self.min_capacity} must not exceed max_capacity ({self.max_capacity})"]
        return []


class DataCaptureConfig(ConfigModel):
    """Request/response capture to S3 (needed by Model Monitor)."""

    enabled: bool = True
    sampling_percent: int = setting(100, ge=1, le=100)


class RealtimeAlarmsConfig(ConfigModel):
    """Alarm thresholds. Latency is configured in ms and compared in µs, SageMaker's unit."""

    latency_p99_ms: float = setting(500.0, ge=1.0, le=60_000.0)
    errors_5xx_per_5min: int = setting(10, ge=1, le=1_000_000)

    def to_construct(self) -> EndpointAlarmThresholds:
        return EndpointAlarmThresholds(latency_p99_ms=self.latency_p99_ms,
                                       errors_5xx_per_5min=self.errors_5xx_per_5min)


class GuardrailsConfig(ConfigModel):
    """SageMaker deployment guardrails for every ``cdk deploy`` that updates the endpoint.

    ``strategy``: ALL_AT_ONCE, CANARY or LINEAR (blue/green) or ROLLING (single-variant endpoints only).
    ``size``: canary size / linear step / rolling batch, in ``size_unit`` (INSTANCE_COUNT or CAPACITY_PERCENT).
    ``auto_rollback``: the pattern's p99 latency and 5XX alarms roll the update back when they fire.
    """

    enabled: bool = True
    strategy: Literal["ALL_AT_ONCE", "CANARY", "LINEAR", "ROLLING"] = "CANARY"
    size_unit: Literal["INSTANCE_COUNT", "CAPACITY_PERCENT"] = "INSTANCE_COUNT"
    size: int = setting(1, ge=1, le=100)
    wait_interval_s: int = setting(DEFAULT_WAIT_INTERVAL_S, ge=WAIT_INTERVAL_RANGE[0],
                                       le=WAIT_INTERVAL_RANGE[1])
    termination_wait_s: int = setting(DEFAULT_TERMINATION_WAIT_S, ge=TERMINATION_WAIT_RANGE[0],
                                          le=TERMINATION_WAIT_RANGE[1])
    maximum_execution_timeout_s: int = setting(DEFAULT_EXECUTION_TIMEOUT_S, ge=EXECUTION_TIMEOUT_RANGE[0],
                                                   le=EXECUTION_TIMEOUT_RANGE[1])
    rollback_batch_size: int | None = setting(None, ge=1, le=100)
    auto_rollback: bool = True

    def to_construct(self) -> DeploymentGuardrails:
        return DeploymentGuardrails(
            strategy=self.strategy, size_unit=self.size_unit, size=self.size, wait_interval_s=self.wait_interval_s,
            termination_wait_s=self.termination_wait_s, maximum_execution_timeout_s=self.maximum_execution_timeout_s,
            rollback_batch_size=self.rollback_batch_size, auto_rollback=self.auto_rollback)


class RealtimeServerlessConfig(ConfigModel):
    """A serverless endpoint (``mode: serverless``): no instances, billed per request and memory."""

    memory_mb: int = setting(2048, ge=1024, le=6144, multiple_of=1024, help="1024 to 6144 in steps of 1024")
    max_concurrency: int = setting(20, ge=1, le=200)
    provisioned_concurrency: int = setting(0, ge=0, le=200)
    """Warm capacity kept ready (billed while idle); at most ``max_concurrency``."""

    def problems(self) -> list[str]:
        if self.provisioned_concurrency > self.max_concurrency:
            return [f"provisioned_concurrency: {self.provisioned_concurrency} exceeds max_concurrency "
                    f"({self.max_concurrency})"]
        return []


class RealtimeAsyncConfig(ConfigModel):
    """An asynchronous endpoint (``mode: async``): requests queued from S3, scaled on the backlog (to zero)."""

    max_concurrent_invocations_per_instance: int = setting(4, ge=1, le=1000)
    min_capacity: int = setting(0, ge=0, le=100, help="0 lets the endpoint scale in to no instances")
    max_capacity: int = setting(4, ge=1, le=100)
    backlog_per_instance_target: float = setting(5, ge=0.1, le=100_000,
                                                 help="queued requests per instance the scaling tracks")

    def problems(self) -> list[str]:
        if self.min_capacity > self.max_capacity:
            return [f"min_capacity: {self.min_capacity} must not exceed max_capacity ({self.max_capacity})"]
        return []


class ShadowConfig(ConfigModel):
    """``rollout: shadow``: the candidate receives a copy of live requests; callers only see the main model."""

    sampling_percent: int = setting(50, ge=1, le=100, help="percent of requests copied to the candidate")


def _default_variants() -> tuple[VariantConfig, ...]:
    return (VariantConfig(name="v1", model="main", initial_weight=0.9),
            VariantConfig(name="v2", model="candidate", initial_weight=0.1))


#: The stack adds one p99 latency and one 5XX alarm per variant as rollback alarms.
ROLLBACK_ALARMS_PER_VARIANT = 2


class RealtimeConfig(ConfigModel):
    """The SageMaker real-time endpoint pattern."""

    enabled: bool = True
    endpoint_name: str | None = setting(None, pattern=ENDPOINT_NAME_PATTERN,
                                            help="letters, digits and hyphens (max 63)")
    """Fixed endpoint name (alarms reference it without a dependency cycle); null means ``<model>-realtime``."""
    mode: Literal["instances", "serverless", "async"] = "instances"
    """``instances``: provisioned instances (autoscaled); ``serverless``: a serverless endpoint (``serverless``);
    ``async``: an asynchronous endpoint (``async``)."""
    variants: tuple[VariantConfig, ...] = Field(default_factory=_default_variants)
    """Instances and weights; variants marked ``model: candidate`` only deploy with ``deploy.model.candidate_dir``."""
    rollout: Literal["canary", "shadow"] = "canary"
    """How a candidate is tried: ``canary`` (its variant takes its weight of live traffic) or ``shadow`` (it gets
    a copy of requests, see ``shadow``)."""
    shadow: ShadowConfig = Field(default_factory=ShadowConfig)
    serverless: RealtimeServerlessConfig = Field(default_factory=RealtimeServerlessConfig)
    async_: RealtimeAsyncConfig = Field(default_factory=RealtimeAsyncConfig, alias="async")
    autoscaling: AutoscalingConfig = Field(default_factory=AutoscalingConfig)
    data_capture: DataCaptureConfig = Field(default_factory=DataCaptureConfig)
    alarms: RealtimeAlarmsConfig = Field(default_factory=RealtimeAlarmsConfig)
    guardrails: GuardrailsConfig = Field(default_factory=GuardrailsConfig)
    weights_owner: Literal["operator", "config"] = "operator"
    """``operator``: weights set with ``ops.traffic`` survive deploys; ``config``: every update resets them."""
    instance_counts_owner: Literal["operator", "config"] = "operator"
    """``operator``: counts set by autoscaling (or by hand) survive deploys; ``config``: every update resets them."""
    monitor: MonitorConfig = Field(default_factory=MonitorConfig)

    @property
    def capture_enabled(self) -> bool:
        """Data capture where the mode has it: a serverless endpoint cannot capture (an explicit true is refused)."""
        return self.data_capture.enabled and self.mode != "serverless"

    @property
    def model_monitor_enabled(self) -> bool:
        """Model Monitor needs captured traffic, so never on a serverless endpoint (an explicit true is refused)."""
        return self.monitor.enabled and self.mode != "serverless"

    @property
    def ownership(self) -> VariantOwnership:
        return VariantOwnership(weights_owner=self.weights_owner, instance_counts_owner=self.instance_counts_owner)

    def active_variants(self, *, has_candidate: bool) -> tuple[VariantConfig, ...]:
        """The variants that deploy: candidate ones only when there is a candidate model."""
        return tuple(variant for variant in self.variants if has_candidate or variant.model == "main")

    def problems_in_context(self, context: dict[str, Any]) -> list[str]:
        """Checks that depend on ``deploy.model.candidate_dir`` (given by the loader as ``has_candidate``)."""
        has_candidate = bool(context.get("has_candidate"))
        found = self._mode_problems(has_candidate)
        active = self.active_variants(has_candidate=has_candidate)
        if not any(variant.model == "main" for variant in self.variants):
            return found + ["variants: at least one variant must serve the main model (model: main)"]
        if has_candidate and not any(variant.model == "candidate" for variant in self.variants):
            found.append("variants: deploy.model.candidate_dir is set but no variant serves it; add a variant with "
                         "model: candidate (its instances and weight)")
        if self.mode != "serverless":
            found += self.monitor.problems_with_capture(self.data_capture.enabled)
        if self.mode != "instances":
            return found
        return found + self._variant_problems(active)

    def _mode_problems(self, has_candidate: bool) -> list[str]:
        """One line per refused combination of mode, rollout and candidate."""
        found = []
        if self.rollout == "shadow" and self.mode != "instances":
            kind = "serverless" if self.mode == "serverless" else "asynchronous"
            found.append(f"rollout: shadow variants are not supported by {kind} endpoints; use mode instances or "
                         "rollout canary")
        elif self.rollout == "shadow" and not has_candidate:
            found.append("rollout: shadow needs a candidate model to shadow; set deploy.model.candidate_dir or use "
                         "rollout canary")
        if self.mode == "serverless":
            # Only an explicit `true` is refused: by default a serverless endpoint simply has no capture.
            if self.data_capture.enabled and "enabled" in self.data_capture.model_fields_set:
                found.append("data_capture.enabled: serverless endpoints do not support data capture; set "
                             "deploy.realtime.data_capture.enabled to false or use mode instances")
            if self.monitor.enabled and "enabled" in self.monitor.model_fields_set:
                found.append("monitor.enabled: Model Monitor needs data capture, which serverless endpoints lack; "
                             "set deploy.realtime.monitor.enabled to false or use mode instances")
            if has_candidate and self.rollout != "shadow":
                found.append("deploy.model.candidate_dir: a serverless endpoint here serves one model (one "
                             "production variant); remove the candidate or use mode instances")
        return found

    def _variant_problems(self, variants: tuple[VariantConfig, ...]) -> list[str]:
        found: list[str] = []
        names = [variant.name for variant in self.variants]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            found.append(f"variants: names must be unique, repeated: {', '.join(duplicates)}")
        if sum(variant.initial_weight for variant in variants) <= 0:
            found.append("variants: at least one variant needs an initial_weight above 0")
        if len({has_instance_storage(variant.instance_type) for variant in variants}) > 1:
            found.append("variants: instance types with local NVMe storage (e.g. ml.m5d.*) cannot be mixed with "
                         "EBS-backed ones (e.g. ml.m5.*) in one endpoint: the volume KMS key applies to all or none")
        for index, variant in enumerate(self.variants):
            if not any(active is variant for active in variants):
                continue
            if self.autoscaling.enabled and is_burstable(variant.instance_type):
                found.append(f"variants.{index}.instance_type: {variant.instance_type} is burstable and cannot "
                             "autoscale; choose a non-burstable type (e.g. ml.m5.large) or set autoscaling.enabled "
                             "to false")
            if self.autoscaling.enabled and not (
                    self.autoscaling.min_capacity <= variant.initial_instance_count <= self.autoscaling.max_capacity):
                found.append(f"variants.{index}.initial_instance_count: {variant.initial_instance_count} is outside "
                             f"autoscaling min_capacity..max_capacity ({self.autoscaling.min_capacity}.."
                             f"{self.autoscaling.max_capacity})")
        return found + self._guardrail_problems(variants)

    def _guardrail_problems(self, variants: tuple[VariantConfig, ...]) -> list[str]:
        guardrails = self.guardrails
        if not guardrails.enabled:
            return []
        scaling = self.autoscaling
        scaling_range = (scaling.min_capacity, scaling.max_capacity) if scaling.enabled else None
        fleets = {variant.name: self.ownership.fleet_bounds(initial_instance_count=variant.initial_instance_count,
                                                            autoscaling_range=scaling_range)
                  for variant in variants}
        found = [f"guardrails.{key}: {message}" for key, message in guardrails.to_construct().problems(
            fleets=fleets, instance_types={variant.name: variant.instance_type for variant in variants})]
        alarms = ROLLBACK_ALARMS_PER_VARIANT * len(variants)
        if guardrails.auto_rollback and alarms > MAX_ROLLBACK_ALARMS:
            found.append(f"guardrails.auto_rollback: {len(variants)} variants make {alarms} rollback alarms "
                         f"(p99 latency and 5XX each); SageMaker accepts at most {MAX_ROLLBACK_ALARMS}: use at most "
                         f"{MAX_ROLLBACK_ALARMS // ROLLBACK_ALARMS_PER_VARIANT} variants or set auto_rollback to false")
        return found
