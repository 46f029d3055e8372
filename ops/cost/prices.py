"""The price book: list prices from ops/prices/aws-prices.json, optionally refreshed from the AWS Price List API.

Every price carries its unit, region, date, source and confidence. A price the book does not hold is a
usage error naming the entry to add, never a silent zero.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any, Iterable

from ops.cli import AwsError, UsageError

PRICES_FILE = Path(__file__).resolve().parents[1] / "prices" / "aws-prices.json"
#: The Price List API answers in us-east-1 (and a few others) for every region's prices.
PRICING_API_REGION = "us-east-1"
#: usagetype prefixes of the regions the live refresh knows (SageMaker usage types read `USE1-Host:ml.m5.large`).
USAGE_PREFIX = {"us-east-1": "USE1", "us-east-2": "USE2", "us-west-1": "USW1", "us-west-2": "USW2",
                "eu-west-1": "EU", "eu-west-2": "EUW2", "eu-west-3": "EUW3", "eu-central-1": "EUC1",
                "eu-north-1": "EUN1", "ap-southeast-1": "APS1", "ap-southeast-2": "APS2",
                "ap-northeast-1": "APN1", "ap-south-1": "APS3", "ca-central-1": "CAN1"}
#: price key family -> SageMaker usage type infix
_SAGEMAKER_USAGE = {"sagemaker.hosting": "Host", "sagemaker.transform": "Tsform", "sagemaker.processing": "Processing"}
_DESCRIPTIONS = {"sagemaker.hosting": "SageMaker real-time hosting", "sagemaker.transform": "SageMaker Batch Transform",
                 "sagemaker.processing": "SageMaker Processing (Model Monitor)"}


@dataclass(frozen=True)
class Price:
    key: str
    region: str
    price: float
    unit: str
    date: str
    source: str
    confidence: str
    note: str | None = None

    @property
    def low_confidence(self) -> bool:
        return self.confidence == "low"


@dataclass(frozen=True)
class PriceBook:
    source: str
    date: str
    prices: dict[tuple[str, str], Price]

    def get(self, key: str, region: str) -> Price:
        try:
            return self.prices[(key, region)]
        except KeyError:
            family, _, item = key.partition(":")
            what = f"{_DESCRIPTIONS.get(family, family)} {item}".strip() if item else key
            known = sorted({region for (_, region) in self.prices})
            hint = "" if region in known else (f" (the book has prices for {', '.join(known)} only; "
                                               f"--region {known[0]} prices it there)")
            raise UsageError(f"no price for {what} in {region}{hint}: add {{\"key\": \"{key}\", \"region\": "
                             f"\"{region}\", \"price\": ..., \"unit\": ..., \"date\": ..., \"source\": ...}} to "
                             f"ops/prices/aws-prices.json, or run with --prices live") from None

    def with_prices(self, prices: Iterable[Price], *, source: str, on: str) -> "PriceBook":
        merged = dict(self.prices)
        merged.update({(price.key, price.region): price for price in prices})
        return replace(self, prices=merged, source=source, date=on)

    def used(self, keys: Iterable[tuple[str, str]]) -> list[Price]:
        return [self.prices[key] for key in sorted(set(keys))]


def load_price_book(path: Path = PRICES_FILE) -> PriceBook:
    try:
        document = json.loads(path.read_text())
        prices = {(entry["key"], entry["region"]): Price(
            key=entry["key"], region=entry["region"], price=float(entry["price"]), unit=entry["unit"],
            date=str(entry["date"]), source=entry["source"], confidence=entry.get("confidence", "medium"),
            note=entry.get("note")) for entry in document["prices"]}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise UsageError(f"cannot read the price book {path}: {error}") from None
    return PriceBook(source=document.get("source", str(path)), date=str(document.get("date", "")), prices=prices)


# -- the Price List API ----------------------------------------------------------------------------------------
def refresh_instance_prices(book: PriceBook, keys: Iterable[str], region: str, *, client: Any = None,
                            today: date | None = None) -> PriceBook:
    """Replace the SageMaker instance prices ``keys`` (``sagemaker.hosting:ml.m5.large``...) with today's.

    One ``pricing.get_products`` call per price, filtered on the usage type; the OnDemand term in hours is kept.
    Prices the API does not have stay as they were in the book (and keep their date and source).
    """
    if region not in USAGE_PREFIX:
        raise UsageError(f"--prices live does not know the usage-type prefix of {region}: add it to "
                         "ops/cost/prices.py USAGE_PREFIX")
    if client is None:
        import boto3

        client = boto3.client("pricing", region_name=PRICING_API_REGION)
    on = (today or date.today()).isoformat()
    fresh: list[Price] = []
    for key in sorted(set(keys)):
        family, _, instance_type = key.partition(":")
        if family not in _SAGEMAKER_USAGE or not instance_type:
            continue
        usage_type = f"{USAGE_PREFIX[region]}-{_SAGEMAKER_USAGE[family]}:{instance_type}"
        response = client.get_products(ServiceCode="AmazonSageMaker", FormatVersion="aws_v1", MaxResults=10, Filters=[
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": region},
            {"Type": "TERM_MATCH", "Field": "usagetype", "Value": usage_type}])
        hourly = _on_demand_hourly(response.get("PriceList", []))
        if hourly is not None:
            fresh.append(Price(key=key, region=region, price=hourly, unit="USD per instance-hour", date=on,
                               source=f"AWS Price List API (AmazonSageMaker, usagetype {usage_type})",
                               confidence="high"))
    if not fresh:
        raise AwsError("the Price List API returned no SageMaker instance price for this deployment")
    return book.with_prices(fresh, source="AWS Price List API for SageMaker instances, the price book for the rest",
                            on=on)


def _on_demand_hourly(price_list: list[Any]) -> float | None:
    for product in price_list:
        document = json.loads(product) if isinstance(product, str) else product
        for term in (document.get("terms", {}).get("OnDemand") or {}).values():
            for dimension in (term.get("priceDimensions") or {}).values():
                usd = dimension.get("pricePerUnit", {}).get("USD")
                if dimension.get("unit", "").lower() in ("hrs", "hours", "hour") and usd and float(usd) > 0:
                    return float(usd)
    return None
