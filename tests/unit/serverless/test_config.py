"""The serverless section of the configuration: defaults, overrides, and every mistake reported at once."""
from __future__ import annotations

import pytest
from pydantic import BaseModel

from stacks.config import ConfigError, config_from_context
from stacks.config.serverless import ServerlessConfig
from tests.conftest import cli_context


def test_the_suite_uses_the_models_defaults():
    # GIVEN no serverless section in the pinned context  THEN the documented defaults apply
    config = config_from_context(cli_context()).serverless
    assert config == ServerlessConfig()
    assert (config.architecture, config.memory_mb, config.timeout_s) == ("arm64", 512, 30)
    assert config.provisioned_concurrency == 0 and config.reserved_concurrency is None
    assert config.api.auth == "iam"
    # AND a fresh account gets the API Gateway logging role access logs need (the stack sets it by default)
    assert config.api.create_account_logging_role is True


def test_cli_overrides_reach_nested_keys():
    context = {**cli_context(), "deploy.serverless.architecture": "x86_64",
               "deploy.serverless.provisioned_concurrency": "3", "deploy.serverless.warm": "provisioned",
               "deploy.serverless.api.auth": "api_key",
               "deploy.serverless.upload_trigger.enabled": "false"}
    config = config_from_context(context).serverless
    assert (config.architecture, config.provisioned_concurrency, config.api.auth) == ("x86_64", 3, "api_key")
    assert config.upload_trigger.enabled is False


def test_every_mistake_is_reported_at_once_with_its_key_path():
    # GIVEN malformed values in the serverless section and cross-field mistakes in its sub-sections
    context = {**cli_context(),
               "deploy.serverless.architecture": "sparc",
               "deploy.serverless.memory_mb": "64",
               "deploy.serverless.api.quota_per_day": "100",
               "deploy.serverless.upload_trigger.output_prefix": "incoming/results/",
               "deploy.serverless.alarms.errors_per_5min": "0"}
    with pytest.raises(ConfigError) as caught:
        config_from_context(context)
    problems = "\n".join(caught.value.problems)
    # THEN each is named with its path (and the allowed values where there is a list)
    for expected in ("deploy.serverless.architecture", "'arm64'", "deploy.serverless.memory_mb",
                     "deploy.serverless.api.quota_per_day: a quota needs a usage plan",
                     "deploy.serverless.upload_trigger.output_prefix: 'incoming/results/' overlaps input_prefix "
                     "'incoming/'", "deploy.serverless.alarms.errors_per_5min: must be between 1 and"):
        assert expected in problems, f"{expected!r} missing from:\n{problems}"


def test_cross_field_mistakes_of_the_section_are_reported_together():
    context = {**cli_context(),
               "deploy.serverless.reserved_concurrency": "2",
               "deploy.serverless.provisioned_concurrency": "5",
               "deploy.serverless.log_retention_days": "10"}
    with pytest.raises(ConfigError) as caught:
        config_from_context(context)
    problems = "\n".join(caught.value.problems)
    for expected in ("deploy.serverless.provisioned_concurrency: 5 exceeds reserved_concurrency (2)",
                     "deploy.serverless.log_retention_days: 10 is not a CloudWatch Logs retention"):
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
    # GIVEN the config models  THEN every field has a default (cdk.json may omit any of them)
    def models(model):
        yield model
        for info in model.model_fields.values():
            if isinstance(info.annotation, type) and issubclass(info.annotation, BaseModel):
                yield from models(info.annotation)

    for model in models(ServerlessConfig):
        for name, info in model.model_fields.items():
            assert not info.is_required(), f"{model.__name__}.{name}"
