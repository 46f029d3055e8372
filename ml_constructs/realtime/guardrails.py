"""SageMaker deployment guardrails for endpoint updates, and the rules SageMaker documents for them.

A guardrail decides how ``UpdateEndpoint`` moves traffic from the old (blue) fleet to the new
(green) one: blue/green ``ALL_AT_ONCE``, ``CANARY`` (one small step, bake, then the rest) or
``LINEAR`` (equal steps), or a ``ROLLING`` replacement in batches. During every bake SageMaker
watches the rollback alarms and returns all traffic to the old fleet if one fires.

Rules and ranges below come from the SageMaker API reference (DeploymentConfig,
BlueGreenUpdatePolicy, TrafficRoutingConfig, RollingUpdatePolicy, CapacitySize,
AutoRollbackConfig) and the developer guide page "Deployment guardrails - Exclusions". They are
checked at synth because a wrong value otherwise surfaces as a failed (and rolled back) deploy.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal, Mapping, Sequence

from aws_cdk import aws_sagemaker as sagemaker

Strategy = Literal["ALL_AT_ONCE", "CANARY", "LINEAR", "ROLLING"]
SizeUnit = Literal["INSTANCE_COUNT", "CAPACITY_PERCENT"]
STRATEGIES: tuple[str, ...] = ("ALL_AT_ONCE", "CANARY", "LINEAR", "ROLLING")
SIZE_UNITS: tuple[str, ...] = ("INSTANCE_COUNT", "CAPACITY_PERCENT")

#: TrafficRoutingConfig.WaitIntervalInSeconds and RollingUpdatePolicy.WaitIntervalInSeconds: 0..3600.
WAIT_INTERVAL_RANGE = (0, 3600)
#: BlueGreenUpdatePolicy.TerminationWaitInSeconds: 0..3600.
TERMINATION_WAIT_RANGE = (0, 3600)
#: MaximumExecutionTimeoutInSeconds (blue/green and rolling): 600..28800, and "larger than the total
#: waiting time specified in TerminationWaitInSeconds and WaitIntervalInSeconds".
EXECUTION_TIMEOUT_RANGE = (600, 28800)
#: AutoRollbackConfig.Alarms: 1..10 items.
MAX_ROLLBACK_ALARMS = 10
#: Share of a variant's instance count one step may take: CanarySize "<= 50%", LinearStepSize "10-50%",
#: RollingUpdatePolicy.MaximumBatchSize "between 5% to 50%" of "the variant's total instance count".
STEP_SHARE_RANGE: dict[str, tuple[float, float]] = {
    "CANARY": (0.0, 0.5), "LINEAR": (0.10, 0.5), "ROLLING": (0.05, 0.5)}
STEP_NAMES = {"CANARY": "CanarySize", "LINEAR": "LinearStepSize", "ROLLING": "MaximumBatchSize"}
#: "Exclusions": endpoints on Inf1 instances cannot use guardrails (SageMaker silently falls back to
#: all-at-once with no baking period), and rolling deployments exclude multi-variant endpoints.
_INF1 = re.compile(r"ml\.inf1\..+")

DEFAULT_STRATEGY = "CANARY"
DEFAULT_WAIT_INTERVAL_S = 600
DEFAULT_TERMINATION_WAIT_S = 300
DEFAULT_EXECUTION_TIMEOUT_S = 3600


@dataclass(frozen=True)
class FleetBounds:
    """The fewest and most instances a variant can have when an update starts."""

    smallest: int
    largest: int


@dataclass(frozen=True, kw_only=True)
class DeploymentGuardrails:
    """How an endpoint update shifts traffic, and when SageMaker rolls it back by itself.

    ``size`` is the canary size (``CANARY``), the step (``LINEAR``) or the batch (``ROLLING``), in
    ``size_unit`` (instances or percent of the variant's instances); ``ALL_AT_ONCE`` ignores it.
    ``wait_interval_s`` is the bake after each step, ``termination_wait_s`` the final bake before the
    old fleet is terminated (blue/green only). With ``auto_rollback`` the endpoint's alarms (added with
    :meth:`RealtimeEndpoint.add_rollback_alarms`) roll the update back when they fire.
    """

    strategy: Strategy = DEFAULT_STRATEGY
    size_unit: SizeUnit = "INSTANCE_COUNT"
    size: int = 1
    wait_interval_s: int = DEFAULT_WAIT_INTERVAL_S
    termination_wait_s: int = DEFAULT_TERMINATION_WAIT_S
    maximum_execution_timeout_s: int = DEFAULT_EXECUTION_TIMEOUT_S
    rollback_batch_size: int | None = None
    """Rolling only: batch size (in ``size_unit``) when rolling back; None brings the old fleet back at once."""
    auto_rollback: bool = True

    @property
    def is_rolling(self) -> bool:
        return self.strategy == "ROLLING"

    def steps(self, fleets: Mapping[str, FleetBounds]) -> int:
        """How many bakes of ``wait_interval_s`` an update can take at most."""
        if self.strategy in ("ALL_AT_ONCE", "CANARY"):
            return 1
        if self.size_unit == "CAPACITY_PERCENT":
            return math.ceil(100 / self.size)
        largest = max((fleet.largest for fleet in fleets.values()), default=1)
        return math.ceil(largest / self.size)

    def total_wait_s(self, fleets: Mapping[str, FleetBounds]) -> int:
        """Waiting time an update spends baking; the execution timeout must be larger."""
        final_bake = 0 if self.is_rolling else self.termination_wait_s
        return self.steps(fleets) * self.wait_interval_s + final_bake

    def problems(self, *, fleets: Mapping[str, FleetBounds],
                 instance_types: Mapping[str, str]) -> list[tuple[str, str]]:
        """Every broken rule as ``(field, message)``, for variants keyed by name."""
        found: list[tuple[str, str]] = []
        if self.strategy not in STRATEGIES:
            found.append(("strategy", f"{self.strategy!r} is not one of {', '.join(STRATEGIES)}"))
            return found
        if self.size_unit not in SIZE_UNITS:
            found.append(("size_unit", f"{self.size_unit!r} is not one of {', '.join(SIZE_UNITS)}"))
            return found
        found += _range_problem("wait_interval_s", self.wait_interval_s, WAIT_INTERVAL_RANGE, "WaitIntervalInSeconds")
        found += _range_problem("termination_wait_s", self.termination_wait_s, TERMINATION_WAIT_RANGE,
                                "TerminationWaitInSeconds")
        found += _range_problem("maximum_execution_timeout_s", self.maximum_execution_timeout_s,
                                EXECUTION_TIMEOUT_RANGE, "MaximumExecutionTimeoutInSeconds")
        for name, instance_type in instance_types.items():
            if _INF1.fullmatch(instance_type):
                found.append(("enabled", f"variant {name} runs on {instance_type}: SageMaker does not apply deployment "
                                         "guardrails to Inf1 endpoints (it falls back to all-at-once with no baking "
                                         "period); disable guardrails or choose another instance type"))
        if self.is_rolling and len(fleets) > 1:
            found.append(("strategy", f"ROLLING deployments are not supported for multi-variant endpoints "
                                      f"({len(fleets)} variants: {', '.join(fleets)}); use ALL_AT_ONCE, CANARY or "
                                      "LINEAR (blue/green)"))
        if self.rollback_batch_size is not None and not self.is_rolling:
            found.append(("rollback_batch_size", f"only applies to strategy ROLLING (strategy is {self.strategy}); "
                                                 "set it to null"))
        if self.rollback_batch_size is not None and self.rollback_batch_size < 1:
            found.append(("rollback_batch_size", f"must be at least 1 (CapacitySize.Value), got "
                                                 f"{self.rollback_batch_size}"))
        if self.size < 1:
            found.append(("size", f"must be at least 1 (CapacitySize.Value), got {self.size}"))
        elif self.strategy in STEP_SHARE_RANGE:
            for name, fleet in fleets.items():
                found += self._step_problems(name, fleet)
        if self.size >= 1:
            waits = self.total_wait_s(fleets)
            if self.maximum_execution_timeout_s <= waits:
                found.append(("maximum_execution_timeout_s", (
                    f"{self.maximum_execution_timeout_s} s must be larger than the update's total waiting time "
                    f"({self._wait_explanation(fleets)} = {waits} s), plus time to provision instances; allowed "
                    f"{EXECUTION_TIMEOUT_RANGE[0]}..{EXECUTION_TIMEOUT_RANGE[1]}")))
        return found

    def _step_problems(self, variant: str, fleet: FleetBounds) -> list[tuple[str, str]]:
        low, high = STEP_SHARE_RANGE[self.strategy]
        rule = (f"SageMaker requires {STEP_NAMES[self.strategy]} to be "
                + (f"{low:.0%}-{high:.0%}" if low else f"<= {high:.0%}") + " of the variant's instance count")
        if self.size_unit == "CAPACITY_PERCENT":
            if not low * 100 <= self.size <= high * 100:
                return [("size", f"{self.strategy} size {self.size}% is outside {low * 100:g}..{high * 100:g}%; "
                                 f"{rule}")]
            if fleet.smallest < 2:
                return [("size", self._one_instance_message(variant))]
            return []
        if fleet.smallest < 2:
            return [("size", self._one_instance_message(variant))]
        most = math.floor(fleet.smallest * high)
        if self.size > most:
            return [("size", f"{self.strategy} size {self.size} instance(s) is more than {high:.0%} of variant "
                             f"{variant}'s smallest fleet ({fleet.smallest} instances); {rule}: use at most {most}, "
                             "or raise its instance count")]
        least = math.ceil(fleet.largest * low)
        if self.size < least:
            return [("size", f"{self.strategy} size {self.size} instance(s) is less than {low:.0%} of variant "
                             f"{variant}'s largest fleet ({fleet.largest} instances); {rule}: use at least {least}, "
                             "or size in CAPACITY_PERCENT")]
        return []

    def _one_instance_message(self, variant: str) -> str:
        return (f"variant {variant} can run on a single instance when an update starts; a {self.strategy} step needs "
                f"at least one whole instance and at most 50% of the variant's instances, so every variant needs at "
                "least 2 instances at all times (initial instance count, and autoscaling min_capacity when "
                "counts are operator-owned); or use strategy ALL_AT_ONCE")

    def _wait_explanation(self, fleets: Mapping[str, FleetBounds]) -> str:
        steps = self.steps(fleets)
        text = f"{steps} x wait_interval_s {self.wait_interval_s}"
        if not self.is_rolling:
            text += f" + termination_wait_s {self.termination_wait_s}"
        return text

    # -- CloudFormation ------------------------------------------------------------------------------------------
    def _capacity(self, value: int) -> sagemaker.CfnEndpoint.CapacitySizeProperty:
        return sagemaker.CfnEndpoint.CapacitySizeProperty(type=self.size_unit, value=value)

    def deployment_config(self, alarm_names: Sequence[str]) -> sagemaker.CfnEndpoint.DeploymentConfigProperty:
        """The endpoint's ``DeploymentConfig``; ``alarm_names`` become its auto-rollback alarms."""
        rollback = None
        if self.auto_rollback and alarm_names:
            rollback = sagemaker.CfnEndpoint.AutoRollbackConfigProperty(
                alarms=[sagemaker.CfnEndpoint.AlarmProperty(alarm_name=name) for name in alarm_names])
        if self.is_rolling:
            return sagemaker.CfnEndpoint.DeploymentConfigProperty(
                auto_rollback_configuration=rollback,
                rolling_update_policy=sagemaker.CfnEndpoint.RollingUpdatePolicyProperty(
                    maximum_batch_size=self._capacity(self.size), wait_interval_in_seconds=self.wait_interval_s,
                    maximum_execution_timeout_in_seconds=self.maximum_execution_timeout_s,
                    rollback_maximum_batch_size=(self._capacity(self.rollback_batch_size)
                                                 if self.rollback_batch_size else None)))
        routing = sagemaker.CfnEndpoint.TrafficRoutingConfigProperty(
            type=self.strategy, wait_interval_in_seconds=self.wait_interval_s,
            canary_size=self._capacity(self.size) if self.strategy == "CANARY" else None,
            linear_step_size=self._capacity(self.size) if self.strategy == "LINEAR" else None)
        return sagemaker.CfnEndpoint.DeploymentConfigProperty(
            auto_rollback_configuration=rollback,
            blue_green_update_policy=sagemaker.CfnEndpoint.BlueGreenUpdatePolicyProperty(
                traffic_routing_configuration=routing, termination_wait_in_seconds=self.termination_wait_s,
                maximum_execution_timeout_in_seconds=self.maximum_execution_timeout_s))


def _range_problem(field: str, value: int, bounds: tuple[int, int], api_name: str) -> list[tuple[str, str]]:
    low, high = bounds
    if low <= value <= high:
        return []
    return [(field, f"must be between {low} and {high} ({api_name}), got {value}")]


__all__ = ["DeploymentGuardrails", "FleetBounds", "MAX_ROLLBACK_ALARMS", "STRATEGIES", "SIZE_UNITS"]
