"""``<Model>-Edge``: a Greengrass v2 component running the ONNX model on core devices, optionally deployed."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from constructs import Construct

from ml_constructs.edge.component import EdgeModel, GreengrassComponent, ThingGroupDeployment
from ml_constructs.edge.recipe import ComponentSpec, Topics
from stacks.config.edge import DEFAULT_TOKEN_EXCHANGE_ROLE
from stacks.deployment import Deployment
from ml_constructs.edge.token_exchange_role import TokenExchangeRole, TokenExchangeRoleOptions


class EdgeStack(cdk.Stack):
    """Wires the Greengrass constructs from configuration; no AWS logic lives here."""

    def __init__(self, scope: Construct, construct_id: str, *, deployment: Deployment, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        edge = deployment.config.edge
        topics = deployment.edge_topics
        self.component = GreengrassComponent(
            self, "Component",
            spec=ComponentSpec(
                name=deployment.component_name,
                version_prefix=edge.version, description=edge.description, publisher=edge.publisher,
                topics=Topics(input=topics.input, output=topics.output, error=topics.error),
                score_threshold=deployment.decision_threshold),
            model=EdgeModel.from_artifacts(deployment.model.artifacts_dir))

        # The devices' role gets read access to the artifacts. ``create`` (default): the stack owns a least-privilege
        # role and its IoT role alias under a name derived from the model, so it never collides with the role the
        # Greengrass installer may already have made; otherwise the named (or the installer's) role is used.
        role_config = edge.token_exchange_role
        name = role_config.name or (f"{deployment.stack_prefix}-GreengrassTokenExchange" if role_config.create
                                    else DEFAULT_TOKEN_EXCHANGE_ROLE)
        self.token_exchange = TokenExchangeRole(
            self, "TokenExchange", options=TokenExchangeRoleOptions(create=role_config.create, name=name))
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
        cdk.CfnOutput(self, "DeviceArtifactPolicyArn", value=self.device_policy.managed_policy_arn)
        if self.token_exchange.role_alias:
            cdk.CfnOutput(self, "TokenExchangeRoleAlias", value=self.token_exchange.options.alias_name)
        if self.deployment:
            cdk.CfnOutput(self, "DeploymentId", value=self.deployment.deployment_id)
