"""The IAM role Greengrass core devices get AWS credentials from, and the IoT role alias that names it.

A core device calls the AWS IoT credentials provider with its certificate and a role alias; the provider
assumes the alias's role (the "token exchange role") and hands the device temporary credentials, which the
nucleus uses to download component artifacts. The Greengrass installer creates both when run with
``--provision true``; an account that never ran it has neither, and a stack that attaches a policy to the
role then fails CreateStack with NoSuchEntity. So by default this construct creates them; with
``create=False`` it only refers to an existing role by name (see docs/edge.md for the command).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_iot as iot
from constructs import Construct

#: The names the Greengrass installer uses, so devices set up with its defaults find them.
DEFAULT_ROLE_NAME = "GreengrassV2TokenExchangeRole"
ROLE_ALIAS_SUFFIX = "Alias"
#: IAM role names: 1-64 of these characters (the alias name adds its suffix within IoT's 128).
ROLE_NAME_PATTERN = re.compile(r"[\w+=,.@-]{1,64}")
#: Credentials the provider issues last this long (IoT's default; devices refresh them before expiry).
CREDENTIAL_DURATION = cdk.Duration.hours(1)
#: Where the Greengrass log manager writes, if a deployment adds it (aws.greengrass.LogManager).
GREENGRASS_LOG_GROUPS = "/aws/greengrass/*"


@dataclass(frozen=True, kw_only=True)
class TokenExchangeRoleOptions:
    """``create`` the role and its alias in this stack (default), or use an existing role called ``name``."""

    create: bool = True
    name: str = DEFAULT_ROLE_NAME

    def __post_init__(self) -> None:
        if not ROLE_NAME_PATTERN.fullmatch(self.name):
            raise ValueError(f"token exchange role name {self.name!r} must be 1-64 letters, digits or +=,.@_-")

    @property
    def alias_name(self) -> str:
        return f"{self.name}{ROLE_ALIAS_SUFFIX}"


class TokenExchangeRole(Construct):
    """The token exchange role (``role``) and, when created here, its IoT role alias (``role_alias``).

    The created role trusts ``credentials.iot.amazonaws.com`` only on behalf of this account's role alias
    (confused-deputy guard) and may write Greengrass logs; artifact downloads are granted by the component
    (``GreengrassComponent.grant_artifact_read``).
    """

    def __init__(self, scope: Construct, construct_id: str, *,
                 options: TokenExchangeRoleOptions = TokenExchangeRoleOptions()) -> None:
        super().__init__(scope, construct_id)
        self.options = options
        self.role_alias: iot.CfnRoleAlias | None = None
        if not options.create:
            self.role: iam.IRole = iam.Role.from_role_name(self, "Role", options.name)
            return
        stack = cdk.Stack.of(self)
        alias_arn = stack.format_arn(service="iot", resource="rolealias", resource_name=options.alias_name)
        role = iam.Role(self, "Role", role_name=options.name,
                        description="Greengrass core devices: AWS credentials through the IoT credentials provider",
                        assumed_by=iam.ServicePrincipal("credentials.iot.amazonaws.com", conditions={
                            "StringEquals": {"aws:SourceAccount": stack.account},
                            "ArnEquals": {"aws:SourceArn": alias_arn}}))
        log_groups = stack.format_arn(service="logs", resource="log-group", resource_name=f"{GREENGRASS_LOG_GROUPS}",
                                      arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
        role.add_to_policy(iam.PolicyStatement(
            actions=["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
            resources=[log_groups]))
        cdk.Validations.of(role.node.find_child("DefaultPolicy").node.default_child).acknowledge(cdk.Acknowledgment(
            id="AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:"
               f"{GREENGRASS_LOG_GROUPS}]",
            reason="The Greengrass log manager names one log group per component and device at run time; writes "
                   "are limited to the /aws/greengrass/ log groups of this account and region."))
        self.role = role
        self.role_alias = iot.CfnRoleAlias(self, "RoleAlias", role_alias=options.alias_name, role_arn=role.role_arn,
                                           credential_duration_seconds=int(CREDENTIAL_DURATION.to_seconds()))


__all__ = ["DEFAULT_ROLE_NAME", "TokenExchangeRole", "TokenExchangeRoleOptions"]
