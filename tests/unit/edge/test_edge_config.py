"""The ``deploy.edge`` configuration: defaults from cdk.json and every mistake reported at once."""
from __future__ import annotations

import pytest

from stacks.config import ConfigError, config_from_context
from tests.conftest import cli_context


def config_with(**overrides):
    context = {**cli_context(), **{f"deploy.edge.{key}": value for key, value in overrides.items()}}
    return config_from_context(context)


def test_defaults_from_cdk_json():
    edge = config_with().edge
    # THEN the pattern is on, deploys nothing to devices, and grants the installer's default role
    assert edge.enabled and not edge.deployment.enabled
    assert edge.component_name == "com.example.FraudDetector" and edge.version == "1.0"
    assert edge.token_exchange_role_name == "GreengrassV2TokenExchangeRole"
    assert (edge.topics.input, edge.topics.output, edge.topics.error) == (
        "fraud-detector/transactions", "fraud-detector/predictions", "fraud-detector/errors")


def test_cli_overrides_enable_a_deployment():
    # GIVEN the overrides a user passes with -c (strings, as the CLI passes them)
    edge = config_with(**{"deployment.enabled": "true",
                          "deployment.thing_group_arn": "arn:aws:iot:us-east-1:123456789012:thinggroup/cams"}).edge
    assert edge.deployment.enabled and edge.deployment.thing_group_arn.endswith("thinggroup/cams")


def test_every_problem_is_reported_with_its_key():
    # GIVEN six mistakes across the edge section
    with pytest.raises(ConfigError) as caught:
        config_with(version="1.0.0", score_threshold=1.5, component_name="aws.greengrass.Nucleus",
                    **{"topics.input": "cameras/+/frames", "topics.error": "fraud-detector/predictions",
                       "deployment.enabled": True})
    problems = "\n".join(caught.value.problems)
    # THEN each is named by its dotted path
    for fragment in ("deploy.edge.version", "deploy.edge.score_threshold", "deploy.edge.component_name",
                     "deploy.edge.topics.input", "deploy.edge.topics.error: 'fraud-detector/predictions' is also the output topic",
                     "deploy.edge.deployment.thing_group_arn: required"):
        assert fragment in problems, problems


def test_thing_group_arn_must_be_a_thing_group():
    with pytest.raises(ConfigError, match="thinggroup"):
        config_with(**{"deployment.thing_group_arn": "arn:aws:iot:us-east-1:123456789012:thing/cam-1"})
