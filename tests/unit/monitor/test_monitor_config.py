"""``deploy.realtime.monitor``: defaults, validation, and the data-capture prerequisite."""
from __future__ import annotations

import pytest

from stacks.config import ConfigError, config_from_context
from stacks.config.monitor import MonitorConfig, require_data_capture
from tests.conftest import build_app, cli_context


def config(**overrides):
    return config_from_context({**cli_context(), **overrides})


def test_cdk_json_matches_the_dataclass_defaults():
    # GIVEN cdk.json's monitor section  THEN it states exactly the defaults the code documents
    assert config().realtime.monitor == MonitorConfig()


def test_defaults_are_hourly_data_quality_and_daily_model_quality():
    monitor = config().realtime.monitor
    assert monitor.enabled and monitor.data_quality.schedule == "cron(0 * ? * * *)"
    assert monitor.model_quality.enabled and monitor.model_quality.schedule == "cron(0 0 ? * * *)"


@pytest.mark.parametrize("expression", ["cron(0 * ? * * *)", "cron(0 13 ? * * *)", "cron(0 0/6 ? * * *)",
                                        "cron(0 17/12 ? * * *)"])
def test_schedules_model_monitor_accepts_pass(expression):
    assert config(**{"deploy.realtime.monitor.data_quality.schedule": expression}).realtime.monitor.data_quality.schedule \
        == expression


@pytest.mark.parametrize("expression", ["cron(*/5 * ? * * *)", "rate(1 hour)", "cron(0 25 ? * * *)",
                                        "cron(0 2 * * ? *)"])
def test_schedules_model_monitor_refuses_fail_with_the_allowed_forms(expression):
    with pytest.raises(ConfigError) as raised:
        config(**{"deploy.realtime.monitor.data_quality.schedule": expression})
    assert "deploy.realtime.monitor.data_quality.schedule" in str(raised.value)
    assert "cron(0 * ? * * *) (hourly)" in str(raised.value)


def test_every_bad_value_is_reported_at_once():
    with pytest.raises(ConfigError) as raised:
        config(**{"deploy.realtime.monitor.max_runtime_s": 7200,
                  "deploy.realtime.monitor.model_quality.probability_threshold": 2,
                  "deploy.realtime.monitor.model_quality.ground_truth_prefix": "/leading/slash/"})
    problems = raised.value.problems
    assert len(problems) == 3
    assert any("max_runtime_s" in problem for problem in problems)


def test_monitor_without_data_capture_names_both_switches():
    # GIVEN data capture switched off while the monitor stays on
    realtime = config(**{"deploy.realtime.data_capture.enabled": False}).realtime
    # THEN the check refuses, naming both keys and how to resolve it
    with pytest.raises(ConfigError) as raised:
        require_data_capture(realtime)
    message = str(raised.value)
    assert "deploy.realtime.data_capture.enabled" in message and "deploy.realtime.monitor.enabled" in message


def test_the_app_refuses_to_synthesize_a_monitor_without_capture():
    # GIVEN the same combination given to the whole app (as `cdk synth -c ...` would)
    with pytest.raises(ConfigError, match="deploy.realtime.data_capture.enabled"):
        build_app(overrides={"deploy.realtime.data_capture.enabled": False})


def test_capture_off_with_the_monitor_off_is_fine():
    realtime = config(**{"deploy.realtime.data_capture.enabled": False,
                         "deploy.realtime.monitor.enabled": False}).realtime
    require_data_capture(realtime)


def test_monitor_switched_off_leaves_no_monitoring_resources():
    # GIVEN deploy.realtime.monitor.enabled=false (as `-c` passes it, text), only the real-time stack built
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.realtime_stack import RealtimeStack
    from tests.conftest import SKIP_BUNDLING

    app = cdk.App(context=dict(SKIP_BUNDLING))
    stack = RealtimeStack(app, "MonitorOff", config=config(**{"deploy.realtime.monitor.enabled": "false"}))
    template = Template.from_stack(stack)
    # THEN the endpoint is there, and nothing of Model Monitor is
    template.resource_count_is("AWS::SageMaker::Endpoint", 1)
    for resource_type in ("AWS::SageMaker::MonitoringSchedule", "AWS::SageMaker::DataQualityJobDefinition",
                          "Custom::ModelMonitorBaseline", "AWS::CloudWatch::CompositeAlarm"):
        template.resource_count_is(resource_type, 0)
