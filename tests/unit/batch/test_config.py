"""deploy.batch: defaults from cdk.json, overrides, and every mistake reported at once."""
from __future__ import annotations

import pytest

from stacks.config import ConfigError, config_from_context
from stacks.deployment import deployment_from_context
from tests.conftest import cli_context


def test_defaults_match_the_seed():
    batch = config_from_context(cli_context()).batch
    assert batch.enabled
    assert (batch.transform.instance_type, batch.transform.instance_count) == ("ml.m5.xlarge", 4)
    assert (batch.transform.max_payload_mb, batch.transform.id_column) == (6, 0)
    assert (batch.schedule.expression, batch.schedule.time_zone, batch.schedule.enabled) == (
        "cron(0 2 * * ? *)", "UTC", True)
    assert batch.storage.input_bucket_name is None and batch.storage.output_bucket_name is None


def test_cli_style_overrides_reach_the_batch_config():
    context = {**cli_context(), "deploy.batch.transform.instance_count": "2",
               "deploy.batch.schedule.time_zone": "Europe/Berlin", "deploy.batch.schedule.enabled": "false"}
    batch = config_from_context(context).batch
    assert batch.transform.instance_count == 2
    assert batch.schedule.time_zone == "Europe/Berlin"
    assert batch.schedule.enabled is False


def test_every_mistake_is_reported_with_its_key_path():
    # GIVEN four independent mistakes, each in its own section
    context = {**cli_context(),
               "deploy.batch.transform.max_concurrent_transforms": 20,   # 20 * 6 MB > 100 MB
               "deploy.batch.schedule.time_zone": "Mars/Olympus",
               "deploy.batch.retry.max_attempts": 99,
               "deploy.batch.storage.input_kms_key_arn":
                   "arn:aws:kms:us-east-1:123456789012:key/11111111-2222-3333-4444-555555555555"}
    # WHEN the config is read  THEN one error lists all of them
    with pytest.raises(ConfigError) as raised:
        config_from_context(context)
    problems = "\n".join(raised.value.problems)
    assert len(raised.value.problems) == 4, problems
    assert "deploy.batch.transform.max_concurrent_transforms * max_payload_mb is 20 * 6 = 120 MB" in problems
    assert "deploy.batch.schedule.time_zone: 'Mars/Olympus' is not an IANA time zone" in problems
    assert "deploy.batch.retry.max_attempts: must be between 0 and 8, got 99" in problems
    assert "deploy.batch.storage.input_kms_key_arn: only applies to an existing bucket" in problems


def test_a_bad_value_suppresses_only_its_own_sections_cross_checks():
    # GIVEN a malformed instance type and a malformed schedule, next to cross-field mistakes in those sections
    context = {**cli_context(),
               "deploy.batch.transform.max_concurrent_transforms": 20,
               "deploy.batch.transform.instance_type": "m5.xlarge",
               "deploy.batch.schedule.time_zone": "Mars/Olympus",
               "deploy.batch.schedule.expression": "every night"}
    with pytest.raises(ConfigError) as raised:
        config_from_context(context)
    # THEN the malformed values are reported; the checks that would combine them wait for a fix
    assert [problem.split(":")[0] for problem in raised.value.problems] == [
        "deploy.batch.transform.instance_type", "deploy.batch.schedule.expression"]


def test_a_job_timeout_longer_than_the_execution_is_refused():
    context = {**cli_context(), "deploy.batch.transform.job_timeout_minutes": 800}
    with pytest.raises(ConfigError, match="job_timeout_minutes \\(800\\) must be below execution_timeout_minutes"):
        config_from_context(context)


def test_a_model_name_too_long_for_job_names_asks_for_a_prefix():
    # GIVEN a 30-character model name ("<name>-<36-char execution>-<nn>" would exceed 63)
    context = {**cli_context(), "deploy.model.name": "fraud-detector-for-card-issuer"}
    # WHEN the deployment is resolved  THEN the prefix is asked for, with its key path
    with pytest.raises(ConfigError) as raised:
        deployment_from_context(context)
    assert raised.value.problems == [
        "deploy.batch.job_name_prefix: 'fraud-detector-for-card-issuer' (from the model name) cannot prefix transform "
        "job names (lower-case letters, digits and hyphens, max 23); set deploy.batch.job_name_prefix"]


def test_a_long_model_name_is_fine_with_a_prefix_or_without_the_batch_stack():
    long_name = {**cli_context(), "deploy.model.name": "fraud-detector-for-card-issuer"}
    assert deployment_from_context({**long_name, "deploy.batch.job_name_prefix": "fd"}).batch_job_prefix == "fd"
    assert not deployment_from_context({**long_name, "deploy.batch.enabled": False}).config.batch.enabled


def test_the_default_prefix_is_the_model_name_in_lower_case():
    deployment = deployment_from_context({**cli_context(), "deploy.model.name": "Fraud-Detector"})
    assert deployment.batch_job_prefix == "fraud-detector"


def test_a_prefix_with_capitals_is_refused():
    # SageMaker lower-cases job ARNs: a policy built from "FD-*" would never match the job "FD-..." it starts.
    with pytest.raises(ConfigError, match="deploy.batch.job_name_prefix: 'FD'"):
        config_from_context({**cli_context(), "deploy.batch.job_name_prefix": "FD"})
