"""Keys for constructs in progress: defaults, ranges and the combinations refused in one line each."""
from __future__ import annotations

import pytest

from stacks.config import ConfigError, config_from_context
from tests.conftest import cli_context
from tests.context import WITH_CANDIDATE

#: A serverless endpoint without the features it lacks: the base for serverless refusals.
SERVERLESS = {"deploy.realtime.mode": "serverless", "deploy.realtime.data_capture.enabled": "false",
              "deploy.realtime.monitor.enabled": "false"}


def config(**overrides):
    return config_from_context({**cli_context(), **overrides})


def refusals(**overrides) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config(**overrides)
    return caught.value.problems


def test_defaults():
    found = config()
    realtime = found.realtime
    assert (realtime.mode, realtime.rollout, realtime.shadow.sampling_percent) == ("instances", "canary", 50)
    assert (realtime.serverless.memory_mb, realtime.serverless.max_concurrency,
            realtime.serverless.provisioned_concurrency) == (2048, 20, 0)
    assert (realtime.async_.max_concurrent_invocations_per_instance, realtime.async_.min_capacity,
            realtime.async_.max_capacity, realtime.async_.backlog_per_instance_target) == (4, 0, 4, 5)
    assert (found.serverless.warm, found.serverless.provisioned_concurrency) == ("none", 0)
    assert found.serverless.upload_trigger.reserved_concurrency == 10
    assert found.monitoring.engine == "builtin"
    assert found.monitoring.builtin.model_dump() == {
        "schedule": "rate(1 hour)", "psi_threshold": 0.2, "ks_threshold": 0.2, "prediction_psi_threshold": 0.2,
        "invalid_rate_threshold": 0.05, "min_auc": 0.75, "serverless_sample_percent": 10}
    assert found.storage.model_dump() == {"capture_expiry_days": 90, "noncurrent_version_expiry_days": 30,
                                          "abort_incomplete_upload_days": 7}
    assert (found.edge.token_exchange_role.create, found.edge.token_exchange_role.name) == (True, None)


def test_a_serverless_endpoint_without_capture_or_monitor_parses():
    assert config(**SERVERLESS, **{"deploy.realtime.serverless.memory_mb": "4096"}).realtime.serverless.memory_mb == 4096


@pytest.mark.parametrize("overrides, expected", [
    ({"deploy.realtime.serverless.memory_mb": "1500"},
     "deploy.realtime.serverless.memory_mb: must be 1024 to 6144 in steps of 1024, got 1500"),
    ({"deploy.realtime.serverless.memory_mb": "8192"},
     "deploy.realtime.serverless.memory_mb: must be between 1024 and 6144, got 8192"),
    ({"deploy.realtime.serverless.max_concurrency": "201"},
     "deploy.realtime.serverless.max_concurrency: must be between 1 and 200, got 201"),
    ({"deploy.realtime.serverless.provisioned_concurrency": "30"},
     "deploy.realtime.serverless.provisioned_concurrency: 30 exceeds max_concurrency (20)"),
    ({"deploy.realtime.async.max_concurrent_invocations_per_instance": "0"},
     "deploy.realtime.async.max_concurrent_invocations_per_instance: must be between 1 and 1000, got 0"),
    ({"deploy.realtime.async.min_capacity": "5"},
     "deploy.realtime.async.min_capacity: 5 must not exceed max_capacity (4)"),
    ({"deploy.realtime.shadow.sampling_percent": "0"},
     "deploy.realtime.shadow.sampling_percent: must be between 1 and 100, got 0"),
    ({"deploy.realtime.mode": "lambda"},
     "deploy.realtime.mode: must be one of 'instances', 'serverless', 'async', got 'lambda'"),
    ({"deploy.monitoring.engine": "both"},
     "deploy.monitoring.engine: must be one of 'builtin', 'model-monitor', got 'both'"),
    ({"deploy.monitoring.builtin.invalid_rate_threshold": "2"},
     "deploy.monitoring.builtin.invalid_rate_threshold: must be between 0.0 and 1.0, got 2"),
    ({"deploy.storage.capture_expiry_days": "0"},
     "deploy.storage.capture_expiry_days: must be between 1 and 3650, got 0"),
    ({"deploy.serverless.upload_trigger.reserved_concurrency": "0"},
     "deploy.serverless.upload_trigger.reserved_concurrency: must be between 1 and 1000, got 0"),
    ({"deploy.edge.token_exchange_role.name": "bad name"},
     "deploy.edge.token_exchange_role.name: 'bad name' does not match an IAM role name"),
])
def test_ranges_and_choices(overrides, expected):
    assert refusals(**overrides) == [expected]


