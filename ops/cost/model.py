"""Monthly cost per pattern: the deployment's facts × traffic assumptions × the price book, as line items.

Every item says whether it is ``fixed`` (paid when idle) or scales with ``traffic``. Free tiers are not
subtracted: they are per account and shared with everything else in it.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ops.cost.prices import PriceBook
from ops.cost.schedules import DAYS_PER_MONTH, HOURS_PER_MONTH
from ops.cost.templates import (BatchFacts, Common, Deployment, EdgeFacts, RealtimeFacts, ScheduledFunction,
                                ServerlessFacts)

BATCH_BENCH = Path(__file__).resolve().parents[2] / "bench" / "results" / "batch.json"
#: used when bench/results/batch.json is absent: rows/s of one worker in the benchmark of this repository
FALLBACK_ROWS_PER_SECOND = 1_000_000.0
KB_PER_GB = 1024 * 1024
SECONDS_PER_MONTH = HOURS_PER_MONTH * 3600


def measured_rows_per_second() -> float:
    """The batch benchmark's measured scoring rate (one worker), the default for --rows-per-second-per-instance."""
    try:
        return float(json.loads(BATCH_BENCH.read_text())["rows_per_s"])
    except (OSError, ValueError, KeyError):
        return FALLBACK_ROWS_PER_SECOND


def measured_bytes_per_row() -> float:
    try:
        result = json.loads(BATCH_BENCH.read_text())
        return float(result["input_bytes"]) / float(result["rows"])
    except (OSError, ValueError, KeyError, ZeroDivisionError):
        return 50.0


@dataclass(frozen=True)
class Assumptions:
    """Traffic and run-time assumptions; each default is set here and nowhere else."""

    requests_per_day: float = 100_000
    payload_kb: float = 1.0
    batch_rows_per_night: float = 1_000_000
    rows_per_second_per_instance: float = field(default_factory=measured_rows_per_second)
    devices: int = 10
    region: str = "us-east-1"
    #: billed compute per request on Lambda and SageMaker Serverless (the model itself runs in ~0.1 ms)
    duration_ms: float = 5.0
    #: per Model Monitor run (hourly data quality on this demo's traffic takes 5-10 minutes)
    monitor_run_minutes: float = 10.0
    #: per Batch Transform run: instances boot and pull the container before scoring (5-8 minutes observed)
    batch_startup_minutes: float = 6.0
    #: the drift job's billed seconds per run (capped by its timeout)
    scheduled_function_seconds: float = 60.0
    #: CloudWatch Logs written per API request (access log line + the function's log lines)
    log_kb_per_request: float = 1.0
    #: share of requests that start a new execution environment (SnapStart restores)
    cold_start_ratio: float = 0.001
    #: an async endpoint scaled to zero keeps an instance this long per burst of work
    async_instance_hours_per_burst: float = 0.25
    bytes_per_row: float = field(default_factory=measured_bytes_per_row)

    @property
    def requests_per_month(self) -> float:
        return self.requests_per_day * DAYS_PER_MONTH


@dataclass(frozen=True)
class Item:
    category: str  # compute, requests, data processed, storage, monitoring, alarms, keys
    name: str
    scales: str  # "fixed" (paid when idle) or "traffic"
    quantity: float
    price_unit: str
    unit_price: float
    price_key: str
    monthly_usd: float
    low_confidence: bool = False


@dataclass(frozen=True)
class PatternCost:
    pattern: str
    items: tuple[Item, ...]

    @property
    def monthly_usd(self) -> float:
        return sum(item.monthly_usd for item in self.items)

    @property
    def fixed_usd(self) -> float:
        return sum(item.monthly_usd for item in self.items if item.scales == "fixed")

    def as_dict(self) -> dict:
        return {"monthly_usd": round(self.monthly_usd, 2), "fixed_usd": round(self.fixed_usd, 2),
                "traffic_usd": round(self.monthly_usd - self.fixed_usd, 2),
                "items": [{**asdict(item), "monthly_usd": round(item.monthly_usd, 4)} for item in self.items]}


class _Items:
    """Collects items, looking each price up (a missing price raises before anything is printed)."""

    def __init__(self, book: PriceBook, region: str) -> None:
        self.book, self.region, self.items, self.used = book, region, [], set()

    def add(self, category: str, name: str, scales: str, quantity: float, key: str, *, per: float = 1.0) -> None:
        """``quantity`` in the price's unit × ``per`` (e.g. per=1e-6 for a price per million)."""
        price = self.book.get(key, self.region)
        self.used.add((key, self.region))
        if quantity <= 0:
            return
        self.items.append(Item(category=category, name=name, scales=scales, quantity=quantity, price_unit=price.unit,
                               unit_price=price.price, price_key=key, monthly_usd=quantity * per * price.price,
                               low_confidence=price.low_confidence))


