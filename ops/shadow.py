"""Shadow testing: compare the shadow variant with production, and promote it by a deploy.

Used by ``python -m ops.traffic shadow-report`` and ``python -m ops.traffic promote-shadow``.

The report reads DescribeEndpoint (which variant is production, which is the shadow, their instances) and
CloudWatch (ModelLatency p50/p99, Invocations, Invocation5XXErrors and Invocation4XXErrors per variant over a
window) and puts the two side by side. Promotion is a deploy, not an API call: the endpoint belongs to
CloudFormation, and an UpdateEndpoint behind its back would be reverted by the next ``cdk deploy``. So the
command checks that the shadow is at least as healthy as production and prints (or, with ``--run``, runs)
the deploy that makes the candidate the production model.
"""
from __future__ import annotations

import datetime as dt
import math
import shlex
from dataclasses import dataclass
from typing import Any, Sequence

from ops.cli import OperationFailed, UsageError

STATISTICS = {"ModelLatency": ("p50", "p99"), "Invocations": ("Sum",), "Invocation5XXErrors": ("Sum",),
              "Invocation4XXErrors": ("Sum",)}


@dataclass(frozen=True)
class VariantHealth:
    name: str
    role: str  # "production" or "shadow"
    instances: int | None
    invocations: float
    errors_5xx: float
    errors_4xx: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None

    @property
    def error_rate(self) -> float:
        return self.errors_5xx / self.invocations if self.invocations else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"variant": self.name, "role": self.role, "instances": self.instances,
                "invocations": self.invocations, "errors_5xx": self.errors_5xx, "errors_4xx": self.errors_4xx,
                "error_rate": round(self.error_rate, 6), "latency_p50_ms": self.latency_p50_ms,
                "latency_p99_ms": self.latency_p99_ms}


def variants_of(description: dict[str, Any]) -> list[tuple[str, str, int | None]]:
    """(name, role, current instance count) for production then shadow variants."""
    found = [(v["VariantName"], "production", v.get("CurrentInstanceCount"))
             for v in description.get("ProductionVariants", [])]
    found += [(v["VariantName"], "shadow", v.get("CurrentInstanceCount"))
              for v in description.get("ShadowProductionVariants", [])]
    return found


def shadow_report(*, sagemaker: Any, cloudwatch: Any, endpoint: str, window: dt.timedelta,
                  now: dt.datetime | None = None) -> list[VariantHealth]:
    """Health of every variant of ``endpoint`` over the last ``window``; refuses an endpoint without a shadow."""
    description = sagemaker.describe_endpoint(EndpointName=endpoint)
    variants = variants_of(description)
    if not any(role == "shadow" for _, role, _ in variants):
        raise UsageError(f"endpoint {endpoint} has no shadow variant (deploy with -c deploy.realtime.rollout=shadow)")
    now = now or dt.datetime.now(dt.timezone.utc)
    period = max(60, int(window.total_seconds()) // 60 * 60)
    queries, keys = [], {}
    for index, (name, _, _) in enumerate(variants):
        for metric, statistics in STATISTICS.items():
            for statistic in statistics:
                query_id = f"m{index}_{metric.lower()}_{statistic.lower()}"
                keys[query_id] = (name, metric, statistic)
                queries.append({"Id": query_id, "ReturnData": True, "MetricStat": {
                    "Metric": {"Namespace": "AWS/SageMaker", "MetricName": metric,
                               "Dimensions": [{"Name": "EndpointName", "Value": endpoint},
                                              {"Name": "VariantName", "Value": name}]},
                    "Period": period, "Stat": statistic}})
    values: dict[tuple[str, str, str], float] = {}
    token = None
    while True:
        request = {"MetricDataQueries": queries, "StartTime": now - window, "EndTime": now}
        if token:
            request["NextToken"] = token
        response = cloudwatch.get_metric_data(**request)
        for result in response.get("MetricDataResults", []):
            points = result.get("Values", [])
            name, metric, statistic = keys[result["Id"]]
            if not points:
                continue
            values[(name, metric, statistic)] = (sum(points) if statistic == "Sum" else max(points))
        token = response.get("NextToken")
        if not token:
            break

    def latency_ms(name: str, statistic: str) -> float | None:
        micros = values.get((name, "ModelLatency", statistic))
        return None if micros is None else round(micros / 1000, 3)  # ModelLatency is in microseconds

    return [VariantHealth(name=name, role=role, instances=instances,
                          invocations=values.get((name, "Invocations", "Sum"), 0.0),
                          errors_5xx=values.get((name, "Invocation5XXErrors", "Sum"), 0.0),
                          errors_4xx=values.get((name, "Invocation4XXErrors", "Sum"), 0.0),
                          latency_p50_ms=latency_ms(name, "p50"), latency_p99_ms=latency_ms(name, "p99"))
            for name, role, instances in variants]


def promotion_problems(report: Sequence[VariantHealth], *, max_latency_ratio: float = 1.2) -> list[str]:
    """Why the shadow should not replace production yet (empty when it may)."""
    production = [v for v in report if v.role == "production"]
    shadow = [v for v in report if v.role == "shadow"]
    problems = []
    for candidate in shadow:
        if candidate.invocations == 0:
            problems.append(f"shadow {candidate.name} received no requests in the window: nothing to judge")
            continue
        for current in production:
            if candidate.error_rate > current.error_rate:
                problems.append(f"shadow {candidate.name} 5XX rate {candidate.error_rate:.4%} is above production "
                                f"{current.name}'s {current.error_rate:.4%}")
            if (candidate.latency_p99_ms is not None and current.latency_p99_ms
                    and candidate.latency_p99_ms > current.latency_p99_ms * max_latency_ratio):
                problems.append(f"shadow {candidate.name} p99 {candidate.latency_p99_ms:g} ms is more than "
                                f"{max_latency_ratio:g}x production {current.name}'s {current.latency_p99_ms:g} ms")
    return problems


def promote_command(*, stack: str, candidate_dir: str) -> list[str]:
    """The deploy that makes the candidate the production model and drops the shadow."""
    return ["npx", "cdk", "deploy", stack, "-c", f"deploy.model.artifacts_dir={candidate_dir}",
            "-c", "deploy.model.candidate_dir=null", "-c", "deploy.realtime.rollout=canary"]


def render_report(report: Sequence[VariantHealth]) -> str:
    def show(value: float | None) -> str:
        return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:g}"

    lines = ["variant       role        instances  invocations  5xx   4xx   p50 ms   p99 ms"]
    for v in report:
        lines.append(f"{v.name:<13} {v.role:<11} {show(v.instances):>9}  {show(v.invocations):>11}  "
                     f"{show(v.errors_5xx):>4}  {show(v.errors_4xx):>4}  {show(v.latency_p50_ms):>7}  "
                     f"{show(v.latency_p99_ms):>7}")
    return "\n".join(lines)


def promote(report: Sequence[VariantHealth], *, stack: str, candidate_dir: str, force: bool,
            run: bool, runner=None) -> str:
    """Refuse an unhealthy shadow (unless forced); return the deploy command, running it when asked."""
    problems = promotion_problems(report)
    if problems and not force:
        raise OperationFailed("not promoting: " + "; ".join(problems) + " (--force to promote anyway)")
    command = promote_command(stack=stack, candidate_dir=candidate_dir)
    if run:
        import subprocess

        completed = (runner or subprocess.run)(command)
        if getattr(completed, "returncode", 0) != 0:
            raise OperationFailed(f"the deploy failed (exit {completed.returncode}): {shlex.join(command)}")
    return shlex.join(command)
