"""The GreengrassComponent and ThingGroupDeployment constructs on their own, in a bare stack."""
from __future__ import annotations

import json
import shutil

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from ml_constructs.common.model_metadata import ModelArtifactsError
from ml_constructs.edge.component import (
    EdgeModel, GreengrassComponent, GreengrassComponentError, ThingGroupDeployment)
from ml_constructs.edge.recipe import ComponentSpec, Topics
from tests.conftest import ARTIFACTS_DIR, REPO_ROOT, SKIP_BUNDLING

SPEC = ComponentSpec(name="com.example.Detector", publisher="team",
                     topics=Topics(input="in/t", output="out/t", error="err/t"))
MODEL = EdgeModel(path=ARTIFACTS_DIR / "model.onnx", version="v1")


def component(tmp_path, *, program_dir=REPO_ROOT / "edge_component", spec=SPEC, model=MODEL):
    stack = cdk.Stack(cdk.App(context=SKIP_BUNDLING, outdir=str(tmp_path / "out")), "Bare")
    return GreengrassComponent(stack, "Component", spec=spec, model=model, program_dir=program_dir,
                               build_dir=tmp_path / "build")


def test_program_change_gets_a_new_version(tmp_path):
    # GIVEN a copy of the program folder, and the same copy with one edited module
    original = tmp_path / "program"
    shutil.copytree(REPO_ROOT / "edge_component", original, ignore=shutil.ignore_patterns("__pycache__"))
    before = component(tmp_path / "a", program_dir=original)
    (original / "predictor.py").write_text((original / "predictor.py").read_text() + "\n# edited\n")
    after = component(tmp_path / "b", program_dir=original)
    # THEN the program artifact and the component version both change
    assert after.program_asset.asset_hash != before.program_asset.asset_hash
    assert after.version != before.version


def test_rebuild_is_byte_identical(tmp_path):
    # GIVEN the same inputs built twice into different build folders
    first, second = component(tmp_path / "a"), component(tmp_path / "b")
    # THEN the zip asset hash and the version are identical (an unchanged stack redeploys nothing)
    assert first.program_asset.asset_hash == second.program_asset.asset_hash
    assert first.version == second.version
    assert first.program_members == tuple(sorted(first.program_members))


def test_recipe_is_valid_json_in_the_template(tmp_path):
    built = component(tmp_path)
    template = Template.from_stack(cdk.Stack.of(built)).to_json()
    [resource] = [r for r in template["Resources"].values() if r["Type"] == "AWS::GreengrassV2::ComponentVersion"]
    separator, parts = resource["Properties"]["InlineRecipe"]["Fn::Join"]
    # THEN once the S3 URI tokens are filled in, the InlineRecipe is the recipe the construct built
    text = separator.join(p if isinstance(p, str) else p["Fn::Sub"] for p in parts)
    assert json.loads(text)["ComponentVersion"] == built.version


def test_problems_are_collected_into_one_error(tmp_path):
    # GIVEN a bad name, topics that collide, a program folder without main.py and a missing model
    empty = tmp_path / "empty"
    empty.mkdir()
    spec = ComponentSpec(name="aws.greengrass.Nope", publisher="team",
                         topics=Topics(input="t", output="t", error="e"))
    # WHEN the component is built  THEN one error lists all of them
    with pytest.raises(GreengrassComponentError) as caught:
        component(tmp_path, program_dir=empty, spec=spec,
                  model=EdgeModel(path=tmp_path / "none.onnx", version="v 1"))
    text = str(caught.value)
    for fragment in ("reserved", "three different topics", "main.py not found", "requirements.txt not found",
                     "none.onnx not found", "version 'v 1'"):
        assert fragment in text


def test_model_with_other_onnx_names_is_refused(tmp_path):
    # GIVEN training artifacts whose metadata records an ONNX input named differently
    folder = tmp_path / "artifacts"
    shutil.copytree(ARTIFACTS_DIR, folder)
    metadata = json.loads((folder / "metadata.json").read_text())
    metadata["onnx"]["input_name"] = "float_input"
    (folder / "metadata.json").write_text(json.dumps(metadata))
    # THEN synth stops with a message naming the expected input
    with pytest.raises(ModelArtifactsError, match="needs 'features'"):
        EdgeModel.from_artifacts(folder)


def test_deployment_checks_its_inputs(tmp_path):
    built = component(tmp_path)
    # WHEN the target is not a thing group and an extra component has a bad version
    with pytest.raises(GreengrassComponentError) as caught:
        ThingGroupDeployment(cdk.Stack.of(built), "Deployment", component=built,
                             thing_group_arn="arn:aws:iot:eu-west-1:123456789012:thing/one-device",
                             additional_components={"aws.greengrass.Cli": "latest",
                                                    "com.example.Detector": "1.0.0"})
    # THEN all three problems are reported together
    assert len(caught.value.problems) == 3
