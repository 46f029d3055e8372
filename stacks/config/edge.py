"""Configuration of the edge (Greengrass v2) pattern."""
from __future__ import annotations

from pydantic import Field

from ml_constructs.edge.component import THING_GROUP_ARN_PATTERN
from ml_constructs.edge.recipe import (
    COMPONENT_NAME_PATTERN, RESERVED_NAME_PREFIXES, SEMVER_PATTERN, TOPIC_PATTERN, VERSION_PREFIX_PATTERN)
from ml_constructs.edge.token_exchange_role import DEFAULT_ROLE_NAME, ROLE_NAME_PATTERN
from stacks.config.base import ConfigModel, setting

#: The role the Greengrass installer creates with ``--provision true`` (its default name).
DEFAULT_TOKEN_EXCHANGE_ROLE = DEFAULT_ROLE_NAME
DEFAULT_PUBLISHER = "ml-deploy-patterns"
KMS_KEY_ARN_PATTERN = r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]{1,128}"
DEPLOYMENT_NAME_PATTERN = r"[A-Za-z0-9._ -]{1,256}"
TOPIC_HELP = "letters, digits and _ . / - (no MQTT wildcards), up to 256 characters"


class EdgeTopicsConfig(ConfigModel):
    """Local pub/sub topics; the component may subscribe to ``input`` and publish to the other two only.

    Null derives them from the model's name: ``<model>/requests``, ``<model>/predictions``, ``<model>/errors``."""

    input: str | None = setting(None, pattern=TOPIC_PATTERN, help=TOPIC_HELP)
    output: str | None = setting(None, pattern=TOPIC_PATTERN, help=TOPIC_HELP)
    error: str | None = setting(None, pattern=TOPIC_PATTERN, help=TOPIC_HELP)

    def problems(self) -> list[str]:
        found, seen = [], {}
        for name in ("input", "output", "error"):
            topic = getattr(self, name)
            if topic is None:
                continue
            if topic in seen:
                found.append(f"{name}: {topic!r} is also the {seen[topic]} topic; input, output and error must be "
                             "three different topics")
            seen.setdefault(topic, name)
        return found


class ComponentRefConfig(ConfigModel):
    """Another component (and exact version) the thing group's devices must keep running."""

    name: str = setting(pattern=COMPONENT_NAME_PATTERN, help="a component name such as aws.greengrass.Cli")
    version: str = setting(pattern=SEMVER_PATTERN, help="MAJOR.MINOR.PATCH")


class EdgeDeploymentConfig(ConfigModel):
    """Optional deployment of the component to a thing group (it replaces the group's current deployment)."""

    enabled: bool = False
    thing_group_arn: str | None = setting(
        None, pattern=THING_GROUP_ARN_PATTERN, help="arn:aws:iot:<region>:<account>:thinggroup/<name>")
    deployment_name: str | None = setting(None, pattern=DEPLOYMENT_NAME_PATTERN,
                                              help="letters, digits, spaces and . _ - (max 256)")
    additional_components: tuple[ComponentRefConfig, ...] = ()

    def problems(self) -> list[str]:
        found = []
        if self.enabled and not self.thing_group_arn:
            found.append("thing_group_arn: required when enabled is true")
        names = [component.name for component in self.additional_components]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            found.append(f"additional_components: names must be unique, repeated: {', '.join(duplicates)}")
        return found


class TokenExchangeRoleConfig(ConfigModel):
    """The core devices' token exchange role (the identity Greengrass uses to fetch artifacts)."""

    create: bool = True
    """true: the stack owns a least-privilege role (``name``, else a derived name) for the devices to use;
    false: an existing role (``name``, else the installer's default GreengrassV2TokenExchangeRole) is given read
    access to the artifacts."""
    name: str | None = setting(None, pattern=ROLE_NAME_PATTERN.pattern, help="an IAM role name")


class EdgeConfig(ConfigModel):
    """The Greengrass v2 component pattern: ONNX inference on core devices over local pub/sub."""

    enabled: bool = True
    component_name: str | None = setting(None, pattern=COMPONENT_NAME_PATTERN,
                                             help="reverse-DNS letters, digits and . _ - (max 128)")
    """Null means ``com.example.<Model>`` (e.g. com.example.FraudDetector)."""
    version: str = setting("1.0", pattern=VERSION_PREFIX_PATTERN, help="MAJOR.MINOR; the patch is derived")
    description: str = setting("Scores transactions with an ONNX model over Greengrass local pub/sub",
                                   pattern=r"[^\n]{0,1024}", help="one line, up to 1024 characters")
    publisher: str = setting(DEFAULT_PUBLISHER, pattern=r"[^\n]{1,128}", help="one line, 1 to 128 characters")
    topics: EdgeTopicsConfig = Field(default_factory=EdgeTopicsConfig)
    token_exchange_role: TokenExchangeRoleConfig = Field(default_factory=lambda: TokenExchangeRoleConfig())
    bootstrap_key_arn: str | None = setting(None, pattern=KMS_KEY_ARN_PATTERN, help="a KMS key ARN")
    """Only for a bootstrap bucket encrypted with your own KMS key (``cdk bootstrap --bootstrap-kms-key-id``)."""
    deployment: EdgeDeploymentConfig = Field(default_factory=EdgeDeploymentConfig)

    def problems(self) -> list[str]:
        found = []
        if self.component_name and self.component_name.lower().startswith(RESERVED_NAME_PREFIXES):
            found.append(f"component_name: {self.component_name!r} starts with a prefix reserved for AWS-provided "
                         f"components ({', '.join(RESERVED_NAME_PREFIXES)})")
        if self.component_name and any(c.name == self.component_name for c in self.deployment.additional_components):
            found.append("deployment.additional_components: must not list the component itself")
        return found


__all__ = ["EdgeConfig", "TokenExchangeRoleConfig", "EdgeTopicsConfig", "EdgeDeploymentConfig", "ComponentRefConfig"]
