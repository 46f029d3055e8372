"""A role GitHub Actions can assume through OIDC to run `cdk deploy`, allowed nothing but the CDK bootstrap roles."""
from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

GITHUB_OIDC_URL = "https://token.actions.githubusercontent.com"
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
#: The bootstrap roles `cdk deploy` assumes (`cdk bootstrap` names them with this qualifier by default).
DEFAULT_BOOTSTRAP_QUALIFIER = "hnb659fds"
BOOTSTRAP_ROLE_KINDS = ("deploy", "file-publishing", "image-publishing", "lookup")
REPOSITORY_PATTERN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}")


@dataclass(frozen=True, kw_only=True)
class GithubDeployAccess:
    """Who may deploy: one repository, through named GitHub environments only.

    ``environments`` become the `sub` claims `repo:<owner>/<repo>:environment:<name>`: a workflow job must run
    in one of them (and so pass its protection rules, e.g. a required reviewer) to get credentials.
    """

    repository: str
    environments: tuple[str, ...] = ("staging", "production")
    bootstrap_qualifier: str = DEFAULT_BOOTSTRAP_QUALIFIER
    #: ARN of an existing GitHub OIDC provider: an account holds at most one per URL.
    existing_provider_arn: str | None = None
    max_session_hours: int = 1

    def problems(self) -> list[str]:
        problems = []
        if not REPOSITORY_PATTERN.fullmatch(self.repository):
            problems.append(f"repository: {self.repository!r} is not of the form owner/repo")
        if not self.environments:
            problems.append("environments: name at least one GitHub environment")
        if not re.fullmatch(r"[a-z0-9]{1,10}", self.bootstrap_qualifier):
            problems.append(f"bootstrap_qualifier: {self.bootstrap_qualifier!r} must be 1-10 lower-case letters/digits")
        if not 1 <= self.max_session_hours <= 12:
            problems.append(f"max_session_hours: must be between 1 and 12, got {self.max_session_hours}")
        return problems


class GithubOidcDeployRole(Construct):
    """The OIDC provider (unless one exists) and the deploy role; the role may only assume the bootstrap roles."""

    def __init__(self, scope: Construct, construct_id: str, *, access: GithubDeployAccess) -> None:
        super().__init__(scope, construct_id)
        problems = access.problems()
        if problems:
            raise ValueError("GitHub OIDC deploy role: " + "; ".join(problems))
        stack = cdk.Stack.of(self)
        if access.existing_provider_arn:
            provider_arn = access.existing_provider_arn
            self.provider = None
        else:
            # The native resource (AWS::IAM::OIDCProvider), not the custom-resource Lambda of OpenIdConnectProvider.
            self.provider = iam.OidcProviderNative(self, "Provider", url=GITHUB_OIDC_URL,
                                                   client_ids=["sts.amazonaws.com"])
            provider_arn = self.provider.oidc_provider_arn
        subjects = [f"repo:{access.repository}:environment:{name}" for name in access.environments]
        self.role = iam.Role(
            self, "Role",
            description=f"GitHub Actions in {access.repository} deploy the CDK app through the bootstrap roles",
            max_session_duration=cdk.Duration.hours(access.max_session_hours),
            assumed_by=iam.FederatedPrincipal(
                provider_arn,
                conditions={"StringEquals": {f"{GITHUB_OIDC_HOST}:aud": "sts.amazonaws.com",
                                             f"{GITHUB_OIDC_HOST}:sub": subjects}},
                assume_role_action="sts:AssumeRoleWithWebIdentity"))
        self.bootstrap_role_arns = [
            stack.format_arn(service="iam", region="", resource="role",
                             resource_name=f"cdk-{access.bootstrap_qualifier}-{kind}-role-{stack.account}-{stack.region}")
            for kind in BOOTSTRAP_ROLE_KINDS]
        self.role.add_to_policy(iam.PolicyStatement(actions=["sts:AssumeRole", "sts:TagSession"],
                                                    resources=self.bootstrap_role_arns))
