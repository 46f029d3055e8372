"""A CloudWatch Logs log group encrypted with a customer-managed KMS key, with its retention given in days.

CloudWatch Logs encrypts with the key as the ``logs.<region>.amazonaws.com`` service principal, so the
key policy must allow that principal; ``logs.LogGroup(encryption_key=...)`` does not add the statement
(CloudWatch Logs user guide, "Encrypt log data in CloudWatch Logs using AWS KMS"), and creating the log
group fails with "The specified KMS key does not exist or is not allowed to be used" without it. The
statement added here is limited by ``kms:EncryptionContext:aws:logs:arn`` to this one log group, whose ARN
must therefore be known before it exists: the name is explicit, made unique per stack instance with the
stack's GUID so a log group retained by a deleted stack never blocks a new deployment of the same stack.
"""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

#: The retention periods CloudWatch Logs accepts (days) and their CDK names.
RETENTION_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY, 3: logs.RetentionDays.THREE_DAYS, 5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK, 14: logs.RetentionDays.TWO_WEEKS, 30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS, 90: logs.RetentionDays.THREE_MONTHS, 120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS, 180: logs.RetentionDays.SIX_MONTHS, 365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS, 545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS, 1096: logs.RetentionDays.THREE_YEARS, 1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS, 2557: logs.RetentionDays.SEVEN_YEARS, 2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS, 3653: logs.RetentionDays.TEN_YEARS,
}
#: What CloudWatch Logs does with the key: the actions of the key policy statement in its user guide.
LOGS_KEY_ACTIONS = ("kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*")


def log_retention(days: int) -> logs.RetentionDays:
    """``days`` as CDK's retention enum; ValueError naming the allowed values if CloudWatch has no such period."""
    try:
        return RETENTION_DAYS[days]
    except KeyError:
        raise ValueError(f"{days} days is not a CloudWatch Logs retention; allowed: "
                         + ", ".join(map(str, RETENTION_DAYS))) from None


def stack_unique_suffix(scope: Construct) -> str:
    """The GUID at the end of the stack's ID: the same for every update, new for a re-created stack."""
    return cdk.Fn.select(2, cdk.Fn.split("/", cdk.Stack.of(scope).stack_id))


def encrypted_log_group(scope: Construct, construct_id: str, *, name_prefix: str, encryption_key: kms.IKey,
                        retention_days: int,
                        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.RETAIN) -> logs.LogGroup:
    """A log group named ``<name_prefix>-<stack GUID>``, encrypted with ``encryption_key``, retained by default.

    The key must be one this app owns (a ``kms.Key``): the statement letting CloudWatch Logs use it for this
    log group only is added to its key policy, and an imported key's policy cannot be changed from here.
    """
    stack = cdk.Stack.of(scope)
    name = f"{name_prefix}-{stack_unique_suffix(scope)}"
    arn = stack.format_arn(service="logs", resource="log-group", resource_name=name,
                           arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)
    added = encryption_key.add_to_resource_policy(iam.PolicyStatement(
        principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
        actions=list(LOGS_KEY_ACTIONS), resources=["*"],
        conditions={"ArnEquals": {"kms:EncryptionContext:aws:logs:arn": arn}}))
    if not added.statement_added:
        raise ValueError(f"{scope.node.path}/{construct_id}: cannot add the CloudWatch Logs statement to the "
                         "policy of an imported KMS key; pass a key created in this app")
    return logs.LogGroup(scope, construct_id, log_group_name=name, encryption_key=encryption_key,
                         retention=log_retention(retention_days), removal_policy=removal_policy)


__all__ = ["RETENTION_DAYS", "encrypted_log_group", "log_retention", "stack_unique_suffix"]
