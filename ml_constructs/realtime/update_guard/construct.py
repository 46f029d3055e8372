"""Fails a deploy before ``UpdateEndpoint`` when SageMaker would refuse the update, saying what to do instead.

Why not let the update fail by itself, or make it work?

* Changing the instance type of an autoscaled variant: SageMaker refuses ``UpdateEndpoint`` while
  the variant is a registered scalable target. Giving the scalable target a logical ID that
  contains the instance type does not help: CloudFormation creates the replacement (after the
  endpoint it depends on) and deletes the old target only in its final clean-up phase, so the
  endpoint update still meets a registered target and fails; and deleting the old resource would
  deregister the target the new resource had just registered (both name the same variant).
  CloudFormation has no way to deregister first (aws-cdk #29626), so the guard stops the deploy
  and gives the two-deploy procedure.
* Changing variant names while guardrails are on: blue/green and rolling updates need the same
  variant names ("Deployment guardrails - Exclusions"); the guard gives the one-off deploy without
  guardrails.

Both checks compare the new properties with ``OldResourceProperties``, what the last successful
deploy recorded, which is what offline synth cannot know.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from ml_constructs.common.encrypted_log_group import encrypted_log_group
from ml_constructs.realtime.endpoint import RealtimeEndpoint

HANDLER_CODE_DIR = Path(__file__).resolve().parent / "runtime"
RESOURCE_TYPE = "Custom::EndpointUpdateGuard"
LOG_RETENTION_DAYS = 30

DEFAULT_INSTANCE_TYPE_CHANGE_REMEDY = (
    "Variant {variant} is autoscaled and its instance type changes from {old_type} to {new_type}: SageMaker "
    "refuses that update while the variant is a registered scalable target, and CloudFormation cannot "
    "deregister it first (aws-cdk #29626). Deploy twice: (1) keep {variant} on {old_type} and deploy with "
    "autoscaling off, which deregisters the scalable targets; (2) set {new_type} and deploy with autoscaling on.")
DEFAULT_VARIANT_SET_CHANGE_REMEDY = (
    "The variants change from [{old_names}] to [{new_names}] while deployment guardrails are on: SageMaker "
    "requires blue/green and rolling updates to keep the variant names. Deploy this change once with "
    "guardrails off, then turn them on again.")


@dataclass(frozen=True, kw_only=True)
class UpdateRemedies:
    """What the failure says to do; ``{variant}``, ``{old_type}``, ``{new_type}``, ``{old_names}`` and
    ``{new_names}`` are filled in at deploy time. Stacks name their own config keys and commands here."""

    instance_type_change: str = DEFAULT_INSTANCE_TYPE_CHANGE_REMEDY
    variant_set_change: str = DEFAULT_VARIANT_SET_CHANGE_REMEDY


class EndpointUpdateGuard(Construct):
    """A custom resource the endpoint depends on, re-evaluated whenever variants, types or guardrails change.

    ``log_key`` encrypts the handler's log group (a key defined in this app: its policy gets a statement for
    CloudWatch Logs).
    """

    def __init__(self, scope: Construct, construct_id: str, *, endpoint: RealtimeEndpoint, log_key: kms.IKey,
                 remedies: UpdateRemedies = UpdateRemedies()) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        log_group = encrypted_log_group(self, "Logs", name_prefix=f"/aws/lambda/{endpoint.endpoint_name}-update-guard",
                                        encryption_key=log_key, retention_days=LOG_RETENTION_DAYS,
                                        removal_policy=cdk.RemovalPolicy.DESTROY)
        self.role = iam.Role(self, "Role", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                             description=f"Checks updates of SageMaker endpoint {endpoint.endpoint_name}")
        log_group.grant_write(self.role)
        # Only to recognise a rollback, which must never be blocked.
        self.role.add_to_policy(iam.PolicyStatement(actions=["cloudformation:DescribeStacks"],
                                                    resources=[stack.stack_id]))
        self.function = lambda_.Function(
            self, "Function", runtime=lambda_.Runtime.PYTHON_3_14, architecture=lambda_.Architecture.ARM_64,
            code=lambda_.Code.from_asset(str(HANDLER_CODE_DIR), exclude=["__pycache__", "*.pyc"]),
            handler="index.handler", role=self.role, timeout=cdk.Duration.seconds(30), memory_size=128,
            log_group=log_group, description=f"Stops updates SageMaker would refuse on {endpoint.endpoint_name}")
        self.resource = cdk.CustomResource(
            self, "Resource", service_token=self.function.function_arn, resource_type=RESOURCE_TYPE,
            properties={
                "EndpointName": endpoint.endpoint_name,
                "Variants": [{"Name": variant.name, "InstanceType": variant.instance_type,
                              "Autoscaled": str(variant.name in endpoint.scalable_targets).lower()}
                             for variant in endpoint.variants],
                "Guardrails": str(endpoint.guardrails is not None).lower(),
                "InstanceTypeChangeRemedy": remedies.instance_type_change,
                "VariantSetChangeRemedy": remedies.variant_set_change,
            })
        # The check must run, and may fail the deploy, before CloudFormation calls UpdateEndpoint.
        endpoint.endpoint.node.add_dependency(self.resource)
