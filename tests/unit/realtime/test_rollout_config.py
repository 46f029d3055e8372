"""Guardrail and ownership configuration: SageMaker's documented rules fail synth with the key and what is allowed."""
from __future__ import annotations

import pytest

from stacks.config import ConfigError, config_from_context
from tests.conftest import cli_context
from tests.context import WITH_CANDIDATE


def parse(**overrides):
    """The suite's config plus ``deploy.realtime.<key>`` overrides: with the candidate model (a canary on v2),
    unless the test gives its own variants (then all serve the one model)."""
    candidate = {} if "variants" in overrides else WITH_CANDIDATE
    return config_from_context({**cli_context(), **candidate, **{f"deploy.realtime.{key}": value
                                                                 for key, value in overrides.items()}})


def problems(**overrides) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(**overrides)
    return caught.value.problems


def single(problems_found: list[str], prefix: str) -> str:
    matching = [problem for problem in problems_found if problem.startswith(prefix)]
    assert len(matching) == 1, problems_found
    return matching[0]


def test_demo_defaults_are_two_weighted_variants_under_a_canary():
    # GIVEN the suite's context with the candidate  WHEN parsed
    realtime = parse().realtime
    # THEN v1 (the model) takes 90% and v2 (the candidate) 10%, each on two ml.m5.large
    assert [(v.name, v.model, v.initial_weight, v.initial_instance_count, v.instance_type)
            for v in realtime.active_variants(has_candidate=True)] == [("v1", "main", 0.9, 2, "ml.m5.large"),
                                                                       ("v2", "candidate", 0.1, 2, "ml.m5.large")]
    # AND a one-instance canary with auto-rollback guards every update; operators own weights and counts
    guardrails = realtime.guardrails
    assert (guardrails.enabled, guardrails.strategy, guardrails.size_unit, guardrails.size,
            guardrails.auto_rollback) == (True, "CANARY", "INSTANCE_COUNT", 1, True)
    assert (realtime.weights_owner, realtime.instance_counts_owner) == ("operator", "operator")
    assert realtime.autoscaling.min_capacity == 2


def test_canary_above_half_the_smallest_fleet_is_refused():
    found = problems(**{"guardrails.size": 2})
    message = single(found, "deploy.realtime.guardrails.size: CANARY size 2 instance(s) is more than 50% of "
                            "variant v1's smallest fleet (2 instances)")
    assert "SageMaker requires CanarySize to be <= 50% of the variant's instance count: use at most 1" in message


def test_canary_on_a_variant_that_autoscaling_may_shrink_to_one_instance_is_refused():
    # GIVEN operator-owned counts: an update starts from whatever autoscaling left, possibly 1 instance
    found = problems(**{"autoscaling.min_capacity": 1})
    message = single(found, "deploy.realtime.guardrails.size: variant v1 can run on a single instance")
    assert "every variant needs at least 2 instances at all times" in message
    assert "or use strategy ALL_AT_ONCE" in message


def test_config_owned_counts_size_the_new_fleet_from_the_initial_count():
    # GIVEN counts reset to initial_instance_count (2) on every update, autoscaling may still go down to 1
    config = parse(**{"autoscaling.min_capacity": 1, "instance_counts_owner": "config"})
    # THEN a one-instance canary is valid
    assert config.realtime.guardrails.size == 1


def test_all_at_once_allows_single_instance_variants():
    variants = [{"name": "v1", "initial_instance_count": 1, "initial_weight": 1.0}]
    config = parse(variants=variants, **{"autoscaling.min_capacity": 1, "guardrails.strategy": "ALL_AT_ONCE"})
    assert config.realtime.guardrails.strategy == "ALL_AT_ONCE"


@pytest.mark.parametrize("overrides, expected", [
    ({"guardrails.strategy": "LINEAR", "guardrails.size_unit": "CAPACITY_PERCENT", "guardrails.size": 5},
     "deploy.realtime.guardrails.size: LINEAR size 5% is outside 10..50%; SageMaker requires LinearStepSize to "
     "be 10%-50% of the variant's instance count"),
    ({"guardrails.strategy": "LINEAR", "autoscaling.max_capacity": 20},
     "deploy.realtime.guardrails.size: LINEAR size 1 instance(s) is less than 10% of variant v1's largest fleet "
     "(20 instances); SageMaker requires LinearStepSize to be 10%-50% of the variant's instance count: use at "
     "least 2"),
    ({"guardrails.strategy": "ROLLING"},
     "deploy.realtime.guardrails.strategy: ROLLING deployments are not supported for multi-variant endpoints "
     "(2 variants: v1, v2)"),
    ({"guardrails.rollback_batch_size": 1},
     "deploy.realtime.guardrails.rollback_batch_size: only applies to strategy ROLLING (strategy is CANARY)"),
    ({"guardrails.wait_interval_s": 3600, "guardrails.termination_wait_s": 3600},
     "deploy.realtime.guardrails.maximum_execution_timeout_s: 3600 s must be larger than the update's total "
     "waiting time (1 x wait_interval_s 3600 + termination_wait_s 3600 = 7200 s)"),
    ({"guardrails.wait_interval_s": 4000},
     "deploy.realtime.guardrails.wait_interval_s: must be between 0 and 3600, got 4000"),
    ({"guardrails.termination_wait_s": -1},
     "deploy.realtime.guardrails.termination_wait_s: must be between 0 and 3600, got -1"),
    ({"guardrails.maximum_execution_timeout_s": 500},
     "deploy.realtime.guardrails.maximum_execution_timeout_s: must be between 600 and 28800, got 500"),
    ({"guardrails.strategy": "BLUE_GREEN"},
     "deploy.realtime.guardrails.strategy: must be one of 'ALL_AT_ONCE', 'CANARY', 'LINEAR', 'ROLLING', got "
     "'BLUE_GREEN'"),
    ({"weights_owner": "pager"},
     "deploy.realtime.weights_owner: must be one of 'operator', 'config', got 'pager'"),
])
def test_each_documented_rule_names_its_key_and_what_is_allowed(overrides, expected):
    assert any(problem.startswith(expected) for problem in problems(**overrides)), problems(**overrides)


