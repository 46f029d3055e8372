"""The serverless section of the configuration: defaults, overrides, and every mistake reported at once."""
from __future__ import annotations

import dataclasses

import pytest

from stacks.config import ConfigError, config_from_context
from stacks.config.serverless import ServerlessConfig
from tests.conftest import cli_context


def test_cdk_json_holds_the_defaults_of_the_dataclasses():
    # GIVEN cdk.json's serverless section  THEN it parses to exactly the documented defaults
    config = config_from_context(cli_context()).serverless
    assert config == ServerlessConfig()
    assert (config.architecture, config.memory_mb, config.timeout_s) == ("arm64", 512, 30)
    assert config.provisioned_concurrency == 0 and config.reserved_concurrency is None
    assert config.api.auth == "iam"
    # AND a fresh account gets the API Gateway logging role access logs need (the stack sets it by default)
    assert config.api.create_account_logging_role is True


def test_cli_overrides_reach_nested_keys():
    context = {**cli_context(), "deploy.serverless.architecture": "x86_64",
               "deploy.serverless.provisioned_concurrency": "3", "deploy.serverless.api.auth": "api_key",
               "deploy.serverless.upload_trigger.enabled": "false"}
    config = config_from_context(context).serverless
    assert (config.architecture, config.provisioned_concurrency, config.api.auth) == ("x86_64", 3, "api_key")
    assert config.upload_trigger.enabled is False


def test_every_mistake_is_reported_at_once_with_its_key_path():
    # GIVEN several independent mistakes in the serverless section
    context = {**cli_context(),
               "deploy.serverless.architecture": "sparc",
               "deploy.serverless.memory_mb": "64",
               "deploy.serverless.reserved_concurrency": "2",
               "deploy.serverless.provisioned_concurrency": "5",
               "deploy.serverless.log_retention_days": "10",
               "deploy.serverless.api.quota_per_day": "100",
               "deploy.serverless.upload_trigger.output_prefix": "incoming/results/",
               "deploy.serverless.upload_trigger.rejected_prefix": "no-slash"}
    with pytest.raises(ConfigError) as caught:
        config_from_context(context)
    problems = "\n".join(caught.value.problems)
    # THEN each is named with its path (and the allowed values where there is a list)
    for expected in ("deploy.serverless.architecture", "'arm64'", "deploy.serverless.memory_mb",
                     "provisioned_concurrency: 5 exceeds reserved_concurrency (2)",
                     "log_retention_days: 10 is not a CloudWatch Logs retention",
                     "quota_per_day: a quota needs a usage plan",
                     "output_prefix: 'incoming/results/' overlaps input_prefix 'incoming/'",
                     "deploy.serverless.upload_trigger.rejected_prefix"):
        assert expected in problems, f"{expected!r} missing from:\n{problems}"


def test_large_upload_files_need_memory():
    context = {**cli_context(), "deploy.serverless.memory_mb": "128",
               "deploy.serverless.upload_trigger.max_file_mb": "50"}
    with pytest.raises(ConfigError, match="max_file_mb: a 50 MB file needs about 500 MB"):
        config_from_context(context)
    # AND without the trigger the same memory is fine
    context["deploy.serverless.upload_trigger.enabled"] = "false"
    assert config_from_context(context).serverless.memory_mb == 128


def test_every_option_has_a_documented_default():
    # GIVEN the config dataclasses  THEN every field has a default (cdk.json may omit any of them)
    for cls in (ServerlessConfig, *{type(getattr(ServerlessConfig(), f.name)) for f in
                                    dataclasses.fields(ServerlessConfig) if dataclasses.is_dataclass(
                                        getattr(ServerlessConfig(), f.name))}):
        for field in dataclasses.fields(cls):
            assert field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING
