"""S3 uploads under one prefix invoke a function, which writes its results under other prefixes only.

An S3-triggered function that writes into the prefix it listens on triggers itself forever, so the
prefixes are validated not to overlap, the notification filters on the input prefix, and the function's
role may only *read* under the input prefix and only *write* under the output and rejected prefixes.
"""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_notifications as s3n
from constructs import Construct

from ml_constructs.common.naming import nag_resource_name

#: Concurrent copies of the function S3 invokes. S3 invokes it once per uploaded file, so without a cap a
#: burst of uploads scales it up to the account's unreserved concurrency and throttles every other function
#: in the account. Events over the cap are not lost: Lambda keeps retrying throttled asynchronous events
#: for up to their maximum event age.
DEFAULT_RESERVED_CONCURRENCY = 10

#: CDK's singleton custom resource that writes bucket notification configurations (one per stack).
NOTIFICATIONS_HANDLER_ID = "BucketNotificationsHandler050a0587b7544547bf325f094a3db834"


def upload_function_concurrency(*, configured: int | None,
                                 upload_default: int = DEFAULT_RESERVED_CONCURRENCY) -> int:
    """Reserved concurrency for a function an ``UploadTrigger`` invokes: ``configured`` if set, else the cap."""
    value = upload_default if configured is None else configured
    if value < 1:
        raise ValueError(f"reserved concurrency of the upload-triggered function must be at least 1, got {value}")
    return value


def prefix_problems(*, input_prefix: str, output_prefix: str, rejected_prefix: str) -> list[str]:
    """Why these prefixes would make the function trigger itself (empty when they are safe)."""
    problems = []
    if not input_prefix.endswith("/"):
        problems.append(f"input_prefix {input_prefix!r} must end with '/'")
    for name, written in (("output_prefix", output_prefix), ("rejected_prefix", rejected_prefix)):
        if not written or written.startswith(input_prefix) or input_prefix.startswith(written):
            problems.append(f"{name} {written!r} overlaps input_prefix {input_prefix!r}: the function would "
                            "trigger itself on its own output")
    return problems


class UploadTrigger(Construct):
    """``ObjectCreated`` under ``input_prefix`` of ``bucket`` invokes ``target`` (asynchronously).

    ``role`` (the target's execution role) gets read access to the input prefix, write access to the
    output and rejected prefixes, and the KMS permissions those need; nothing else on the bucket.
    """

    def __init__(self, scope: Construct, construct_id: str, *, bucket: s3.IBucket, encryption_key: kms.IKey,
                 target: lambda_.IFunction, role: iam.IRole, input_prefix: str = "incoming/",
                 output_prefix: str = "predictions/", rejected_prefix: str = "rejected/") -> None:
        super().__init__(scope, construct_id)
        problems = prefix_problems(input_prefix=input_prefix, output_prefix=output_prefix,
                                   rejected_prefix=rejected_prefix)
        if problems:
            raise ValueError("invalid UploadTrigger: " + "; ".join(problems))
        self.bucket, self.input_prefix = bucket, input_prefix
        self.output_prefix, self.rejected_prefix = output_prefix, rejected_prefix
        inputs = bucket.arn_for_objects(f"{input_prefix}*")
        outputs = [bucket.arn_for_objects(f"{prefix}*") for prefix in (output_prefix, rejected_prefix)]
        # Reading a version and its tags: the rejected copy is made with CopyObject, which copies tags too.
        self.read_statement = iam.PolicyStatement(
            actions=["s3:GetObject", "s3:GetObjectVersion", "s3:GetObjectTagging", "s3:GetObjectVersionTagging"],
            resources=[inputs])
        self.write_statement = iam.PolicyStatement(actions=["s3:PutObject", "s3:PutObjectTagging"],
                                                   resources=outputs)
        role.add_to_principal_policy(self.read_statement)
        role.add_to_principal_policy(self.write_statement)
        encryption_key.grant(role, "kms:Decrypt", "kms:GenerateDataKey")
        bucket.add_event_notification(s3.EventType.OBJECT_CREATED, s3n.LambdaDestination(target),
                                      s3.NotificationKeyFilter(prefix=input_prefix))
        self._acknowledge(role, [inputs, *outputs])

    def _acknowledge(self, role: iam.IRole, object_arns: list[str]) -> None:
        stack = cdk.Stack.of(self)
        policy = role.node.try_find_child("DefaultPolicy")
        if policy is not None:
            for arn in object_arns:
                cdk.Validations.of(policy.node.default_child).acknowledge(cdk.Acknowledgment(
                    id=f"AwsSolutions-IAM5[Resource::{nag_resource_name(stack.resolve(arn))}]",
                    reason="Uploaded files and the results written for them have keys chosen at run time; "
                           "access is limited to one prefix of the pattern's own data bucket."))
        handler = stack.node.try_find_child(NOTIFICATIONS_HANDLER_ID)
        if handler is not None:
            handler_role = handler.node.find_child("Role")
            cdk.Validations.of(handler_role).acknowledge(cdk.Acknowledgment(
                id="AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                   "AWSLambdaBasicExecutionRole]",
                reason="CDK's own bucket-notification custom resource (one per stack, runs only during "
                       "deployments) is built with this managed policy; its role is not configurable."))


__all__ = ["DEFAULT_RESERVED_CONCURRENCY", "UploadTrigger", "prefix_problems", "upload_function_concurrency"]
