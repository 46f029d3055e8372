"""Fixtures for the ops commands: the default app written out as a cloud assembly, and template fragments."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from tests.context import WITH_CANDIDATE

STACK_NAMES = {"realtime": "FraudDetector-Realtime", "batch": "FraudDetector-Batch",
               "serverless": "FraudDetector-Serverless", "edge": "FraudDetector-Edge"}


def write_assembly(directory: Path, templates: dict[str, dict]) -> Path:
    """A minimal cdk.out: manifest.json naming one CloudFormation stack artifact per template."""
    directory.mkdir(parents=True, exist_ok=True)
    artifacts = {}
    for pattern, template in templates.items():
        name = STACK_NAMES.get(pattern, pattern)
        (directory / f"{name}.template.json").write_text(json.dumps(template))
        artifacts[name] = {"type": "aws:cloudformation:stack", "environment": "aws://unknown-account/unknown-region",
                           "properties": {"templateFile": f"{name}.template.json"}}
    (directory / "manifest.json").write_text(json.dumps({"version": "48.0.0", "artifacts": artifacts}))
    return directory


#: The demo as the cost tests read it: a canary (v1 90 %, v2 10 %) so that two variants are priced.
COST_APP_OVERRIDES = {**WITH_CANDIDATE}


@pytest.fixture(scope="session")
def default_json(tmp_path_factory) -> dict[str, dict]:
    """The demo app's templates (with its canary candidate) as plain JSON, by pattern."""
    from aws_cdk.assertions import Template

    from tests.conftest import build_app

    _, stacks = build_app(overrides=COST_APP_OVERRIDES, outdir=str(tmp_path_factory.mktemp("cost-app")))
    return {pattern: Template.from_stack(stack).to_json() for pattern, stack in stacks.items()}


@pytest.fixture(scope="session")
def default_cdk_out(default_json, tmp_path_factory) -> Path:
    return write_assembly(tmp_path_factory.mktemp("cost-cdk-out"), default_json)


@pytest.fixture
def templates(default_json) -> dict[str, dict]:
    """A deep copy of the default templates, for tests that change a resource."""
    return copy.deepcopy(default_json)


def price_list_product(usage_type: str, usd: str) -> str:
    """One Price List API product as the API returns it: a JSON document in a string."""
    return json.dumps({
        "product": {"productFamily": "ML Instance", "sku": "SKU1",
                    "attributes": {"usagetype": usage_type, "regionCode": "us-east-1",
                                   "instanceName": usage_type.split(":")[-1]}},
        "serviceCode": "AmazonSageMaker",
        "terms": {"OnDemand": {"SKU1.JRTCKXETXF": {
            "offerTermCode": "JRTCKXETXF", "sku": "SKU1", "effectiveDate": "2026-11-01T00:00:00Z",
            "priceDimensions": {"SKU1.JRTCKXETXF.6YS6EN2CT7": {
                "unit": "Hrs", "pricePerUnit": {"USD": usd}, "beginRange": "0", "endRange": "Inf",
                "description": f"${usd} per {usage_type} hour in US East (N. Virginia)"}}}}}})
