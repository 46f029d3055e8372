"""The S3-triggered model function has a concurrency cap, so a burst of uploads cannot starve the account."""
from __future__ import annotations

from aws_cdk.assertions import Template

from tests.unit.serverless.conftest import serverless_template


def reserved_concurrency(template: Template):
    (function,) = template.find_resources("AWS::Lambda::Function", {"Properties": {
        "Handler": "handler.lambda_handler"}}).values()
    return function["Properties"].get("ReservedConcurrentExecutions")


def test_upload_triggered_function_gets_a_safe_default_cap(default_serverless):
    # GIVEN the default config (S3 upload trigger on, no reserved concurrency configured)
    # THEN the function may run at most 10 copies at once, whatever number of files lands in incoming/
    assert reserved_concurrency(default_serverless) == 10


def test_the_cap_is_configurable():
    # GIVEN deploy.serverless.reserved_concurrency set by the operator  THEN that value wins
    assert reserved_concurrency(serverless_template(reserved_concurrency=25)) == 25


def test_without_the_upload_trigger_the_function_stays_in_the_unreserved_pool():
    # GIVEN the API alone  THEN nothing is reserved (no burst source to contain)
    assert reserved_concurrency(serverless_template(**{"upload_trigger.enabled": False})) is None
