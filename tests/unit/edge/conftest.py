"""Fixtures for the edge stack: the default template, its rendered recipe, its cloud assembly and variants."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.cfn_text import render
from tests.conftest import build_app
from tests.context import only_pattern

COMPONENT_TYPE = "AWS::GreengrassV2::ComponentVersion"
STACK_NAME = "FraudDetector-Edge"


def edge_only(**overrides: Any) -> dict[str, Any]:
    """Context overrides that switch every other pattern off (faster synth) and apply ``deploy.edge.*`` keys."""
    context = only_pattern("edge")
    context.update({f"deploy.edge.{key}": value for key, value in overrides.items()})
    return context


def render_recipe(template: Template) -> dict:
    """The InlineRecipe JSON with each intrinsic replaced by its text (``${AWS::AccountId}`` stays literal)."""
    [resource] = template.find_resources(COMPONENT_TYPE).values()
    recipe = resource["Properties"]["InlineRecipe"]
    return json.loads(render(recipe))


@pytest.fixture(scope="session")
def edge_template(default_templates) -> Template:
    return default_templates["edge"]


@pytest.fixture(scope="session")
def edge_stack(default_app):
    return default_app[1]["edge"]


@pytest.fixture(scope="session")
def edge_recipe(edge_template) -> dict:
    return render_recipe(edge_template)


@pytest.fixture(scope="session")
def edge_assembly(default_app) -> Path:
    """The synthesized cloud assembly folder of the default app (manifest.json, *.assets.json, assets)."""
    app, _ = default_app
    return Path(app.synth().directory)


@pytest.fixture(scope="session")
def edge_assets(edge_assembly) -> dict[str, dict]:
    """The edge stack's file assets by display name (``Component/ProgramArtifact``...)."""
    manifest = json.loads((edge_assembly / f"{STACK_NAME}.assets.json").read_text())
    return {entry["displayName"]: entry for entry in manifest["files"].values()}


def synth_edge(tmp_path_factory, **overrides: Any):
    """An edge-only app with ``deploy.edge`` overrides: (stack, template)."""
    _, stacks = build_app(overrides=edge_only(**overrides), outdir=str(tmp_path_factory.mktemp("cdk-out-edge")))
    return stacks["edge"], Template.from_stack(stacks["edge"])
