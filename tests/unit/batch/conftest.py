"""Fixtures for the batch stack: its template from the session's default app, and its state machine."""
from __future__ import annotations

import json

import pytest
from aws_cdk.assertions import Template

from tests.cfn_text import render
from tests.conftest import build_app
from tests.context import only_pattern


def only_batch(**overrides) -> dict:
    """Context overrides that build the batch stack alone (every other pattern switched off)."""
    context = only_pattern("batch")
    context.update({f"deploy.batch.{key}": value for key, value in overrides.items()})
    return context


def resources(template_json: dict, resource_type: str) -> dict[str, dict]:
    return {logical_id: resource for logical_id, resource in template_json["Resources"].items()
            if resource["Type"] == resource_type}


def one(template_json: dict, resource_type: str) -> tuple[str, dict]:
    found = resources(template_json, resource_type)
    assert len(found) == 1, f"expected one {resource_type}, found {sorted(found)}"
    return next(iter(found.items()))


def placeholder_render(value) -> str:
    """Render a CloudFormation string expression with ${Logical.Attr} placeholders for its tokens."""
    return render(value, find_in_map=lambda parts: "${FindInMap:" + ":".join(parts) + "}")


def definition_of(template_json: dict) -> dict:
    _, machine = one(template_json, "AWS::StepFunctions::StateMachine")
    return json.loads(placeholder_render(machine["Properties"]["DefinitionString"]))


@pytest.fixture(scope="session")
def batch_template(default_templates) -> Template:
    return default_templates["batch"]


@pytest.fixture(scope="session")
def batch_json(batch_template) -> dict:
    return batch_template.to_json()


@pytest.fixture(scope="session")
def definition(batch_json) -> dict:
    """The state machine definition (ASL) with ${LogicalId} / ${LogicalId.Attr} placeholders for tokens."""
    return definition_of(batch_json)


@pytest.fixture(scope="session")
def build_batch_only():
    """Synthesize the batch stack alone with extra ``deploy.batch.*`` overrides; returns its template JSON."""
    def build(**overrides) -> dict:
        _, stacks = build_app(overrides=only_batch(**overrides))
        return Template.from_stack(stacks["batch"]).to_json()
    return build
