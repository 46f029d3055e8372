"""The GitHub OIDC deploy role: who may assume it, and what it may do."""
from __future__ import annotations

import json

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from ml_constructs.cicd.github_oidc import GithubDeployAccess
from stacks.github_oidc_stack import GithubOidcStack


def _template(access: GithubDeployAccess, *, nag: bool = False) -> Template:
    app = cdk.App()
    stack = GithubOidcStack(app, "Oidc", access=access, env=cdk.Environment(account="111122223333", region="eu-west-1"))
    if nag:
        cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return Template.from_stack(stack)


@pytest.fixture(scope="module")
def template() -> Template:
    return _template(GithubDeployAccess(repository="octo-org/ml-deploy"), nag=True)


def test_only_the_repositorys_environments_can_assume_the_role(template):
    # GIVEN repository octo-org/ml-deploy and the default environments
    # THEN the trust policy requires the STS audience and one of the two environment subjects
    template.has_resource_properties("AWS::IAM::Role", {"AssumeRolePolicyDocument": {"Statement": [{
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": ["repo:octo-org/ml-deploy:environment:staging",
                                                        "repo:octo-org/ml-deploy:environment:production"]}},
        "Effect": "Allow",
        "Principal": {"Federated": {"Ref": Match.string_like_regexp("DeployRoleProvider")}}}]}})
    template.resource_count_is("AWS::IAM::OIDCProvider", 1)


def test_the_role_may_only_assume_the_named_bootstrap_roles(template):
    policies = template.find_resources("AWS::IAM::Policy")
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assert len(statements) == 1
    (statement,) = statements
    assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    rendered = json.dumps(statement["Resource"])
    for kind in ("deploy", "file-publishing", "image-publishing", "lookup"):
        assert f"role/cdk-hnb659fds-{kind}-role-111122223333-eu-west-1" in rendered
    assert "*" not in rendered
    assert not template.find_resources("AWS::IAM::ManagedPolicy")


def test_an_existing_provider_is_reused_instead_of_created():
    arn = "arn:aws:iam::111122223333:oidc-provider/token.actions.githubusercontent.com"
    template = _template(GithubDeployAccess(repository="o/r", existing_provider_arn=arn))
    template.resource_count_is("AWS::IAM::OIDCProvider", 0)
    template.has_resource_properties("AWS::IAM::Role", {"AssumeRolePolicyDocument": {"Statement": [
        Match.object_like({"Principal": {"Federated": arn}})]}})


def test_bad_access_settings_are_refused_together():
    with pytest.raises(ValueError) as error:
        _template(GithubDeployAccess(repository="not a repo", environments=(), bootstrap_qualifier="Bad_Q"))
    message = str(error.value)
    assert "owner/repo" in message and "environments" in message and "bootstrap_qualifier" in message


def test_the_template_is_cfn_lint_clean(template):
    from cfnlint.api import lint

    errors = [str(m) for m in lint(json.dumps(template.to_json()), regions=["us-east-1", "eu-west-1"])
              if m.rule.id.startswith("E")]
    assert errors == []
