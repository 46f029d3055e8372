"""Who owns a variant's traffic weight and instance count once the endpoint is live.

Every ``cdk deploy`` that changes the endpoint config calls ``UpdateEndpoint``. By default
(``RetainAllVariantProperties`` false) SageMaker then resets every variant to the config's
``InitialVariantWeight`` and ``InitialInstanceCount``, silently undoing a traffic shift made by an
operator and the count chosen by Application Auto Scaling. With ``RetainAllVariantProperties``
true it keeps the live values, except for the properties listed in
``ExcludeRetainedVariantProperties`` (``DesiredWeight``, ``DesiredInstanceCount``), which it takes
from the new config. (VariantProperty, UpdateEndpoint in the SageMaker API reference.)

``operator`` means "whatever was set at run time wins" (``ops.traffic``, the console, autoscaling);
``config`` means "the deployed config wins, on every update that changes the endpoint config".
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from aws_cdk import aws_sagemaker as sagemaker

from ml_constructs.realtime.guardrails import FleetBounds

Owner = Literal["operator", "config"]
OWNERS: tuple[str, ...] = ("operator", "config")


@dataclass(frozen=True, kw_only=True)
class VariantOwnership:
    """Whether weights and instance counts survive endpoint updates (``operator``) or are reset (``config``)."""

    weights_owner: Owner = "operator"
    instance_counts_owner: Owner = "operator"

    @property
    def retain_all_variant_properties(self) -> bool:
        return "operator" in (self.weights_owner, self.instance_counts_owner)

    @property
    def excluded_properties(self) -> list[str]:
        """The VariantPropertyType values taken from the new config although the rest is retained."""
        if not self.retain_all_variant_properties:
            return []  # nothing is retained, so there is nothing to exclude
        excluded = []
        if self.weights_owner == "config":
            excluded.append("DesiredWeight")
        if self.instance_counts_owner == "config":
            excluded.append("DesiredInstanceCount")
        return excluded

    def exclude_retained_variant_properties(self) -> list[sagemaker.CfnEndpoint.VariantPropertyProperty] | None:
        excluded = self.excluded_properties
        if not excluded:
            return None
        return [sagemaker.CfnEndpoint.VariantPropertyProperty(variant_property_type=name) for name in excluded]

    def fleet_bounds(self, *, initial_instance_count: int,
                     autoscaling_range: tuple[int, int] | None) -> FleetBounds:
        """Instances a variant may have when an update starts (what the new fleet is sized from).

        With operator-owned counts the new fleet copies the live count, which autoscaling may have moved
        anywhere in ``autoscaling_range``; with config-owned counts it is the configured initial count.
        """
        if self.instance_counts_owner == "operator" and autoscaling_range is not None:
            low, high = autoscaling_range
            return FleetBounds(min(low, initial_instance_count), max(high, initial_instance_count))
        return FleetBounds(initial_instance_count, initial_instance_count)


__all__ = ["VariantOwnership", "OWNERS", "Owner"]
