"""Encrypted, versioned, TLS-only, retained storage: the defaults every data bucket here gets."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

#: Noncurrent object versions are kept this long, then expire (versioning without it grows forever).
NONCURRENT_VERSION_RETENTION = cdk.Duration.days(90)
ACCESS_LOG_RETENTION = cdk.Duration.days(365)


class DataKey(Construct):
    """A customer-managed KMS key with rotation, retained on stack deletion (data encrypted with it outlives the stack)."""

    def __init__(self, scope: Construct, construct_id: str, *, description: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(self, "Key", description=description, enable_key_rotation=True,
                           removal_policy=cdk.RemovalPolicy.RETAIN)


class SecureBucket(Construct):
    """A data bucket: KMS-encrypted, versioned, public access blocked, TLS enforced, retained, access-logged.

    The access-log bucket is created alongside because S3 server access logs cannot be
    delivered to a bucket encrypted with a customer-managed KMS key (SSE-S3 only).
    """

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey,
                 access_logs_bucket: s3.IBucket | None = None) -> None:
        super().__init__(scope, construct_id)
        if access_logs_bucket is None:
            access_logs_bucket = s3.Bucket(
                self, "AccessLogs", encryption=s3.BucketEncryption.S3_MANAGED, enforce_ssl=True, versioned=True,
                block_public_access=s3.BlockPublicAccess.BLOCK_ALL, removal_policy=cdk.RemovalPolicy.RETAIN,
                object_ownership=s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
                lifecycle_rules=[s3.LifecycleRule(expiration=ACCESS_LOG_RETENTION,
                                                  noncurrent_version_expiration=cdk.Duration.days(30))])
            cdk.Validations.of(access_logs_bucket).acknowledge(cdk.Acknowledgment(
                id="AwsSolutions-S1",
                reason="This bucket receives the server access logs of its data bucket; logging it to itself "
                       "would create an infinite log loop."))
        self.access_logs_bucket = access_logs_bucket
        self.bucket = s3.Bucket(
            self, "Bucket", encryption=s3.BucketEncryption.KMS, encryption_key=encryption_key, bucket_key_enabled=True,
            enforce_ssl=True, versioned=True, block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            removal_policy=cdk.RemovalPolicy.RETAIN, server_access_logs_bucket=access_logs_bucket,
            server_access_logs_prefix=f"{construct_id.lower()}/",
            lifecycle_rules=[s3.LifecycleRule(noncurrent_version_expiration=NONCURRENT_VERSION_RETENTION)])