def test_linear_waits_count_every_step():
    # GIVEN 10% steps: up to 10 bakes of 300 s plus a 300 s final bake = 3300 s
    found = problems(**{"guardrails.strategy": "LINEAR", "guardrails.size_unit": "CAPACITY_PERCENT",
                        "guardrails.size": 10, "guardrails.wait_interval_s": 300,
                        "guardrails.maximum_execution_timeout_s": 3000})
    single(found, "deploy.realtime.guardrails.maximum_execution_timeout_s: 3000 s must be larger than the update's "
                  "total waiting time (10 x wait_interval_s 300 + termination_wait_s 300 = 3300 s)")


def test_inf1_endpoints_cannot_use_guardrails():
    variants = [{"name": "v1", "instance_type": "ml.inf1.xlarge", "initial_instance_count": 2}]
    found = problems(variants=variants)
    assert any("variant v1 runs on ml.inf1.xlarge: SageMaker does not apply deployment guardrails to Inf1" in problem
               for problem in found)


def test_more_than_ten_rollback_alarms_are_refused():
    variants = [{"name": f"v{index}", "initial_instance_count": 2, "initial_weight": 1.0} for index in range(6)]
    message = single(problems(variants=variants), "deploy.realtime.guardrails.auto_rollback:")
    assert "6 variants make 12 rollback alarms" in message and "at most 10" in message
    # AND without auto-rollback the same variants are fine
    assert len(parse(variants=variants, **{"guardrails.auto_rollback": False}).realtime.variants) == 6


def test_rolling_on_a_single_variant_is_accepted():
    variants = [{"name": "v1", "initial_instance_count": 4}]
    config = parse(variants=variants, **{"guardrails.strategy": "ROLLING", "guardrails.rollback_batch_size": 2,
                                         "autoscaling.min_capacity": 4, "autoscaling.max_capacity": 4})
    assert config.realtime.guardrails.rollback_batch_size == 2


def test_rolling_counts_one_bake_per_batch():
    # GIVEN one-instance batches over up to 10 instances: 10 bakes of 600 s
    variants = [{"name": "v1", "initial_instance_count": 4}]
    found = problems(variants=variants, **{"guardrails.strategy": "ROLLING", "autoscaling.min_capacity": 4})
    single(found, "deploy.realtime.guardrails.maximum_execution_timeout_s: 3600 s must be larger than the update's "
                  "total waiting time (10 x wait_interval_s 600 = 6000 s)")


def test_every_problem_is_reported_at_once():
    # GIVEN two broken guardrail rules (a valid real-time section) and two mistakes in other sections
    found = config_problems(**{"deploy.realtime.guardrails.size": 2, "deploy.realtime.guardrails.rollback_batch_size": 1,
                               "deploy.batch.transform.instance_count": "many", "deploy.alerts.email": "nobody"})
    # THEN all four are reported together (the canary size once per variant it does not fit)
    assert sorted({problem.split(":")[0] for problem in found}) == [
        "deploy.alerts.email", "deploy.batch.transform.instance_count",
        "deploy.realtime.guardrails.rollback_batch_size", "deploy.realtime.guardrails.size"], found
    assert sum("guardrails.size" in problem for problem in found) == 2


def test_a_bad_value_in_the_section_suppresses_the_rules_that_would_read_it():
    # GIVEN an invalid owner (the guardrail rules depend on who owns instance counts) and an oversized canary
    found = problems(**{"guardrails.size": 2, "weights_owner": "nobody"})
    # THEN only the invalid value is reported: the rules cannot be judged without it
    assert found == ["deploy.realtime.weights_owner: must be one of 'operator', 'config', got 'nobody'"]


def config_problems(**context_overrides) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        config_from_context({**cli_context(), **WITH_CANDIDATE, **context_overrides})
    return caught.value.problems


def test_disabled_guardrails_skip_the_rules():
    config = parse(**{"guardrails.enabled": False, "guardrails.size": 2, "autoscaling.min_capacity": 1})
    assert config.realtime.guardrails.enabled is False
