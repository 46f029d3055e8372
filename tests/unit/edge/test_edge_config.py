"""The ``deploy.edge`` configuration: defaults, names derived from the model, every mistake reported at once."""
from __future__ import annotations

import pytest

from stacks.config import ConfigError, config_from_context
from tests.conftest import cli_context


def config_with(**overrides):
    context = {**cli_context(), **{f"deploy.edge.{key}": value for key, value in overrides.items()}}
    return config_from_context(context)


def test_defaults():
    edge = config_with().edge
    # THEN the pattern is on, deploys nothing to devices, and the stack looks after the devices' role
    assert edge.enabled and not edge.deployment.enabled
    assert edge.component_name is None and edge.version == "1.0"
    assert edge.token_exchange_role.create is True and edge.token_exchange_role.name is None
    # AND the component name and topics derive from the model's name
    from stacks.deployment import resolve

    deployment = resolve(config_with())
    assert deployment.component_name == "com.example.FraudDetector"
    topics = deployment.edge_topics
    assert (topics.input, topics.output, topics.error) == (
        "fraud-detector/requests", "fraud-detector/predictions", "fraud-detector/errors")


def test_cli_overrides_enable_a_deployment():
    # GIVEN the overrides a user passes with -c (strings, as the CLI passes them)
    edge = config_with(**{"deployment.enabled": "true",
                          "deployment.thing_group_arn": "arn:aws:iot:us-east-1:123456789012:thinggroup/cams"}).edge
    assert edge.deployment.enabled and edge.deployment.thing_group_arn.endswith("thinggroup/cams")


def test_every_problem_is_reported_with_its_key():
    # GIVEN five mistakes across the edge section
    with pytest.raises(ConfigError) as caught:
        config_with(version="1.0.0", publisher="", component_name="aws.greengrass.Nucleus",
                    **{"topics.input": "cameras/+/frames", "topics.error": "fraud-detector/predictions",
                       "topics.output": "fraud-detector/predictions", "deployment.enabled": True})
    problems = "\n".join(caught.value.problems)
    # THEN each is named by its dotted path
    for fragment in ("deploy.edge.version", "deploy.edge.publisher", "deploy.edge.topics.input",
                     "deploy.edge.deployment.thing_group_arn: required"):
        assert fragment in problems, problems
    # AND the reserved-name check, which spans the section, waits until its fields are valid (no follow-on errors)
    assert "deploy.edge.component_name" not in problems


def test_a_reserved_component_name_is_refused():
    with pytest.raises(ConfigError, match="deploy.edge.component_name: 'aws.greengrass.Nucleus' starts with a prefix "
                                          "reserved for AWS-provided components"):
        config_with(component_name="aws.greengrass.Nucleus")


def test_duplicate_topics_are_refused():
    with pytest.raises(ConfigError, match="deploy.edge.topics.error: 'a/b' is also the output topic"):
        config_with(**{"topics.output": "a/b", "topics.error": "a/b"})


def test_thing_group_arn_must_be_a_thing_group():
    with pytest.raises(ConfigError, match="thinggroup"):
        config_with(**{"deployment.thing_group_arn": "arn:aws:iot:us-east-1:123456789012:thing/cam-1"})
