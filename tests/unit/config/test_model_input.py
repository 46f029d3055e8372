"""The model is an input: one key deploys a packaged model, names derive from it, mismatches are refused."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from stacks.config import ConfigError, config_from_context
from stacks.deployment import deployment_from_context
from tests.conftest import build_app, cli_context
from tests.context import DEMO_CANDIDATE, WITH_CANDIDATE
from tests.unit.config.conftest import packaged_copy


def deployment(**overrides):
    return deployment_from_context({**cli_context(), **overrides})


def refusals(**overrides) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        deployment(**overrides)
    return caught.value.problems


def test_one_key_deploys_the_users_model_under_its_own_names(other_model):
    # GIVEN -c deploy.model.artifacts_dir=<a folder packaged with the name churn-scorer>
    found = deployment(**{"deploy.model.artifacts_dir": str(other_model)})
    # THEN every fixed name derives from the model's name in its metadata.json
    assert found.model_name == "churn-scorer"
    assert [found.stack_name(p) for p in ("Realtime", "Edge")] == ["ChurnScorer-Realtime", "ChurnScorer-Edge"]
    assert (found.endpoint_name, found.batch_job_prefix, found.component_name) == (
        "churn-scorer-realtime", "churn-scorer", "com.example.ChurnScorer")
    assert (found.edge_topics.input, found.edge_topics.output, found.edge_topics.error) == (
        "churn-scorer/requests", "churn-scorer/predictions", "churn-scorer/errors")
    assert found.metrics_namespace == "MLDeployPatterns/ChurnScorer"
    # AND the decision threshold is the model's own
    assert found.decision_threshold == 0.3


def test_the_users_model_reaches_all_four_stacks(other_model):
    # GIVEN only the artifacts key  WHEN the app is built
    _, stacks = build_app(overrides={"deploy.model.artifacts_dir": str(other_model)})
    # THEN four stacks named after the model, and no template mentions the demo model
    assert sorted(stack.stack_name for stack in stacks.values()) == [
        "ChurnScorer-Batch", "ChurnScorer-Edge", "ChurnScorer-Realtime", "ChurnScorer-Serverless"]
    for stack in stacks.values():
        text = json.dumps(Template.from_stack(stack).to_json())
        assert "fraud" not in text.lower(), stack.stack_name
    # AND the edge recipe and the drift job's quality check use the model's threshold, not a configured one
    edge = json.dumps(Template.from_stack(stacks["edge"]).to_json())
    # (the recipe is JSON inside the template's JSON: the key and value appear escaped, without spaces)
    assert '\\"scoreThreshold\\":\\"0.3\\"' in edge
    functions = Template.from_stack(stacks["realtime"]).find_resources(
        "AWS::Lambda::Function", {"Properties": {"Handler": "drift_handler.handler"}})
    thresholds = [json.loads(r["Properties"]["Environment"]["Variables"]["SETTINGS"])["decision_threshold"]
                  for r in functions.values()]
    assert thresholds == [0.3]


def test_the_name_in_configuration_overrides_the_metadata(other_model):
    found = deployment(**{"deploy.model.artifacts_dir": str(other_model), "deploy.model.name": "retention"})
    assert (found.stack_prefix, found.endpoint_name) == ("Retention", "retention-realtime")


def test_names_set_by_the_user_are_kept(other_model):
    found = deployment(**{"deploy.model.artifacts_dir": str(other_model), "deploy.realtime.endpoint_name": "scorer",
                          "deploy.edge.component_name": "com.acme.Scorer", "deploy.batch.job_name_prefix": "nightly",
                          "deploy.edge.topics.input": "acme/in"})
    assert (found.endpoint_name, found.component_name, found.batch_job_prefix, found.edge_topics.input) == (
        "scorer", "com.acme.Scorer", "nightly", "acme/in")


def test_one_model_by_default_and_the_candidate_is_one_key():
    # GIVEN the pinned context (candidate_dir null)  THEN only the main model's variant deploys
    single = deployment()
    assert single.candidate is None
    assert [v.name for v in single.config.realtime.active_variants(has_candidate=False)] == ["v1"]
    # WHEN the candidate is given  THEN v2 serves it
    both = deployment(**WITH_CANDIDATE)
    assert str(both.candidate.artifacts_dir) == DEMO_CANDIDATE
    assert [v.name for v in both.config.realtime.active_variants(has_candidate=True)] == ["v1", "v2"]


def test_a_candidate_trained_on_other_features_is_refused(tmp_path):
    other = packaged_copy(tmp_path / "narrow", feature_names=["a", "b", "c", "d", "e"], n_features=5)
    found = refusals(**{"deploy.model.candidate_dir": str(other)})
    assert len(found) == 1
    assert found[0].startswith("deploy.model.candidate_dir: the candidate was trained on 5 features ['a', 'b', 'c', "
                               "'d', 'e'] but the model on 12 ")
    assert "same features in the same order" in found[0]


def test_a_candidate_with_features_in_another_order_is_refused(tmp_path):
    from tests.conftest import ARTIFACTS_DIR

    names = json.loads((ARTIFACTS_DIR / "metadata.json").read_text())["feature_names"]
    other = packaged_copy(tmp_path / "reordered", feature_names=list(reversed(names)))
    assert any(p.startswith("deploy.model.candidate_dir:") for p in refusals(**{"deploy.model.candidate_dir": str(other)}))


@pytest.mark.parametrize("key", ["deploy.edge.score_threshold",
                                 "deploy.realtime.monitor.model_quality.probability_threshold"])
def test_a_threshold_in_configuration_is_refused_with_the_fix(key):
    # GIVEN a decision threshold set in configuration
    found = refusals(**{key: "0.4"})
    # THEN the one error says where the threshold lives and how to change it
    assert found == [f"{key}: no longer a setting; the decision threshold lives only in the model's metadata.json: "
                     "remove this key and repackage the model with `python -m training.package --threshold <value>`"]


def test_keys_of_the_old_shape_say_what_replaced_them():
    found = refusals(**{"deploy.realtime.variants.0.artifacts_dir": "artifacts/x", "deploy.batch.artifacts_dir": "a",
                        "deploy.edge.token_exchange_role_name": "Role"})
    assert sorted(p.split(":")[0] for p in found) == ["deploy.batch.artifacts_dir",
                                                      "deploy.edge.token_exchange_role_name",
                                                      "deploy.realtime.variants.0.artifacts_dir"]
    assert all("no longer a setting" in p for p in found)


def test_a_missing_model_folder_names_the_key(tmp_path):
    found = refusals(**{"deploy.model.artifacts_dir": str(tmp_path / "nowhere")})
    assert len(found) == 1 and found[0].startswith("deploy.model.artifacts_dir: ") and "metadata.json" in found[0]


def test_a_model_name_that_cannot_name_resources_asks_for_one(tmp_path):
    # GIVEN a metadata.json whose name could not name stacks and resources (training.package never writes one)
    odd = packaged_copy(tmp_path / "odd", model_name="my model!")
    found = refusals(**{"deploy.model.artifacts_dir": str(odd)})
    # THEN the model contract refuses the file, naming the field and the pattern it must match
    assert len(found) == 1 and found[0].startswith("deploy.model.artifacts_dir: ")
    assert "model_name: String should match pattern" in found[0]


def test_a_long_model_name_needs_a_job_name_prefix(tmp_path):
    long = packaged_copy(tmp_path / "long", model_name="transaction-fraud-scorer-v3")
    found = refusals(**{"deploy.model.artifacts_dir": str(long)})
    assert found == ["deploy.batch.job_name_prefix: 'transaction-fraud-scorer-v3' (from the model name) cannot "
                     "prefix transform job names (lower-case letters, digits and hyphens, max 23); set "
                     "deploy.batch.job_name_prefix"]


def test_the_candidate_cannot_be_the_model_itself():
    with pytest.raises(ConfigError, match="candidate_dir: is the same folder as artifacts_dir"):
        config_from_context({**cli_context(), "deploy.model.candidate_dir": "artifacts/fraud-detector/"})
