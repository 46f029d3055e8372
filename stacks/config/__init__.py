"""The app's configuration: one context key in cdk.json, overridable key by key with ``-c``.

``cdk.json`` holds the defaults under the ``deploy`` context key. Any leaf can be overridden on
the command line with its dotted path, e.g. ``npx cdk synth -c deploy.realtime.autoscaling.max_capacity=4``.
Values are read as JSON when they parse (numbers, true/false, null, lists), otherwise as text.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from stacks.config.batch import BatchConfig
from stacks.config.common import AlertsConfig, DeployTarget, ModelConfig
from stacks.config.edge import EdgeConfig
from stacks.config.realtime import RealtimeConfig
from stacks.config.serverless import ServerlessConfig
from stacks.config.schema import ConfigError, apply_overrides, parse

CONTEXT_KEY = "deploy"


@dataclass(frozen=True, kw_only=True)
class AppConfig:
    """Everything the app deploys; each pattern is switched on or off by its ``enabled`` key."""

    model: ModelConfig = field(default_factory=ModelConfig)
    alerts: AlertsConfig = field(default_factory=AlertsConfig)
    target: DeployTarget = field(default_factory=DeployTarget)
    realtime: RealtimeConfig = field(default_factory=RealtimeConfig)
    batch: BatchConfig = field(default_factory=BatchConfig)
    edge: EdgeConfig = field(default_factory=EdgeConfig)
    serverless: ServerlessConfig = field(default_factory=ServerlessConfig)

    def problems(self) -> list[str]:
        """Checks spanning sections (each section checks itself), reported with all other mistakes."""
        return self.batch.problems_with_model(self.model.name)


def config_from_context(context: Mapping[str, Any]) -> AppConfig:
    """Build the config from a CDK context mapping (cdk.json plus ``-c`` overrides).

    Raises :class:`ConfigError` naming every bad key with its allowed values.
    """
    base = context.get(CONTEXT_KEY, {})
    if isinstance(base, str):  # `-c deploy=...` replaces the whole object as JSON text
        import json

        try:
            base = json.loads(base)
        except json.JSONDecodeError as exc:
            raise ConfigError([f"{CONTEXT_KEY}: not valid JSON ({exc})"]) from None
    overrides = {key: value for key, value in context.items() if key.startswith(CONTEXT_KEY + ".")}
    merged, problems = apply_overrides(base if isinstance(base, dict) else {}, overrides, root=CONTEXT_KEY)
    if problems:
        raise ConfigError(problems)
    return parse(AppConfig, merged, path=CONTEXT_KEY)


__all__ = ["AppConfig", "ConfigError", "CONTEXT_KEY", "config_from_context"]
