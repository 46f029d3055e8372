"""Encrypted log groups: CloudWatch's retention periods, and keys whose policy this app cannot change."""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs

from ml_constructs.common.encrypted_log_group import RETENTION_DAYS, encrypted_log_group, log_retention
from stacks.config.serverless import LOG_RETENTION_DAYS


def test_the_construct_knows_every_retention_the_config_accepts():
    # GIVEN the retention periods the config validates against  THEN each has its CDK name, and no other does
    assert tuple(RETENTION_DAYS) == LOG_RETENTION_DAYS
    assert log_retention(90) == logs.RetentionDays.THREE_MONTHS
    with pytest.raises(ValueError, match="10 days is not a CloudWatch Logs retention; allowed: 1, 3, 5"):
        log_retention(10)


def test_an_imported_key_is_refused_with_a_reason():
    # GIVEN a key imported by ARN (its key policy is not part of this app)
    stack = cdk.Stack(cdk.App(), "Probe")
    key = kms.Key.from_key_arn(stack, "Imported", "arn:aws:kms:eu-west-1:123456789012:key/abcd-1234")
    # WHEN a log group is to be encrypted with it  THEN synthesis stops here, not at deployment
    with pytest.raises(ValueError, match="imported KMS key"):
        encrypted_log_group(stack, "Logs", name_prefix="/probe", encryption_key=key, retention_days=30)
