"""Optional CI/CD stacks: the GitHub OIDC deploy role and the CDK pipeline (staging -> approval -> production)."""
from __future__ import annotations

from ml_constructs.cicd.delivery_pipeline import CONNECTION_ARN_PATTERN
from ml_constructs.cicd.github_oidc import DEFAULT_BOOTSTRAP_QUALIFIER, REPOSITORY_PATTERN, GithubDeployAccess
from stacks.config.base import ConfigModel, setting

REPOSITORY_HELP = "owner/repo on GitHub"


class GithubOidcConfig(ConfigModel):
    """``<Model>-GithubOidc``: the role GitHub Actions assumes through OIDC (created when ``repository`` is set)."""

    repository: str | None = setting(None, pattern=REPOSITORY_PATTERN.pattern, help=REPOSITORY_HELP)
    environments: tuple[str, ...] = ("staging", "production")
    """GitHub environments whose jobs may assume the role (their protection rules apply)."""
    existing_provider_arn: str | None = setting(None, pattern=r"arn:aws[a-z-]*:iam::\d{12}:oidc-provider/.+",
                                                help="an IAM OIDC provider ARN")
    """Reuse the account's GitHub OIDC provider (an account holds one per URL); null creates it."""
    bootstrap_qualifier: str = setting(DEFAULT_BOOTSTRAP_QUALIFIER, pattern=r"[a-z0-9]{1,10}",
                                       help="the qualifier given to cdk bootstrap")

    def to_construct(self) -> GithubDeployAccess:
        return GithubDeployAccess(repository=self.repository or "", environments=self.environments,
                                  bootstrap_qualifier=self.bootstrap_qualifier,
                                  existing_provider_arn=self.existing_provider_arn)


class PipelineConfig(ConfigModel):
    """``<Model>-Pipeline``: CDK Pipelines from GitHub through a CodeConnections connection."""

    enabled: bool = False
    repository: str | None = setting(None, pattern=REPOSITORY_PATTERN.pattern, help=REPOSITORY_HELP)
    connection_arn: str | None = setting(None, pattern=CONNECTION_ARN_PATTERN.pattern,
                                         help="a CodeConnections connection ARN")
    branch: str = setting("main", pattern=r"\S+", help="a branch name")
    account: str | None = setting(None, pattern=r"\d{12}", help="a 12-digit AWS account id")
    """The account the pipeline itself lives in (CDK Pipelines needs it explicit for cross-account stages)."""
    region: str | None = setting(None, pattern=r"[a-z]{2}(-[a-z]+)+-\d", help="an AWS region such as eu-west-1")
    stages: tuple[str, ...] = ("staging", "production")
    """Environments (``deploy.environments.<name>``) deployed in this order."""
    approve_before: tuple[str, ...] = ("production",)
    """Stages that wait for a manual approval first."""

    def problems(self) -> list[str]:
        if not self.enabled:
            return []
        found = [f"{key}: required when pipeline.enabled is true" for key in
                 ("repository", "connection_arn", "account", "region") if getattr(self, key) is None]
        if not self.stages:
            found.append("stages: name at least one environment to deploy")
        found += [f"approve_before: {name!r} is not one of the stages ({', '.join(self.stages)})"
                  for name in self.approve_before if name not in self.stages]
        return found
