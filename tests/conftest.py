"""Shared fixtures: the app is synthesized once per session, with the context the CLI would pass."""
from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
# Tests never talk to AWS: make any accidental client fail fast instead of finding real credentials.
for _name in ("AWS_PROFILE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"

import aws_cdk as cdk  # noqa: E402
from aws_cdk.assertions import Template  # noqa: E402

from tests.context import pinned_context  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS_DIR = REPO_ROOT / "artifacts" / "fraud-detector"
#: Unit tests skip Lambda bundling (pip-installing onnxruntime takes ~20 s); tests/compliance and
#: tests/unit/serverless bundle for real.
SKIP_BUNDLING = {"aws:cdk:bundling-stacks": []}


@functools.lru_cache(maxsize=None)
def shared_botocore_session() -> Any:
    """One botocore session for the whole run.

    A new session loads the endpoint rules and every service model it is asked for again (1.5-3.4 s per
    test in tests/unit/rollout); clients created from this one share those, and each test still gets its
    own clients (and so its own Stubber)."""
    import botocore.session

    return botocore.session.get_session()


def cli_context() -> dict[str, Any]:
    """The context the suite synthesizes with, as `cdk synth` would pass it: pinned in tests/context.py, not
    read from cdk.json, so a user's own cdk.json (their model, their choices) keeps the suite green."""
    return pinned_context()


def build_app(*, overrides: dict[str, Any] | None = None, bundle: bool = False, outdir: str | None = None,
              nag: bool = False) -> tuple[cdk.App, dict[str, cdk.Stack]]:
    """A fresh app with every enabled stack, built from the pinned context plus ``-c``-style overrides."""
    from stacks.app_builder import build_stacks
    from stacks.deployment import deployment_from_context

    context = {**cli_context(), **(overrides or {})}
    if not bundle:
        context.update(SKIP_BUNDLING)
    app = cdk.App(context=context, outdir=outdir)
    stacks = build_stacks(app, deployment_from_context(app.node.get_all_context()), context=app.node.get_all_context())
    if nag:
        from cdk_nag import AwsSolutionsChecks

        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stacks


@pytest.fixture(scope="session", autouse=True)
def model_artifacts() -> Path:
    if not (ARTIFACTS_DIR / "metadata.json").is_file():
        pytest.exit("artifacts/fraud-detector is missing: run `make model` (make test does it for you)", returncode=2)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def default_app(tmp_path_factory) -> tuple[cdk.App, dict[str, cdk.Stack]]:
    """The default configuration, synthesized once (no bundling)."""
    return build_app(outdir=str(tmp_path_factory.mktemp("cdk-out-default")))


@pytest.fixture(scope="session")
def default_templates(default_app) -> dict[str, Template]:
    """Templates of the default app by pattern name (``realtime``, ``batch``...)."""
    _, stacks = default_app
    return {pattern: Template.from_stack(stack) for pattern, stack in stacks.items()}


@pytest.fixture(scope="session")
def realtime_template(default_templates) -> Template:
    return default_templates["realtime"]
