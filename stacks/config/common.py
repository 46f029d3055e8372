"""Configuration shared by every pattern: the model, alerting and tags."""
from __future__ import annotations

from dataclasses import dataclass

from ml_constructs.common.model_package import FRAMEWORK_SKLEARN_VERSIONS
from stacks.config.schema import constrained

MODEL_NAME_PATTERN = r"[A-Za-z][A-Za-z0-9-]{0,39}"
EMAIL_PATTERN = r"[^@\s]+@[^@\s]+\.[^@\s]+"
DEFAULT_FRAMEWORK_VERSION = "1.2-1"


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """Which trained model to deploy: its artifacts folder (from ``make model``) and serving framework."""

    name: str = constrained("fraud-detector", pattern=MODEL_NAME_PATTERN,
                            help="a letter then up to 39 letters, digits or hyphens")
    artifacts_dir: str = "artifacts/fraud-detector"
    framework_version: str = DEFAULT_FRAMEWORK_VERSION

    def problems(self) -> list[str]:
        if self.framework_version not in FRAMEWORK_SKLEARN_VERSIONS:
            return [f"framework_version: {self.framework_version!r} is not supported; allowed values are "
                    + ", ".join(sorted(FRAMEWORK_SKLEARN_VERSIONS))]
        return []


@dataclass(frozen=True, kw_only=True)
class AlertsConfig:
    """Where alarms go: an encrypted SNS topic per stack, optionally with an email subscription."""

    email: str | None = constrained(None, pattern=EMAIL_PATTERN, help="an email address")


@dataclass(frozen=True, kw_only=True)
class DeployTarget:
    """Account and region to deploy to; null means the CLI's environment (or environment-agnostic synth)."""

    account: str | None = constrained(None, pattern=r"\d{12}", help="a 12-digit AWS account id")
    region: str | None = constrained(None, pattern=r"[a-z]{2}(-[a-z]+)+-\d", help="an AWS region such as eu-west-1")


__all__ = ["ModelConfig", "AlertsConfig", "DeployTarget"]
