"""Fixtures for the serverless stack tests: the default template, and one app per variant of interest."""
from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from aws_cdk.assertions import Template

from stacks.config import AppConfig
from tests.conftest import build_app


def only_serverless(**overrides: Any) -> dict[str, Any]:
    """Context overrides that switch every other pattern off (faster synths) plus ``overrides``."""
    context: dict[str, Any] = {}
    defaults = AppConfig()
    for field in dataclasses.fields(AppConfig):
        if field.name != "serverless" and hasattr(getattr(defaults, field.name), "enabled"):
            context[f"deploy.{field.name}.enabled"] = False
    context.update({f"deploy.serverless.{key}": value for key, value in overrides.items()})
    return context


def serverless_template(**overrides: Any) -> Template:
    _, stacks = build_app(overrides=only_serverless(**overrides))
    return Template.from_stack(stacks["serverless"])


@pytest.fixture(scope="session")
def default_serverless(default_templates) -> Template:
    return default_templates["serverless"]
