"""The price book: every price dated and sourced, missing prices refused, the Price List API refresh stubbed."""
from __future__ import annotations

import datetime as dt
import json

import boto3
import pytest
from botocore.stub import Stubber

from ops.cli import AwsError, UsageError
from ops.cost.prices import PRICES_FILE, load_price_book, refresh_instance_prices
from tests.unit.ops.conftest import price_list_product


def test_every_price_in_the_book_has_unit_region_date_source_and_confidence():
    document = json.loads(PRICES_FILE.read_text())
    assert document["source"] and document["date"]
    assert document["prices"]
    for entry in document["prices"]:
        assert entry["price"] > 0, entry
        assert entry["unit"] and entry["region"] and entry["date"] and entry["source"], entry
        assert entry["confidence"] in ("high", "medium", "low"), entry


def test_low_confidence_facts_stay_flagged():
    # GIVEN the gathered facts mark ml.c6i.large and SageMaker Serverless as low confidence
    book = load_price_book()
    assert book.get("sagemaker.hosting:ml.c6i.large", "us-east-1").low_confidence
    assert book.get("sagemaker.serverless.compute", "us-east-1").low_confidence
    assert not book.get("sagemaker.hosting:ml.m5.large", "us-east-1").low_confidence


def test_known_prices_are_looked_up_by_key_and_region():
    book = load_price_book()
    assert book.get("sagemaker.hosting:ml.m5.large", "us-east-1").price == 0.115
    assert book.get("lambda.duration:arm64", "us-east-1").price == pytest.approx(0.0000133334)
    assert book.get("apigateway.rest.requests", "us-east-1").unit == "USD per million requests"


def test_an_unknown_instance_type_names_the_price_to_add():
    with pytest.raises(UsageError) as refused:
        load_price_book().get("sagemaker.hosting:ml.p5.48xlarge", "us-east-1")
    message = str(refused.value)
    assert "ml.p5.48xlarge" in message and "us-east-1" in message and "aws-prices.json" in message
    assert "\n" not in message


def test_an_unknown_region_says_which_regions_the_book_has():
    with pytest.raises(UsageError, match=r"eu-west-1 \(the book has prices for us-east-1 only; --region us-east-1"):
        load_price_book().get("sagemaker.hosting:ml.m5.large", "eu-west-1")


@pytest.fixture
def pricing(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("pricing", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _expect(stub, usage_type: str, price_list: list[str]) -> None:
    stub.add_response("get_products", {"FormatVersion": "aws_v1", "PriceList": price_list}, {
        "ServiceCode": "AmazonSageMaker", "FormatVersion": "aws_v1", "MaxResults": 10, "Filters": [
            {"Type": "TERM_MATCH", "Field": "regionCode", "Value": "us-east-1"},
            {"Type": "TERM_MATCH", "Field": "usagetype", "Value": usage_type}]})


def test_live_refresh_replaces_instance_prices_with_the_on_demand_hourly_rate(pricing):
    # GIVEN the Price List API quotes hosting ml.m5.large at $0.12/h and has nothing for the transform rate
    client, stub = pricing
    _expect(stub, "USE1-Host:ml.m5.large", [price_list_product("USE1-Host:ml.m5.large", "0.1200000000")])
    _expect(stub, "USE1-Tsform:ml.m5.xlarge", [])
    # WHEN the book is refreshed
    book = refresh_instance_prices(load_price_book(), ["sagemaker.hosting:ml.m5.large",
                                                       "sagemaker.transform:ml.m5.xlarge"], "us-east-1",
                                   client=client, today=dt.date(2026, 12, 2))
    # THEN the hosting price is today's, dated and sourced; the transform price keeps the book's
    hosting = book.get("sagemaker.hosting:ml.m5.large", "us-east-1")
    assert (hosting.price, hosting.date, hosting.confidence) == (0.12, "2026-12-02", "high")
    assert "Price List API" in hosting.source and "USE1-Host:ml.m5.large" in hosting.source
    assert book.get("sagemaker.transform:ml.m5.xlarge", "us-east-1").price == 0.23
    assert book.date == "2026-12-02" and "Price List API" in book.source


def test_live_refresh_that_finds_nothing_is_an_aws_error(pricing):
    client, stub = pricing
    _expect(stub, "USE1-Host:ml.m5.large", [])
    with pytest.raises(AwsError, match="no SageMaker instance price"):
        refresh_instance_prices(load_price_book(), ["sagemaker.hosting:ml.m5.large"], "us-east-1", client=client)


def test_live_refresh_refuses_a_region_without_a_usage_prefix():
    with pytest.raises(UsageError, match="usage-type prefix of mars-north-1"):
        refresh_instance_prices(load_price_book(), ["sagemaker.hosting:ml.m5.large"], "mars-north-1", client=object())
