"""Encrypted, versioned, TLS-only, retained storage: the defaults every data bucket here gets."""
from __future__ import annotations

from dataclasses import dataclass

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

#: Noncurrent object versions are kept this long, then expire (versioning without it grows forever).
DEFAULT_NONCURRENT_VERSION_EXPIRY_DAYS = 30
#: Parts of a multipart upload that never completed are billed until aborted; S3 aborts them after this.
DEFAULT_ABORT_INCOMPLETE_UPLOAD_DAYS = 7
ACCESS_LOG_RETENTION = cdk.Duration.days(365)


@dataclass(frozen=True, kw_only=True)
class ObjectExpiry:
    """Current objects under ``prefix`` are deleted ``days`` after they were written."""

    prefix: str
    days: int


@dataclass(frozen=True, kw_only=True)
class Lifecycle:
    """What S3 deletes by itself. Current objects are kept unless an ``expirations`` prefix says otherwise."""

    noncurrent_version_expiry_days: int = DEFAULT_NONCURRENT_VERSION_EXPIRY_DAYS
    abort_incomplete_upload_days: int = DEFAULT_ABORT_INCOMPLETE_UPLOAD_DAYS
    expirations: tuple[ObjectExpiry, ...] = ()

    def __post_init__(self) -> None:
        problems = [f"{name} must be at least 1 day, got {value}" for name, value in (
            ("noncurrent_version_expiry_days", self.noncurrent_version_expiry_days),
            ("abort_incomplete_upload_days", self.abort_incomplete_upload_days)) if value < 1]
        problems += [f"expiry of prefix {expiry.prefix!r} must be at least 1 day, got {expiry.days}"
                     for expiry in self.expirations if expiry.days < 1]
        if problems:
            raise ValueError("Lifecycle: " + "; ".join(problems))

    def rules(self) -> list[s3.LifecycleRule]:
        # Delete markers left once every version of an object has expired are removed too.
        return [s3.LifecycleRule(
                    id="OldVersionsAndStaleUploads",
                    noncurrent_version_expiration=cdk.Duration.days(self.noncurrent_version_expiry_days),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(self.abort_incomplete_upload_days),
                    expired_object_delete_marker=True),
                *(s3.LifecycleRule(prefix=expiry.prefix, expiration=cdk.Duration.days(expiry.days))
                  for expiry in self.expirations)]


class DataKey(Construct):
    """A customer-managed KMS key with rotation, retained on stack deletion (data encrypted with it outlives the stack)."""

    def __init__(self, scope: Construct, construct_id: str, *, description: str) -> None:
        super().__init__(scope, construct_id)
        self.key = kms.Key(self, "Key", description=description, enable_key_rotation=True,
                           removal_policy=cdk.RemovalPolicy.RETAIN)


class SecureBucket(Construct):
    """A data bucket: KMS-encrypted, versioned, public access blocked, TLS enforced, retained, access-logged.

    ``lifecycle`` expires noncurrent versions and aborts incomplete multipart uploads (30 and 7 days by
    default) and optionally expires current objects under given prefixes.

    The access-log bucket is created alongside because S3 server access logs cannot be
    delivered to a bucket encrypted with a customer-managed KMS key (SSE-S3 only).
    """

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey,
                 access_logs_bucket: s3.IBucket | None = None, lifecycle: Lifecycle = Lifecycle()) -> None:
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
            lifecycle_rules=lifecycle.rules())
        self.lifecycle = lifecycle
