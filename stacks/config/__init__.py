"""The app's configuration: one context key in cdk.json, overridable key by key with ``-c``.

``cdk.json`` holds the user's choices under the ``deploy`` context key; every other key takes the default
declared on its pydantic field. Any leaf can be overridden on the command line with its dotted path, list
items by index: ``npx cdk synth -c deploy.realtime.variants.0.initial_weight=0.2``. Values are read as JSON
when they parse (numbers, true/false, null, lists), otherwise as text. ``-c env=<name>`` first applies the
overrides under ``deploy.environments.<name>``.
"""
from __future__ import annotations

from typing import Any, Mapping

from pydantic import Field

from stacks.config.base import ConfigModel
from stacks.config.batch import BatchConfig
from stacks.config.cicd import GithubOidcConfig, PipelineConfig
from stacks.config.common import AlertsConfig, DeployTarget, ModelConfig, StorageConfig
from stacks.config.edge import EdgeConfig
from stacks.config.loading import CONTEXT_KEY, ENV_CONTEXT_KEY, ENV_NAME_PATTERN, ConfigError, assemble, validate
from stacks.config.monitor import MonitoringConfig
from stacks.config.realtime import RealtimeConfig
from stacks.config.serverless import ServerlessConfig


class AppConfig(ConfigModel):
    """Everything the app deploys; each pattern is switched on or off by its ``enabled`` key."""

    model: ModelConfig = Field(default_factory=ModelConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)
    target: DeployTarget = Field(default_factory=DeployTarget)
    storage: StorageConfig = Field(default_factory=StorageConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    realtime: RealtimeConfig = Field(default_factory=RealtimeConfig)
    batch: BatchConfig = Field(default_factory=BatchConfig)
    edge: EdgeConfig = Field(default_factory=EdgeConfig)
    serverless: ServerlessConfig = Field(default_factory=ServerlessConfig)
    github_oidc: GithubOidcConfig = Field(default_factory=GithubOidcConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    environments: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Named overrides selected with ``-c env=<name>``, each shaped like ``deploy`` (without environments)."""

    def problems(self) -> list[str]:
        import re

        found = [f"environments.{name}: environment names are lower-case letters and digits (max 20)"
                 for name in self.environments if not re.fullmatch(ENV_NAME_PATTERN, name)]
        if self.pipeline.enabled:
            known = ", ".join(sorted(self.environments)) or "none"
            found += [f"pipeline.stages: {name!r} is not an environment in deploy.environments (known: {known})"
                      for name in self.pipeline.stages if name not in self.environments]
        return found


def config_from_context(context: Mapping[str, Any]) -> AppConfig:
    """Build the config from a CDK context mapping (cdk.json plus ``-c env=`` and ``-c deploy.*`` overrides).

    Raises :class:`ConfigError` naming every bad key with its allowed values.
    """
    tree, _, problems = assemble(context, root=AppConfig)
    has_candidate = (tree.get("model") or {}).get("candidate_dir") is not None if isinstance(
        tree.get("model"), dict) else False
    try:
        config = validate(AppConfig, tree, context={"has_candidate": has_candidate})
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    if problems:
        raise ConfigError(problems)
    return config


def environment_from_context(context: Mapping[str, Any]) -> str | None:
    """The environment selected with ``-c env=<name>``, or None (checked by :func:`config_from_context`)."""
    env = context.get(ENV_CONTEXT_KEY)
    return None if env in (None, "", "null") else str(env)


__all__ = ["AppConfig", "ConfigError", "CONTEXT_KEY", "config_from_context", "environment_from_context"]
