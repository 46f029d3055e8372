"""`deploy --all` works in an account that never ran the Greengrass installer: the stack makes the token
exchange role and its IoT role alias (deploy.edge.token_exchange_role.create, default on)."""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from ml_constructs.edge.token_exchange_role import DEFAULT_ROLE_NAME, TokenExchangeRole, TokenExchangeRoleOptions
from tests.cfn_text import render


def text(value) -> str:
    return render(value, token=lambda name: f"<{name}>", find_in_map=lambda parts: "<map>")


DERIVED_ROLE_NAME = "FraudDetector-GreengrassTokenExchange"


def test_default_edge_stack_creates_the_role_devices_get_credentials_from(edge_template):
    # GIVEN the default configuration  THEN the stack creates the role itself, under a name derived from the
    # model so that it never collides with a GreengrassV2TokenExchangeRole the installer may have made
    roles = edge_template.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": DERIVED_ROLE_NAME}})
    assert len(roles) == 1, "the token exchange role must exist for CreateStack to attach the artifact policy"
    ((role_id, role),) = roles.items()
    # AND only the IoT credentials provider may assume it, for this account's role alias
    (statement,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "credentials.iot.amazonaws.com"}
    assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert text(statement["Condition"]["ArnEquals"]["aws:SourceArn"]).endswith(
        f":rolealias/{DERIVED_ROLE_NAME}Alias")
    # AND the role alias core devices are configured with points at it
    (alias,) = edge_template.find_resources("AWS::IoT::RoleAlias").values()
    assert alias["Properties"]["RoleAlias"] == f"{DERIVED_ROLE_NAME}Alias"
    assert alias["Properties"]["RoleArn"] == {"Fn::GetAtt": [role_id, "Arn"]}
    # AND the artifact policy is attached to that role (a Ref: CloudFormation creates the role first)
    (policy,) = edge_template.find_resources("AWS::IAM::ManagedPolicy").values()
    assert policy["Properties"]["Roles"] == [{"Ref": role_id}]


def test_an_existing_role_is_used_instead_when_creation_is_off():
    # GIVEN an account whose role was made by the Greengrass installer
    stack = cdk.Stack()
    token_exchange = TokenExchangeRole(stack, "TokenExchange",
                                       options=TokenExchangeRoleOptions(create=False, name="MyTesRole"))
    # THEN nothing is created, and the role is referred to by name
    template = Template.from_stack(stack)
    template.resource_count_is("AWS::IAM::Role", 0)
    template.resource_count_is("AWS::IoT::RoleAlias", 0)
    assert token_exchange.role_alias is None
    assert stack.resolve(token_exchange.role.role_name) == "MyTesRole"


def test_a_role_name_iam_refuses_is_reported_at_synth():
    with pytest.raises(ValueError, match="token exchange role name"):
        TokenExchangeRoleOptions(name="not a role name!")


def test_an_existing_role_without_a_name_is_the_installers_and_still_gets_the_artifact_policy():
    # GIVEN create=false and no name: the role the Greengrass installer makes by default
    from aws_cdk.assertions import Template

    from tests.conftest import build_app
    from tests.unit.edge.conftest import edge_only

    _, stacks = build_app(overrides=edge_only(**{"token_exchange_role.create": False}))
    template = Template.from_stack(stacks["edge"])
    # THEN no role is created, and the artifact policy is attached to GreengrassV2TokenExchangeRole
    template.resource_count_is("AWS::IAM::Role", 0)
    (policy,) = template.find_resources("AWS::IAM::ManagedPolicy").values()
    assert policy["Properties"]["Roles"] == ["GreengrassV2TokenExchangeRole"]
