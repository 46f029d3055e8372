"""Fixtures for the serverless stack tests: the default template, and one app per variant of interest."""
from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Template

from tests.context import only_pattern
from tests.conftest import build_app


def only_serverless(**overrides: Any) -> dict[str, Any]:
    """Context overrides that switch every other pattern off (faster synths) plus ``overrides``."""
    context: dict[str, Any] = only_pattern("serverless")
    context.update({f"deploy.serverless.{key}": value for key, value in overrides.items()})
    return context


def serverless_template(**overrides: Any) -> Template:
    _, stacks = build_app(overrides=only_serverless(**overrides))
    return Template.from_stack(stacks["serverless"])


@pytest.fixture(scope="session")
def default_serverless(default_templates) -> Template:
    return default_templates["serverless"]