@pytest.mark.parametrize("overrides, expected", [
    ({**SERVERLESS, "deploy.realtime.rollout": "shadow", **WITH_CANDIDATE},
     "deploy.realtime.rollout: shadow variants are not supported by serverless endpoints"),
    ({"deploy.realtime.mode": "serverless", "deploy.realtime.data_capture.enabled": "true"},
     "deploy.realtime.data_capture.enabled: serverless endpoints do not support data capture"),
    ({"deploy.realtime.mode": "serverless", "deploy.realtime.monitor.enabled": "true"},
     "deploy.realtime.monitor.enabled: Model Monitor needs data capture, which serverless endpoints lack"),
    ({**SERVERLESS, **WITH_CANDIDATE},
     "deploy.model.candidate_dir: a serverless endpoint here serves one model"),
    ({"deploy.realtime.mode": "async", "deploy.realtime.rollout": "shadow", **WITH_CANDIDATE},
     "deploy.realtime.rollout: shadow variants are not supported by asynchronous endpoints"),
    ({"deploy.realtime.rollout": "shadow"},
     "deploy.realtime.rollout: shadow needs a candidate model to shadow; set deploy.model.candidate_dir"),
    ({"deploy.serverless.warm": "snapstart", "deploy.serverless.provisioned_concurrency": "2"},
     "deploy.serverless.warm: snapstart cannot be combined with provisioned_concurrency (2)"),
    ({"deploy.serverless.warm": "provisioned"},
     "deploy.serverless.warm: provisioned needs provisioned_concurrency of at least 1"),
    ({**WITH_CANDIDATE, "deploy.realtime.variants": '[{"name": "v1"}]'},
     "deploy.realtime.variants: deploy.model.candidate_dir is set but no variant serves it"),
])
def test_each_refused_combination_is_one_line(overrides, expected):
    found = refusals(**overrides)
    assert len(found) == 1 and found[0].startswith(expected), found


def test_shadow_with_a_candidate_on_instances_parses():
    realtime = config(**WITH_CANDIDATE, **{"deploy.realtime.rollout": "shadow",
                                           "deploy.realtime.shadow.sampling_percent": "20"}).realtime
    assert (realtime.rollout, realtime.shadow.sampling_percent) == ("shadow", 20)


def test_the_monitoring_engine_and_warm_start_parse():
    found = config(**{"deploy.monitoring.engine": "model-monitor", "deploy.serverless.warm": "snapstart",
                      "deploy.edge.token_exchange_role.create": "false",
                      "deploy.edge.token_exchange_role.name": "MyDevicesRole"})
    assert (found.monitoring.engine, found.serverless.warm) == ("model-monitor", "snapstart")
    assert found.edge.token_exchange_role.name == "MyDevicesRole"


def test_serverless_mode_alone_turns_capture_and_model_monitor_off_instead_of_refusing():
    # GIVEN only -c deploy.realtime.mode=serverless (capture and Model Monitor left at their defaults)
    config = config_from_context({**cli_context(), "deploy.realtime.mode": "serverless"})
    # THEN it is accepted, and neither capture nor Model Monitor is deployed
    assert (config.realtime.capture_enabled, config.realtime.model_monitor_enabled) == (False, False)
