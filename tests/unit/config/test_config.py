"""Configuration: defaults parse, overrides work, and every mistake is reported at once with its key path."""
from __future__ import annotations

import pytest

from stacks.config import ConfigError, config_from_context
from tests.conftest import cli_context


def test_cdk_json_defaults_parse():
    # GIVEN the context in cdk.json  WHEN parsed  THEN the seed's defaults come out
    config = config_from_context(cli_context())
    assert config.model.framework_version == "1.2-1"
    assert config.realtime.alarms.latency_p99_ms == 500
    assert config.realtime.autoscaling.max_capacity == 10


def test_dotted_override_reads_json_values():
    # GIVEN -c deploy.realtime.autoscaling.max_capacity=4 (the CLI passes strings)
    context = {**cli_context(), "deploy.realtime.autoscaling.max_capacity": "4",
               "deploy.realtime.data_capture.enabled": "false", "deploy.realtime.monitor.enabled": "false"}
    # WHEN parsed
    config = config_from_context(context)
    # THEN the value is an int and the bool is a bool
    assert config.realtime.autoscaling.max_capacity == 4
    assert config.realtime.data_capture.enabled is False


def test_monitor_without_data_capture_names_both_keys():
    # GIVEN data capture switched off while Model Monitor stays on
    context = {**cli_context(), "deploy.realtime.data_capture.enabled": "false"}
    # WHEN parsed  THEN the error names both keys, collected with the other config errors
    with pytest.raises(ConfigError, match=r"deploy\.realtime\.data_capture\.enabled.*deploy\.realtime\.monitor\.enabled"
                                          r"|deploy\.realtime\.monitor\.enabled.*deploy\.realtime\.data_capture\.enabled"):
        config_from_context(context)


def test_every_problem_is_reported_once_with_its_path():
    # GIVEN several independent mistakes
    context = {**cli_context(),
               "deploy.model.framework_version": "0.9",
               "deploy.realtime.autoscaling.min_capacity": "5",
               "deploy.realtime.autoscaling.max_capacity": "2",
               "deploy.realtime.alarms.latency_p99_ms": "fast",
               "deploy.realtime.typo_key": "1"}
    # WHEN parsed
    with pytest.raises(ConfigError) as caught:
        config_from_context(context)
    message = str(caught.value)
    # THEN each is named with its dotted path and what is allowed
    assert "deploy.model.framework_version: '0.9' is not supported; allowed values are 1.2-1, 1.4-2" in message
    assert "deploy.realtime.autoscaling.min_capacity: 5 must not exceed max_capacity (2)" in message
    assert "deploy.realtime.alarms.latency_p99_ms: must be a number, got 'fast'" in message
    assert "deploy.realtime.typo_key: unknown key; allowed keys are" in message
    assert len(caught.value.problems) >= 4


def test_burstable_instance_with_autoscaling_is_refused():
    # GIVEN a burstable instance type while autoscaling is on
    context = {**cli_context(), "deploy.realtime.variants": '[{"name": "v1", "instance_type": "ml.t2.medium",'
                                                          ' "initial_instance_count": 1}]'}
    # WHEN parsed  THEN the error says why and what to do
    with pytest.raises(ConfigError, match=r"ml\.t2\.medium is burstable and cannot autoscale"):
        config_from_context(context)


def test_out_of_range_values_name_the_range():
    # GIVEN a sampling percentage above 100
    context = {**cli_context(), "deploy.realtime.data_capture.sampling_percent": "150"}
    # WHEN parsed  THEN the message gives the allowed range
    with pytest.raises(ConfigError, match=r"sampling_percent: must be between 1 and 100, got 150"):
        config_from_context(context)


def test_wrong_type_in_a_list_of_objects_points_at_the_item():
    context = {**cli_context(), "deploy.realtime.variants": '[{"name": "v1", "initial_instance_count": "two"}]'}
    with pytest.raises(ConfigError, match=r"deploy\.realtime\.variants\[0\]\.initial_instance_count: must be an "
                                          r"integer, got 'two'"):
        config_from_context(context)


def test_app_exits_with_the_message_not_a_stack_trace(tmp_path):
    # GIVEN the real app entry point and a bad override, run as the CDK CLI runs it
    import json
    import os
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps({**cli_context(), "deploy.alerts.email": "not-an-email"}),
           "CDK_OUTDIR": str(tmp_path)}
    # WHEN synthesized
    result = subprocess.run([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    # THEN it fails with the key path, and no Python traceback
    assert result.returncode == 2
    assert "deploy.alerts.email: 'not-an-email' does not match an email address" in result.stderr
    assert "Traceback" not in result.stderr
