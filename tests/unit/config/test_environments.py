"""``-c env=<name>``: an environment's overrides on top of the defaults, names that carry the environment."""
from __future__ import annotations

import pytest

from stacks.config import ConfigError, config_from_context
from stacks.deployment import deployment_from_context
from tests.conftest import cli_context


def deployment(**overrides):
    return deployment_from_context({**cli_context(), **overrides})


def test_no_environment_keeps_todays_names():
    found = deployment()
    assert found.env is None
    assert (found.stack_name("Realtime"), found.endpoint_name, found.component_name, found.batch_job_prefix) == (
        "FraudDetector-Realtime", "fraud-detector-realtime", "com.example.FraudDetector", "fraud-detector")


def test_an_environment_names_stacks_and_fixed_resource_names():
    # GIVEN -c env=staging
    found = deployment(env="staging")
    # THEN stack names and the fixed resource names carry the environment
    assert found.stack_name("Realtime") == "FraudDetector-Staging-Realtime"
    assert (found.endpoint_name, found.component_name, found.batch_job_prefix, found.base_name) == (
        "fraud-detector-staging-realtime", "com.example.FraudDetector.Staging", "fraud-detector-staging",
        "fraud-detector-staging")


def test_environment_overrides_are_deep_merged_on_the_defaults():
    # GIVEN staging sets the target and one autoscaling key
    config = deployment(env="staging").config
    # THEN those keys change and their siblings keep the defaults
    assert (config.target.account, config.target.region) == ("111111111111", "eu-west-1")
    assert config.realtime.autoscaling.max_capacity == 4
    assert config.realtime.autoscaling.min_capacity == 2
    assert [v.name for v in config.realtime.variants] == ["v1", "v2"]


def test_command_line_overrides_win_over_the_environment():
    config = deployment(env="staging", **{"deploy.realtime.autoscaling.max_capacity": "6",
                                          "deploy.environments.staging.target.region": "us-east-1"}).config
    assert config.realtime.autoscaling.max_capacity == 6
    # AND an environment's own keys are overridable too, as text where text is expected
    assert config.target.region == "us-east-1" and config.target.account == "111111111111"


def test_production_sets_a_shorter_job_prefix():
    # "fraud-detector-production" would be 25 characters; transform job prefixes allow 23
    assert deployment(env="production").batch_job_prefix == "fraud-detector-prod"


def test_a_derived_job_prefix_too_long_for_the_environment_says_where_to_set_it():
    context = {**cli_context(), "env": "production", "deploy.environments.production.batch.job_name_prefix": "null"}
    with pytest.raises(ConfigError) as caught:
        deployment_from_context(context)
    assert caught.value.problems == [
        "deploy.batch.job_name_prefix: 'fraud-detector-production' (from the model name and environment) cannot "
        "prefix transform job names (lower-case letters, digits and hyphens, max 23); set "
        "deploy.environments.production.batch.job_name_prefix"]


@pytest.mark.parametrize("env, hint", [("prod", "did you mean 'production'? "), ("qa", "")])
def test_unknown_environments_are_refused_with_the_known_ones(env, hint):
    with pytest.raises(ConfigError) as caught:
        config_from_context({**cli_context(), "env": env})
    assert caught.value.problems == [
        f"env: unknown environment {env!r}; {hint}known environments (under deploy.environments): production, "
        "staging"]


def test_mistakes_in_an_environment_are_reported_with_the_others():
    context = {**cli_context(), "env": "staging", "deploy.environments.staging.realtime.autoscaling.max_capacity": "x",
               "deploy.alerts.email": "nope"}
    with pytest.raises(ConfigError) as caught:
        config_from_context(context)
    assert sorted(caught.value.problems) == [
        "deploy.alerts.email: 'nope' does not match an email address",
        "deploy.realtime.autoscaling.max_capacity: must be an integer, got 'x'"]


def test_environment_names_must_fit_resource_names():
    with pytest.raises(ConfigError, match=r"deploy\.environments\.Prod_1: environment names are lower-case"):
        config_from_context({**cli_context(), "deploy.environments.Prod_1": "{}"})


def test_the_app_names_every_stack_with_the_environment():
    from tests.conftest import build_app

    _, stacks = build_app(overrides={"env": "staging", "deploy.realtime.monitor.enabled": False})
    assert sorted(stack.stack_name for stack in stacks.values()) == [
        "FraudDetector-Staging-Batch", "FraudDetector-Staging-Edge", "FraudDetector-Staging-Realtime",
        "FraudDetector-Staging-Serverless"]
    assert {stack.account for stack in stacks.values()} == {"111111111111"}
