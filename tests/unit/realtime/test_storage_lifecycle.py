"""Data buckets clean up after themselves: capture expiry, old versions, abandoned multipart uploads."""
from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from ml_constructs.common.secure_storage import Lifecycle, ObjectExpiry, SecureBucket


def data_bucket_rules(template: Template) -> dict[str, list[dict]]:
    """Lifecycle rules of the KMS-encrypted (data) buckets, by logical ID."""
    return {logical_id: bucket["Properties"]["LifecycleConfiguration"]["Rules"]
            for logical_id, bucket in template.find_resources("AWS::S3::Bucket").items()
            if "KMSMasterKeyID" in str(bucket["Properties"].get("BucketEncryption"))}


def whole_bucket_rule(rules: list[dict]) -> dict:
    (rule,) = [rule for rule in rules if "Prefix" not in rule]
    return rule


@pytest.mark.parametrize("pattern", ["realtime", "batch", "serverless"])
def test_every_data_bucket_expires_old_versions_and_aborts_stale_uploads(default_templates, pattern):
    # GIVEN the default configuration
    buckets = data_bucket_rules(default_templates[pattern])
    assert buckets
    for logical_id, rules in buckets.items():
        rule = whole_bucket_rule(rules)
        # THEN noncurrent versions go after 30 days and incomplete multipart uploads after 7
        assert rule["Status"] == "Enabled"
        assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30}, logical_id
        assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 7}, logical_id
        # AND current objects are kept unless a prefix says otherwise (predictions are kept)
        assert "ExpirationInDays" not in rule


def test_captured_requests_expire_after_90_days_but_the_monitoring_files_stay(default_templates):
    # GIVEN the data-capture bucket of the real-time stack (Model Monitor also keeps its baseline there)
    (rules,) = [rules for logical_id, rules in data_bucket_rules(default_templates["realtime"]).items()
                if logical_id.startswith("CaptureStorage")]
    # THEN only objects under the capture prefix expire, after 90 days
    expiring = [rule for rule in rules if "ExpirationInDays" in rule]
    assert expiring == [{"Status": "Enabled", "Prefix": "data-capture/", "ExpirationInDays": 90}]


def test_lifecycle_values_are_configurable():
    # GIVEN a bucket with its own lifecycle values
    stack = cdk.Stack()
    key = cdk.aws_kms.Key(stack, "Key")
    SecureBucket(stack, "Data", encryption_key=key, lifecycle=Lifecycle(
        noncurrent_version_expiry_days=10, abort_incomplete_upload_days=2,
        expirations=(ObjectExpiry(prefix="tmp/", days=3),)))
    # THEN the template carries them
    rules = data_bucket_rules(Template.from_stack(stack))
    (rules,) = rules.values()
    assert whole_bucket_rule(rules)["NoncurrentVersionExpiration"] == {"NoncurrentDays": 10}
    assert whole_bucket_rule(rules)["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    assert {"Status": "Enabled", "Prefix": "tmp/", "ExpirationInDays": 3} in rules


def test_non_positive_days_are_refused_with_every_problem_named():
    with pytest.raises(ValueError, match=r"noncurrent_version_expiry_days.*abort_incomplete_upload_days.*'tmp/'"):
        Lifecycle(noncurrent_version_expiry_days=0, abort_incomplete_upload_days=-1,
                  expirations=(ObjectExpiry(prefix="tmp/", days=0),))
