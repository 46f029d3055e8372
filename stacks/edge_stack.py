"""``<Model>-Edge``: a Greengrass v2 component running the ONNX model on core devices, optionally deployed."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from constructs import Construct

from ml_constructs.greengrass_component import EdgeModel, GreengrassComponent, ThingGroupDeployment
from ml_constructs.greengrass_recipe import ComponentSpec, Topics
from ml_constructs.naming import pascal_case
from ml_constructs.token_exchange_role import TokenExchangeRole, TokenExchangeRoleOptions
from stacks.config import AppConfig


class EdgeStack(cdk.Stack):
    """Wires the Greengrass constructs from configuration; no AWS logic lives here."""

    def __init__(self, scope: Construct, construct_id: str, *, config: AppConfig, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        edge = config.edge
        topics = edge.topics
        self.component = GreengrassComponent(
            self, "Component",
            spec=ComponentSpec(
                name=edge.component_name or f"com.example.{pascal_case(config.model.name)}",
                version_prefix=edge.version, description=edge.description, publisher=edge.publisher,
                topics=Topics(input=topics.input, output=topics.output, error=topics.error),
                score_threshold=edge.score_threshold),
            model=EdgeModel.from_artifacts(edge.artifacts_dir or config.model.artifacts_dir))

        self.device_policy = None
        self.token_exchange = None
        if edge.token_exchange_role_name:
            self.token_exchange = TokenExchangeRole(
                self, "TokenExchange", options=TokenExchangeRoleOptions(name=edge.token_exchange_role_name))
            key = kms.Key.from_key_arn(self, "BootstrapKey", edge.bootstrap_key_arn) if edge.bootstrap_key_arn else None
            self.device_policy = self.component.grant_artifact_read(self.token_exchange.role, artifact_key=key)

        self.deployment = None
        if edge.deployment.enabled:
            self.deployment = ThingGroupDeployment(
                self, "Deployment", component=self.component, thing_group_arn=edge.deployment.thing_group_arn,
                deployment_name=edge.deployment.deployment_name,
                additional_components={c.name: c.version for c in edge.deployment.additional_components})

        cdk.CfnOutput(self, "ComponentName", value=self.component.component_name)
        cdk.CfnOutput(self, "ComponentVersion", value=self.component.version)
        cdk.CfnOutput(self, "ComponentArn", value=self.component.component_arn)
        if self.device_policy:
            cdk.CfnOutput(self, "DeviceArtifactPolicyArn", value=self.device_policy.managed_policy_arn)
        if self.token_exchange and self.token_exchange.role_alias:
            cdk.CfnOutput(self, "TokenExchangeRoleAlias", value=self.token_exchange.options.alias_name)
        if self.deployment:
            cdk.CfnOutput(self, "DeploymentId", value=self.deployment.deployment_id)