def estimate(deployment: Deployment, assumptions: Assumptions, book: PriceBook) -> tuple[dict[str, PatternCost],
                                                                                             set[tuple[str, str]]]:
    """Cost per pattern present in ``deployment``, plus the (key, region) of every price consulted."""
    used: set[tuple[str, str]] = set()
    costs: dict[str, PatternCost] = {}
    for pattern, facts, build in (("realtime", deployment.realtime, _realtime), ("batch", deployment.batch, _batch),
                                  ("serverless", deployment.serverless, _serverless),
                                  ("edge", deployment.edge, _edge)):
        if facts is None:
            continue
        items = _Items(book, assumptions.region)
        build(facts, assumptions, items)
        _common(facts.common, items)
        costs[pattern] = PatternCost(pattern=pattern, items=tuple(items.items))
        used |= items.used
    return costs, used


def _realtime(facts: RealtimeFacts, a: Assumptions, items: _Items) -> None:
    per_minute = a.requests_per_day / 1440
    for variant in facts.instance_variants:
        key = f"sagemaker.hosting:{variant.instance_type}"
        label = f"{'shadow ' if variant.shadow else ''}variant {variant.name}"
        items.add("compute", f"{label}: {variant.min_count} × {variant.instance_type} always on", "fixed",
                  variant.min_count * HOURS_PER_MONTH, key)
        if variant.async_inference and variant.min_count == 0:
            busy_hours = min(HOURS_PER_MONTH, a.requests_per_month * variant.weight * a.async_instance_hours_per_burst)
            items.add("compute", f"{label}: async, scaled up from 0 while requests wait", "traffic", busy_hours, key)
            continue
        if variant.invocations_per_instance:
            needed = math.ceil(per_minute * variant.weight / variant.invocations_per_instance)
            extra = max(0, min(needed, variant.max_count) - variant.min_count)
            items.add("compute", f"{label}: autoscaled above the minimum (target "
                                 f"{variant.invocations_per_instance:g} invocations/instance/min)", "traffic",
                      extra * HOURS_PER_MONTH, key)
    for variant in facts.serverless_variants:
        share = a.requests_per_month * variant.weight
        gb_seconds = share * a.duration_ms / 1000 * variant.memory_mb / 1024
        items.add("compute", f"serverless variant {variant.name}: {variant.memory_mb} MB × {a.duration_ms:g} ms "
                             "per request", "traffic", gb_seconds, "sagemaker.serverless.compute")
        if variant.provisioned_concurrency:
            items.add("compute", f"serverless variant {variant.name}: {variant.provisioned_concurrency} provisioned",
                      "fixed", variant.provisioned_concurrency * variant.memory_mb / 1024 * SECONDS_PER_MONTH,
                      "sagemaker.serverless.provisioned")
    gigabytes = a.requests_per_month * a.payload_kb / KB_PER_GB
    items.add("data processed", f"requests in ({a.payload_kb:g} KB each)", "traffic", gigabytes,
              "sagemaker.data_processed_in")
    items.add("data processed", f"responses out ({a.payload_kb:g} KB each)", "traffic", gigabytes,
              "sagemaker.data_processed_out")
    items.add("storage", f"data capture ({facts.capture_percent:g}% of requests and responses, one month's worth)",
              "traffic", 2 * gigabytes * facts.capture_percent / 100, "s3.standard.storage")
    for job in facts.monitoring_jobs:
        minutes = min(a.monitor_run_minutes, job.max_runtime_s / 60)
        items.add("monitoring", f"Model Monitor {job.kind}: {job.runs_per_month:.0f} runs × {minutes:g} min × "
                                f"{job.instance_count} × {job.instance_type}", "fixed",
                  job.runs_per_month * minutes / 60 * job.instance_count, f"sagemaker.processing:{job.instance_type}")
    _scheduled(facts.scheduled_functions, a, items)


def _batch(facts: BatchFacts, a: Assumptions, items: _Items) -> None:
    key = f"sagemaker.transform:{facts.instance_type}"
    fleet = f"{facts.instance_count} × {facts.instance_type}"
    items.add("compute", f"start-up of {fleet}: {facts.runs_per_month:.1f} runs × {a.batch_startup_minutes:g} min",
              "fixed", facts.runs_per_month * facts.instance_count * a.batch_startup_minutes / 60, key)
    scoring_s = a.batch_rows_per_night / (a.rows_per_second_per_instance * facts.instance_count)
    items.add("compute", f"scoring on {fleet}: {a.batch_rows_per_night:,.0f} rows at "
                         f"{a.rows_per_second_per_instance:,.0f} rows/s/instance = {scoring_s:.1f} s a run",
              "traffic", facts.runs_per_month * facts.instance_count * scoring_s / 3600, key)
    items.add("requests", f"Step Functions: {facts.transitions_per_run} transitions a run", "fixed",
              facts.runs_per_month * facts.transitions_per_run, "stepfunctions.standard.transitions", per=1e-3)
    items.add("requests", f"EventBridge Scheduler: {facts.schedule or 'no schedule'}", "fixed",
              facts.runs_per_month, "scheduler.invocations", per=1e-6)
    items.add("storage", "input and output rows in S3 (one month's worth)", "traffic",
              2 * a.batch_rows_per_night * DAYS_PER_MONTH * a.bytes_per_row / 1024 ** 3, "s3.standard.storage")


