"""``<Model>-Edge``: a Greengrass v2 component running the ONNX model on core devices, optionally deployed."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from ml_constructs.greengrass_component import EdgeModel, GreengrassComponent, ThingGroupDeployment
from ml_constructs.greengrass_recipe import ComponentSpec, Topics
from stacks.config.edge import DEFAULT_TOKEN_EXCHANGE_ROLE
from stacks.deployment import Deployment


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

        self.device_policy = None
        # The devices' role gets read access to the artifacts. ``create: true`` will have the stack own that role
        # (a construct in progress); until then both settings grant to the named, or the installer's, role.
        role_config = edge.token_exchange_role
        if role_config.create or role_config.name:
            role = iam.Role.from_role_name(self, "TokenExchangeRole", role_config.name or DEFAULT_TOKEN_EXCHANGE_ROLE)
            key = kms.Key.from_key_arn(self, "BootstrapKey", edge.bootstrap_key_arn) if edge.bootstrap_key_arn else None
            self.device_policy = self.component.grant_artifact_read(role, artifact_key=key)

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
        if self.deployment:
            cdk.CfnOutput(self, "DeploymentId", value=self.deployment.deployment_id)
