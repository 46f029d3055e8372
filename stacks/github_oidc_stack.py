"""``<Model>-GithubOidc``: the role the deploy workflow assumes (optional; `-c deploy.github_oidc.repository=...`)."""
from __future__ import annotations

import aws_cdk as cdk
from constructs import Construct

from ml_constructs.cicd.github_oidc import GithubDeployAccess, GithubOidcDeployRole


class GithubOidcStack(cdk.Stack):
    """One deploy role per account and region: deploy it once where the workflow deploys."""

    def __init__(self, scope: Construct, construct_id: str, *, access: GithubDeployAccess, **kwargs) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.deploy_role = GithubOidcDeployRole(self, "DeployRole", access=access)
        cdk.CfnOutput(self, "DeployRoleArn", value=self.deploy_role.role.role_arn,
                      description="Set it as the GitHub environment variable AWS_DEPLOY_ROLE_ARN")