def _serverless(facts: ServerlessFacts, a: Assumptions, items: _Items) -> None:
    function = facts.function
    gigabytes = function.memory_mb / 1024
    arch = function.architecture
    requests = a.requests_per_month
    items.add("requests", f"API Gateway {facts.api_type} API", "traffic", requests,
              f"apigateway.{facts.api_type.lower()}.requests", per=1e-6)
    items.add("requests", "Lambda requests", "traffic", requests, "lambda.requests", per=1e-6)
    gb_seconds = requests * a.duration_ms / 1000 * gigabytes
    if function.provisioned_concurrency:
        items.add("compute", f"provisioned concurrency {function.provisioned_concurrency} × {function.memory_mb} MB "
                             f"({arch})", "fixed",
                  function.provisioned_concurrency * gigabytes * SECONDS_PER_MONTH, f"lambda.provisioned:{arch}")
        items.add("compute", f"duration {function.memory_mb} MB × {a.duration_ms:g} ms ({arch}, provisioned rate)",
                  "traffic", gb_seconds, f"lambda.provisioned_duration:{arch}")
    else:
        items.add("compute", f"duration {function.memory_mb} MB × {a.duration_ms:g} ms ({arch})", "traffic",
                  gb_seconds, f"lambda.duration:{arch}")
    if function.snap_start:
        items.add("compute", f"SnapStart snapshot cache ({function.memory_mb} MB, one published version)", "fixed",
                  gigabytes * SECONDS_PER_MONTH, "lambda.snapstart.cache")
        items.add("compute", f"SnapStart restores ({a.cold_start_ratio:g} of requests)", "traffic",
                  requests * a.cold_start_ratio * gigabytes, "lambda.snapstart.restore")
    ingested = requests * a.log_kb_per_request / KB_PER_GB
    retentions = [days for days in facts.common.log_retention_days]
    months_kept = max((days if days is not None else 3650) for days in retentions) / DAYS_PER_MONTH \
        if retentions else 1.0
    items.add("storage", f"log ingestion ({a.log_kb_per_request:g} KB a request)", "traffic", ingested,
              "cloudwatch.logs.ingestion")
    items.add("storage", f"log storage (kept {months_kept:.1f} months, the longest retention)", "traffic",
              ingested * months_kept, "cloudwatch.logs.storage")
    _scheduled(facts.scheduled_functions, a, items)


def _edge(facts: EdgeFacts, a: Assumptions, items: _Items) -> None:
    items.add("compute", f"Greengrass core devices ({', '.join(facts.components) or 'no component'})", "fixed",
              a.devices, "greengrass.core_device")
    items.add("requests", "IoT Core connection minutes (always connected)", "fixed",
              a.devices * HOURS_PER_MONTH * 60, "iot.connectivity", per=1e-6)


def _scheduled(functions: tuple[ScheduledFunction, ...], a: Assumptions, items: _Items) -> None:
    for function in functions:
        seconds = min(a.scheduled_function_seconds, function.timeout_s)
        items.add("monitoring", f"scheduled function {function.name}: {function.runs_per_month:.0f} runs × "
                                f"{seconds:g} s × {function.memory_mb} MB", "fixed",
                  function.runs_per_month * seconds * function.memory_mb / 1024,
                  f"lambda.duration:{function.architecture}")
        items.add("monitoring", f"scheduled function {function.name}: invocations", "fixed",
                  function.runs_per_month, "lambda.requests", per=1e-6)


def _common(common: Common, items: _Items) -> None:
    items.add("alarms", f"CloudWatch alarms ({common.alarms})", "fixed", common.alarms, "cloudwatch.alarm")
    items.add("alarms", f"CloudWatch composite alarms ({common.composite_alarms})", "fixed", common.composite_alarms,
              "cloudwatch.composite_alarm")
    items.add("monitoring", f"CloudWatch dashboards ({common.dashboards}; an account's first 3 are free)", "fixed",
              common.dashboards, "cloudwatch.dashboard")
    items.add("keys", f"customer-managed KMS keys ({common.kms_keys})", "fixed", common.kms_keys, "kms.key")


def at_traffic(assumptions: Assumptions, requests_per_day: float) -> Assumptions:
    """The same assumptions at another traffic level (batch scores the same predictions nightly)."""
    return replace(assumptions, requests_per_day=requests_per_day, batch_rows_per_night=requests_per_day)
