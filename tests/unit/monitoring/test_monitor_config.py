"""``deploy.realtime.monitor``: defaults, validation, and the data-capture prerequisite."""
from __future__ import annotations

import pytest

from stacks.config import ConfigError, config_from_context
from stacks.config.monitor import MonitorConfig
from tests.conftest import build_app, cli_context


def config(**overrides):
    return config_from_context({**cli_context(), **overrides})


def test_the_suite_uses_the_models_defaults():
    # GIVEN no monitor section in the pinned context  THEN the defaults the model declares apply
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
                  "deploy.realtime.monitor.model_quality.min_auc": 2,
                  "deploy.realtime.monitor.model_quality.ground_truth_prefix": "/leading/slash/"})
    problems = raised.value.problems
    assert len(problems) == 3
    assert any("max_runtime_s" in problem for problem in problems)


def test_monitor_without_data_capture_is_a_config_problem_reported_with_the_others():
    # GIVEN data capture switched off while the monitor stays on, and an unrelated bad value in another section
    with pytest.raises(ConfigError) as raised:
        config(**{"deploy.realtime.data_capture.enabled": False,
                  "deploy.batch.transform.instance_count": 0})
    # THEN parsing the configuration reports both problems at once; the capture one names both keys
    problems = raised.value.problems
    assert any("deploy.batch.transform.instance_count" in problem for problem in problems)
    [capture] = [problem for problem in problems if problem.startswith("deploy.realtime.monitor.enabled:")]
    assert "deploy.realtime.data_capture.enabled is false" in capture
    assert "deploy.realtime.monitor.enabled to false" in capture


def test_the_app_refuses_to_synthesize_a_monitor_without_capture():
    # GIVEN the same combination given to the whole app (as `cdk synth -c ...` would)
    with pytest.raises(ConfigError, match="deploy.realtime.data_capture.enabled"):
        build_app(overrides={"deploy.realtime.data_capture.enabled": False})


@pytest.mark.parametrize("monitor_enabled, capture_enabled, refused", [
    (True, True, False), (True, False, True), (False, False, False), (False, True, False)])
def test_only_a_monitor_without_capture_is_refused(monitor_enabled, capture_enabled, refused):
    problems = MonitorConfig(enabled=monitor_enabled).problems_with_capture(capture_enabled)
    assert bool(problems) is refused


def test_capture_off_with_the_monitor_off_parses():
    realtime = config(**{"deploy.realtime.data_capture.enabled": False,
                         "deploy.realtime.monitor.enabled": False}).realtime
    assert not realtime.monitor.enabled and not realtime.data_capture.enabled


@pytest.mark.parametrize("attribute", ["predictions[0].probability", "$.predictions[0].probability", "-1", ""])
def test_probability_attribute_must_be_a_csv_column(attribute):
    # GIVEN a JSONPath or anything but a column index: the JSON response is not supported (see README)
    with pytest.raises(ConfigError, match="deploy.realtime.monitor.model_quality.probability_attribute"):
        config(**{"deploy.realtime.monitor.model_quality.probability_attribute": attribute})


def test_monitor_switched_off_leaves_no_monitoring_resources():
    # GIVEN deploy.realtime.monitor.enabled=false (as `-c` passes it, text), only the real-time stack built
    import aws_cdk as cdk
    from aws_cdk.assertions import Template

    from stacks.realtime_stack import RealtimeStack
    from tests.conftest import SKIP_BUNDLING

    app = cdk.App(context=dict(SKIP_BUNDLING))
    from stacks.deployment import resolve

    stack = RealtimeStack(app, "MonitorOff",
                          deployment=resolve(config(**{"deploy.realtime.monitor.enabled": "false"})))
    template = Template.from_stack(stack)
    # THEN the endpoint is there, and nothing of Model Monitor is
    template.resource_count_is("AWS::SageMaker::Endpoint", 1)
    for resource_type in ("AWS::SageMaker::MonitoringSchedule", "AWS::SageMaker::DataQualityJobDefinition",
                          "Custom::ModelMonitorBaseline", "AWS::CloudWatch::CompositeAlarm"):
        template.resource_count_is(resource_type, 0)
