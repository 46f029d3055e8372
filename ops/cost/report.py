"""The table, the JSON object and the seed's comparison, from the model's line items."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Callable

from ops.cost.model import Assumptions, PatternCost
from ops.cost.prices import Price, PriceBook
from ops.cost.schedules import DAYS_PER_MONTH, HOURS_PER_MONTH

LOW_MARK = "*"


def as_json(costs: dict[str, PatternCost], assumptions: Assumptions, book: PriceBook, used: list[Price]) -> dict:
    return {"patterns": {pattern: cost.as_dict() for pattern, cost in costs.items()},
            "assumptions": asdict(assumptions),
            "prices": {"source": book.source, "date": book.date, "region": assumptions.region,
                       "low_confidence": sorted(price.key for price in used if price.low_confidence),
                       "used": [asdict(price) for price in used]}}


def table(costs: dict[str, PatternCost], assumptions: Assumptions, book: PriceBook, used: list[Price]) -> str:
    a = assumptions
    lines = [f"Monthly cost by pattern, {a.region} list prices, {HOURS_PER_MONTH:g} h a month; free tiers not "
             "subtracted",
             f"Traffic: {a.requests_per_day:,.0f} requests/day of {a.payload_kb:g} KB; batch "
             f"{a.batch_rows_per_night:,.0f} rows/night at {a.rows_per_second_per_instance:,.0f} rows/s/instance; "
             f"{a.devices} edge devices", ""]
    lines.append(f"{'pattern':<11}{'USD/month':>11}{'fixed (idle)':>14}{'with traffic':>14}")
    for pattern, cost in costs.items():
        lines.append(f"{pattern:<11}{cost.monthly_usd:>11,.2f}{cost.fixed_usd:>14,.2f}"
                     f"{cost.monthly_usd - cost.fixed_usd:>14,.2f}")
    for pattern, cost in costs.items():
        lines += ["", f"{pattern}: ${cost.monthly_usd:,.2f}/month",
                  f"  {'category':<15}{'scales':<9}{'USD/month':>11}  item"]
        for item in sorted(cost.items, key=lambda item: -item.monthly_usd):
            mark = LOW_MARK if item.low_confidence else " "
            lines.append(f"  {item.category:<15}{item.scales:<9}{item.monthly_usd:>11,.2f}{mark} {item.name}")
    low = [price for price in used if price.low_confidence]
    lines += ["", f"Prices: {book.source} ({book.date})."]
    if low:
        lines.append(f"{LOW_MARK} low-confidence price (second-hand or unverified; see ops/prices/aws-prices.json): "
                     + ", ".join(f"{price.key} {price.price:g} {price.unit}" for price in low))
    return "\n".join(lines)


# -- the seed's table ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SeedRow:
    pattern: str
    claim: str
    claimed_usd: float
    assumption: str


#: The seed's cost table as it stood, with the assumptions it stated.
SEED_ROWS = (
    SeedRow("realtime", "≈ $150/month", 150.0, "2 × ml.m5.large around the clock"),
    SeedRow("batch", "≈ $5/month", 5.0, "4 × ml.m5.xlarge for 20 minutes a night, 1M records"),
    SeedRow("serverless", "≈ $2/month", 2.0, "10K requests/day, Lambda 512 MB × 100 ms (x86) + REST API"),
    SeedRow("edge", "≈ $0", 0.0, "Greengrass: seed per device, this project at --devices"),
)
SEED_REQUESTS_PER_DAY = 10_000
SEED_ROWS_PER_NIGHT = 1_000_000


def seed_recomputed(book: PriceBook, region: str) -> dict[str, tuple[float, str]]:
    """Each seed row at today's list prices under the seed's own assumptions, with why it differs."""
    def price(key: str) -> float:
        return book.get(key, region).price

    m5_large, m5_xlarge = price("sagemaker.hosting:ml.m5.large"), price("sagemaker.transform:ml.m5.xlarge")
    realtime = 2 * m5_large * HOURS_PER_MONTH
    try:
        c5 = f"; $150 is 2 × ml.c5.large at ${price('sagemaker.hosting:ml.c5.large'):g}/h " \
             f"(${2 * price('sagemaker.hosting:ml.c5.large') * HOURS_PER_MONTH:,.2f})"
    except Exception:  # the c5 price is only an explanation; its absence must not stop the comparison
        c5 = ""
    batch = 4 * m5_xlarge * 20 / 60 * DAYS_PER_MONTH
    batch_large = 4 * price("sagemaker.transform:ml.m5.large") * 20 / 60 * DAYS_PER_MONTH
    requests = SEED_REQUESTS_PER_DAY * DAYS_PER_MONTH
    lambda_requests = requests * price("lambda.requests") / 1e6
    duration = requests * 0.1 * 0.5 * price("lambda.duration:x86_64")
    api = requests * price("apigateway.rest.requests") / 1e6
    edge = price("greengrass.core_device")
    return {
        "realtime": (realtime, f"2 × ml.m5.large is ${realtime:,.2f}/month at ${m5_large:g}/h × "
                               f"{HOURS_PER_MONTH:g} h, "
                               f"not $150{c5}"),
        "batch": (batch, f"4 × ml.m5.xlarge × 20 min × {DAYS_PER_MONTH:.1f} nights is ${batch:,.2f} at "
                         f"${m5_xlarge:g}/h; $5 is the ml.m5.large rate (${batch_large:,.2f}), and one run costs "
                         f"${batch / DAYS_PER_MONTH:.2f}"),
        "serverless": (lambda_requests + duration + api,
                       f"{requests:,.0f} requests: Lambda ${lambda_requests:.2f} + duration ${duration:.2f} + REST API "
                       f"${api:.2f}; the seed's ≈$2 "
                       f"{'holds' if abs(lambda_requests + duration + api - 2.0) <= 1.0 else 'does not hold'}"),
        "edge": (edge, f"Greengrass bills ${edge:g} per active core device-month: ≈$0 holds only within the free "
                       "tier's 3 devices"),
    }


def seed_table(book: PriceBook, region: str, project: dict[str, PatternCost], assumptions: Assumptions,
               explain_project: Callable[[str], str]) -> str:
    recomputed = seed_recomputed(book, region)
    lines = [f"The seed's cost table, recomputed at {region} list prices, next to this project as synthesized "
             f"(at {assumptions.requests_per_day:,.0f} requests/day, "
             f"{assumptions.batch_rows_per_night:,.0f} rows/night, "
             f"{assumptions.devices} devices)", "",
             f"{'pattern':<11}{'seed says':>13}{'seed, recomputed':>18}{'this project':>14}  assumption"]
    for row in SEED_ROWS:
        value, _ = recomputed[row.pattern]
        mine = f"{project[row.pattern].monthly_usd:,.2f}" if row.pattern in project else "not deployed"
        lines.append(f"{row.pattern:<11}{row.claim:>13}{value:>18,.2f}{mine:>14}  {row.assumption}")
    lines.append("")
    for row in SEED_ROWS:
        lines.append(f"{row.pattern}: seed → recomputed: {recomputed[row.pattern][1]}.")
        if row.pattern in project:
            lines.append(f"{row.pattern}: recomputed → this project: {explain_project(row.pattern)}.")
    return "\n".join(lines)
