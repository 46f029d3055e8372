"""Configuration: defaults parse, overrides work, and every mistake is reported at once with its key path."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stacks.config import AppConfig, ConfigError, config_from_context
from tests.conftest import REPO_ROOT, cli_context


def problems_of(**overrides) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from_context({**cli_context(), **overrides})
    return caught.value.problems


def test_pinned_context_parses_to_the_demo_defaults():
    # GIVEN the suite's context  WHEN parsed  THEN the defaults declared on the models come out
    config = config_from_context(cli_context())
    assert config.model.framework_version == "1.2-1"
    assert config.realtime.alarms.latency_p99_ms == 500
    assert config.realtime.autoscaling.max_capacity == 10
    # AND an empty context gives the same configuration: each default lives in one place, the models
    assert config_from_context({}).realtime.autoscaling == config.realtime.autoscaling


def test_models_are_frozen():
    config = config_from_context(cli_context())
    with pytest.raises(Exception, match="frozen"):
        config.realtime.autoscaling.max_capacity = 3  # type: ignore[misc]


def test_dotted_override_reads_json_values():
    # GIVEN -c deploy.realtime.autoscaling.max_capacity=4 (the CLI passes strings)
    context = {**cli_context(), "deploy.realtime.autoscaling.max_capacity": "4",
               "deploy.realtime.data_capture.enabled": "false", "deploy.realtime.monitor.enabled": "false"}
    # WHEN parsed
    config = config_from_context(context)
    # THEN the value is an int and the bool is a bool
    assert config.realtime.autoscaling.max_capacity == 4
    assert config.realtime.data_capture.enabled is False


def test_text_keys_keep_their_text():
    # GIVEN an account id with a leading zero and a version that JSON would read as 1.1
    config = config_from_context({**cli_context(), "deploy.target.account": "012345678901",
                                  "deploy.edge.version": "1.10", "deploy.alerts.email": "null"})
    # THEN both stay text as typed, and null clears a key
    assert (config.target.account, config.edge.version, config.alerts.email) == ("012345678901", "1.10", None)


def test_list_items_are_overridable_by_index():
    # GIVEN -c deploy.realtime.variants.0.initial_weight=0.2
    config = config_from_context({**cli_context(), "deploy.realtime.variants.0.initial_weight": "0.2"})
    # THEN only that item's key changes
    assert [(v.name, v.initial_weight) for v in config.realtime.variants] == [("v1", 0.2), ("v2", 0.1)]
    # AND an index past the end is refused with the list's length
    assert problems_of(**{"deploy.realtime.variants.5.initial_weight": "0.2"}) == [
        "deploy.realtime.variants.5.initial_weight: realtime.variants is a list of 2 item(s); use an index from 0 "
        "to 1"]


def test_list_items_are_overridable_when_the_list_is_a_code_default():
    # GIVEN a context without variants (the models' default list applies)
    config = config_from_context({"deploy.realtime.variants.1.instance_type": "ml.c5.large"})
    # THEN the default list is edited, not replaced by a one-item list
    assert [(v.name, v.instance_type) for v in config.realtime.variants] == [("v1", "ml.m5.large"),
                                                                             ("v2", "ml.c5.large")]


def test_monitor_without_data_capture_names_both_keys():
    # GIVEN data capture switched off while Model Monitor stays on
    found = problems_of(**{"deploy.realtime.data_capture.enabled": "false"})
    # THEN the error names both keys
    assert len(found) == 1 and "deploy.realtime.data_capture.enabled" in found[0]
    assert "deploy.realtime.monitor.enabled" in found[0]


def test_every_problem_is_reported_once_with_its_path():
    # GIVEN several independent mistakes in different sections
    found = problems_of(**{"deploy.model.framework_version": "0.9",
                           "deploy.batch.transform.instance_count": "0",
                           "deploy.serverless.api.auth": "token",
                           "deploy.realtime.alarms.latency_p99_ms": "fast",
                           "deploy.realtime.typo_key": "1"})
    # THEN each is named with its dotted path and what is allowed, once
    assert set(found) == {
        "deploy.model.framework_version: '0.9' is not supported; allowed values are 1.2-1, 1.4-2",
        "deploy.batch.transform.instance_count: must be between 1 and 100, got 0",
        "deploy.serverless.api.auth: must be one of 'iam', 'api_key', got 'token'",
        "deploy.realtime.alarms.latency_p99_ms: must be a number, got 'fast'",
        "deploy.realtime.typo_key: unknown key; allowed keys are alarms, async, autoscaling, data_capture, enabled, "
        "endpoint_name, guardrails, instance_counts_owner, mode, monitor, rollout, serverless, shadow, variants, "
        "weights_owner"}
    assert len(found) == 5


def test_cross_field_checks_report_with_other_sections_errors():
    # GIVEN a cross-field mistake in one section and a type mistake in another
    found = problems_of(**{"deploy.realtime.autoscaling.min_capacity": "5",
                           "deploy.realtime.autoscaling.max_capacity": "2",
                           "deploy.batch.transform.instance_type": 7})
    # THEN both are reported
    assert "deploy.realtime.autoscaling.min_capacity: 5 must not exceed max_capacity (2)" in found
    assert "deploy.batch.transform.instance_type: must be a string, got 7" in found


def test_a_bad_value_causes_no_follow_on_errors():
    # GIVEN max_capacity=four (the old engine also printed two guardrail errors computed from a stand-in value)
    found = problems_of(**{"deploy.realtime.autoscaling.max_capacity": "four"})
    # THEN only the bad value is reported
    assert found == ["deploy.realtime.autoscaling.max_capacity: must be an integer, got 'four'"]


@pytest.mark.parametrize("key, typo, suggestion", [
    ("deploy.realtime.autoscling.max_capacity", "deploy.realtime.autoscling", "autoscaling"),
    ("deploy.serverless.memory", "deploy.serverless.memory", "memory_mb"),
    ("deploy.edge.topics.inputs", "deploy.edge.topics.inputs", "input"),
])
def test_unknown_keys_suggest_the_closest_known_one(key, typo, suggestion):
    found = problems_of(**{key: "4"})
    assert len(found) == 1 and found[0].startswith(f"{typo}: unknown key; did you mean {suggestion!r}? "), found


def test_burstable_instance_with_autoscaling_is_refused():
    # GIVEN a burstable instance type while autoscaling is on
    found = problems_of(**{"deploy.realtime.variants": '[{"name": "v1", "instance_type": "ml.t2.medium",'
                                                       ' "initial_instance_count": 2}]'})
    # THEN the error says why and what to do
    assert any("variants.0.instance_type: ml.t2.medium is burstable and cannot autoscale" in p for p in found)


@pytest.mark.parametrize("key, expected", [
    ("deploy.realtime.autoscaling.max_capacity", "must be an integer, got True"),
    ("deploy.realtime.alarms.latency_p99_ms", "must be a number, got True"),
    ("deploy.serverless.reserved_concurrency", "must be an integer, got True"),
])
def test_true_is_not_a_number(key, expected):
    assert problems_of(**{key: "true"}) == [f"{key}: {expected}"]


def test_out_of_range_values_name_the_range():
    found = problems_of(**{"deploy.realtime.data_capture.sampling_percent": "150"})
    assert found == ["deploy.realtime.data_capture.sampling_percent: must be between 1 and 100, got 150"]


def test_wrong_type_in_a_list_of_objects_points_at_the_item():
    found = problems_of(**{"deploy.realtime.variants": '[{"name": "v1", "initial_instance_count": "two"}]'})
    assert found == ["deploy.realtime.variants.0.initial_instance_count: must be an integer, got 'two'"]


def test_a_section_that_is_not_an_object_lists_its_keys():
    found = problems_of(**{"deploy.alerts": "[1]"})
    assert found == ["deploy.alerts: must be an object with keys email, got [1]"]


def test_models_declare_every_key_once():
    # GIVEN the models  WHEN dumped with defaults  THEN parsing the dump gives the same configuration back
    dumped = AppConfig().model_dump(by_alias=True, mode="json")
    assert config_from_context({"deploy": dumped}) == AppConfig()


def run_app(context: dict, tmp_path) -> subprocess.CompletedProcess:
    env = {**os.environ, "CDK_CONTEXT_JSON": json.dumps(context), "CDK_OUTDIR": str(tmp_path)}
    return subprocess.run([sys.executable, "app.py"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
                          timeout=180)


def test_app_exits_with_the_message_not_a_stack_trace(tmp_path):
    # GIVEN the real app entry point and bad overrides, run as the CDK CLI runs it
    result = run_app({**cli_context(), "deploy.alerts.email": "not-an-email", "env": "qa",
                      "deploy.realtime.autoscaling.max_capacity": "four"}, tmp_path)
    # THEN it fails with every key path (and the known environments), and no Python traceback
    assert result.returncode == 2
    assert "env: unknown environment 'qa'; known environments (under deploy.environments): production, " \
           "staging" in result.stderr
    assert "deploy.alerts.email: 'not-an-email' does not match an email address" in result.stderr
    assert "deploy.realtime.autoscaling.max_capacity: must be an integer, got 'four'" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_configuration_reference_is_current():
    # GIVEN docs/configuration.md  THEN it is what the models generate (regenerate with the command in it)
    from stacks.config.reference import reference

    assert (REPO_ROOT / "docs" / "configuration.md").read_text() == reference(), (
        "run: .venv/bin/python -m stacks.config.reference > docs/configuration.md")
