"""What the endpoint did meanwhile: instance counts (DescribeEndpoint) and CloudWatch per variant.

SageMaker publishes ``InvocationsPerInstance`` and ``ModelLatency`` once a minute, so a 10-second
interval sees the latest minute's value (or none yet): they show the trend the autoscaling policy acts
on, while the rehearsal's own p50/p99 show what clients felt.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable

NAMESPACE = "AWS/SageMaker"
METRIC_PERIOD_S = 60
LOOKBACK = dt.timedelta(minutes=5)
#: (query id prefix, metric name, statistic): InvocationsPerInstance is what target tracking acts on.
METRICS = (("ipi", "InvocationsPerInstance", "Sum"), ("lat", "ModelLatency", "Average"))


@dataclass(frozen=True)
class VariantObservation:
    instances: int | None
    desired_instances: int | None
    invocations_per_instance: float | None
    model_latency_ms: float | None


@dataclass(frozen=True)
class Observation:
    variants: dict[str, VariantObservation]
    status: str | None = None
    error: str | None = None

    @property
    def instances(self) -> int | None:
        counts = [variant.instances for variant in self.variants.values() if variant.instances is not None]
        return sum(counts) if counts else None


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class EndpointObserver:
    """One DescribeEndpoint and one GetMetricData per interval; a failed look is recorded, never fatal."""

    def __init__(self, sagemaker: Any, cloudwatch: Any, endpoint_name: str, *,
                 now: Callable[[], dt.datetime] = _utc_now) -> None:
        self.sagemaker = sagemaker
        self.cloudwatch = cloudwatch
        self.endpoint_name = endpoint_name
        self.now = now

    def observe(self) -> Observation:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            description = self.sagemaker.describe_endpoint(EndpointName=self.endpoint_name)
            variants = description.get("ProductionVariants", [])
            metrics = self._metrics([variant["VariantName"] for variant in variants])
        except (BotoCoreError, ClientError) as error:
            return Observation(variants={}, error=str(error).splitlines()[0])
        return Observation(status=description.get("EndpointStatus"), variants={
            variant["VariantName"]: VariantObservation(
                instances=variant.get("CurrentInstanceCount"),
                desired_instances=variant.get("DesiredInstanceCount"),
                invocations_per_instance=metrics.get(("ipi", variant["VariantName"])),
                model_latency_ms=_ms(metrics.get(("lat", variant["VariantName"]))))
            for variant in variants})

    def _metrics(self, variant_names: list[str]) -> dict[tuple[str, str], float]:
        if not variant_names:
            return {}
        queries, keys = [], {}
        for index, variant in enumerate(variant_names):
            for prefix, metric, stat in METRICS:
                query_id = f"{prefix}{index}"
                keys[query_id] = (prefix, variant)
                queries.append({"Id": query_id, "ReturnData": True, "MetricStat": {
                    "Metric": {"Namespace": NAMESPACE, "MetricName": metric, "Dimensions": [
                        {"Name": "EndpointName", "Value": self.endpoint_name},
                        {"Name": "VariantName", "Value": variant}]},
                    "Period": METRIC_PERIOD_S, "Stat": stat}})
        end = self.now()
        response = self.cloudwatch.get_metric_data(MetricDataQueries=queries, StartTime=end - LOOKBACK, EndTime=end,
                                                   ScanBy="TimestampDescending")
        latest = {}
        for result in response.get("MetricDataResults", []):
            if result.get("Values") and result.get("Id") in keys:
                # TimestampDescending: the first value is the newest minute.
                latest[keys[result["Id"]]] = float(result["Values"][0])
        return latest


def _ms(microseconds: float | None) -> float | None:
    """ModelLatency is in microseconds."""
    return None if microseconds is None else microseconds / 1000.0
