"""The real-time stack: endpoint, autoscaling, data capture, alarms in µs, least-privilege role."""
from __future__ import annotations

import json
import tarfile

import pytest
from aws_cdk.assertions import Match

from stacks.deployment import deployment_from_context
from tests.conftest import build_app, cli_context
from tests.context import only_pattern

DEPLOYMENT = deployment_from_context(cli_context())
CONFIG = DEPLOYMENT.config
ENDPOINT_NAME = DEPLOYMENT.endpoint_name
#: The default template deploys one model: the variants that serve the main model.
VARIANTS = CONFIG.realtime.active_variants(has_candidate=False)


def resources(template, type_name: str) -> dict:
    return template.find_resources(type_name)


def test_endpoint_has_a_fixed_name(realtime_template):
    # THEN alarms can name the endpoint without a dependency cycle
    realtime_template.has_resource_properties("AWS::SageMaker::Endpoint", {"EndpointName": ENDPOINT_NAME})


def test_every_variant_scales_on_invocations_per_instance(realtime_template):
    # GIVEN the default autoscaling config (1..10 instances, 1000 invocations/instance/minute)
    scaling = CONFIG.realtime.autoscaling
    for variant in VARIANTS:
        # THEN each variant is a scalable target with those limits
        realtime_template.has_resource_properties("AWS::ApplicationAutoScaling::ScalableTarget", {
            "ResourceId": f"endpoint/{ENDPOINT_NAME}/variant/{variant.name}",
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
            "ServiceNamespace": "sagemaker",
            "MinCapacity": scaling.min_capacity, "MaxCapacity": scaling.max_capacity})
    # AND target tracking keeps invocations per instance at the target, with the configured cooldowns
    realtime_template.resource_properties_count_is("AWS::ApplicationAutoScaling::ScalingPolicy", {
        "PolicyType": "TargetTrackingScaling",
        "TargetTrackingScalingPolicyConfiguration": {
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "TargetValue": scaling.invocations_per_instance,
            "ScaleInCooldown": scaling.scale_in_cooldown_s, "ScaleOutCooldown": scaling.scale_out_cooldown_s}},
        len(VARIANTS))


def test_latency_alarm_compares_p99_in_microseconds(realtime_template):
    # GIVEN a 500 ms p99 limit  THEN every variant's alarm compares ModelLatency p99 with 500000 µs
    threshold_us = CONFIG.realtime.alarms.latency_p99_ms * 1000
    for variant in VARIANTS:
        realtime_template.has_resource_properties("AWS::CloudWatch::Alarm", {
            "MetricName": "ModelLatency", "Namespace": "AWS/SageMaker", "ExtendedStatistic": "p99",
            "Threshold": threshold_us, "ComparisonOperator": "GreaterThanThreshold",
            "Dimensions": Match.array_with([{"Name": "VariantName", "Value": variant.name}]),
            "AlarmActions": [{"Ref": Match.string_like_regexp(r"^AlertsTopic")}]})


def test_5xx_alarm_sums_per_five_minutes_with_both_dimensions(realtime_template):
    for variant in VARIANTS:
        realtime_template.has_resource_properties("AWS::CloudWatch::Alarm", {
            "MetricName": "Invocation5XXErrors", "Statistic": "Sum", "Period": 300,
            "Threshold": CONFIG.realtime.alarms.errors_5xx_per_5min,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "Dimensions": Match.array_with([{"Name": "EndpointName", "Value": ENDPOINT_NAME},
                                            {"Name": "VariantName", "Value": variant.name}])})


def test_alarms_notify_an_encrypted_topic(realtime_template):
    realtime_template.has_resource_properties("AWS::SNS::Topic", {"KmsMasterKeyId": Match.any_value()})
    # An alarm rolled up into a composite that notifies (Model Monitor's per-feature drift) pages through it.
    rolled_up = json.dumps([composite["Properties"]["AlarmRule"] for composite in
                            resources(realtime_template, "AWS::CloudWatch::CompositeAlarm").values()
                            if composite["Properties"].get("AlarmActions")])
    for logical_id, alarm in resources(realtime_template, "AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"].get("AlarmActions") or f'"{logical_id}"' in rolled_up, \
            f"alarm without action: {alarm['Properties']['AlarmName']}"


def test_data_capture_goes_to_an_encrypted_retained_tls_only_bucket(realtime_template):
    # THEN capture records inputs and outputs at the configured sampling rate, KMS-encrypted
    realtime_template.has_resource_properties("AWS::SageMaker::EndpointConfig", {"DataCaptureConfig": {
        "EnableCapture": True,
        "InitialSamplingPercentage": CONFIG.realtime.data_capture.sampling_percent,
        "KmsKeyId": Match.any_value(),
        "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
        "DestinationS3Uri": Match.any_value()}})
    # AND the bucket is KMS-encrypted, versioned, blocks public access and is retained on stack deletion
    buckets = resources(realtime_template, "AWS::S3::Bucket")
    kms_buckets = {name: bucket for name, bucket in buckets.items()
                   if "aws:kms" in json.dumps(bucket["Properties"].get("BucketEncryption"))}
    assert kms_buckets
    for bucket in kms_buckets.values():
        assert bucket["DeletionPolicy"] == "Retain"
        assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
        assert bucket["Properties"]["PublicAccessBlockConfiguration"]["RestrictPublicBuckets"] is True
    # AND its policy denies any request not made over TLS
    realtime_template.has_resource_properties("AWS::S3::BucketPolicy", {"PolicyDocument": {
        "Statement": Match.array_with([Match.object_like({
            "Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})])}})


def test_model_container_is_told_where_inference_py_is(realtime_template):
    realtime_template.has_resource_properties("AWS::SageMaker::Model", {
        "EnableNetworkIsolation": True,
        "PrimaryContainer": {
            "Environment": Match.object_like({"SAGEMAKER_PROGRAM": "inference.py",
                                              "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}),
            "Image": {"Fn::Join": ["", Match.array_with([
                Match.string_like_regexp(r"\.dkr\.ecr\."),
                Match.string_like_regexp(r"/sagemaker-scikit-learn:1\.2-1-cpu-py3")])]}}})


def test_execution_role_has_no_managed_policies_and_names_its_resources(realtime_template):
    # GIVEN the SageMaker execution role
    roles = {name: role for name, role in resources(realtime_template, "AWS::IAM::Role").items()
             if "sagemaker.amazonaws.com" in json.dumps(role["Properties"]["AssumeRolePolicyDocument"])}
    assert roles
    for role in roles.values():
        # THEN no managed policy (AmazonSageMakerFullAccess in particular) is attached
        assert "ManagedPolicyArns" not in role["Properties"]
    # AND "*" appears in its policies only for actions that support no resource-level permission
    role_refs = [{"Ref": name} for name in roles]
    policies = [policy for policy in resources(realtime_template, "AWS::IAM::Policy").values()
                if any(ref in policy["Properties"]["Roles"] for ref in role_refs)]
    assert policies
    for policy in policies:
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            if statement["Resource"] == "*":
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert set(actions) <= {"ecr:GetAuthorizationToken", "cloudwatch:PutMetricData"}, statement


def test_model_archive_is_reproducible_and_holds_the_code(tmp_path):
    # GIVEN two independent packagings of the same artifacts
    from ml_constructs.common.model_package import ModelPackage
    import aws_cdk as cdk

    paths = []
    for attempt in range(2):
        stack = cdk.Stack(cdk.App(), f"Probe{attempt}")
        package = ModelPackage(stack, "Package", artifacts_dir=CONFIG.model.artifacts_dir,
                               build_dir=tmp_path / f"build{attempt}")
        paths.append(package.archive_path)
    # THEN the archives are byte-identical (the asset hash is stable across synths)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    # AND the archive has what the container loads
    with tarfile.open(paths[0]) as archive:
        names = set(archive.getnames())
    assert {"model.joblib", "metadata.json", "code/inference.py"} <= names


def test_asset_hash_is_stable_across_synths():
    # GIVEN two separate synths of the real-time stack
    import re

    from aws_cdk.assertions import Template

    def asset_hashes() -> set[str]:
        _, stacks = build_app(overrides=only_pattern("realtime"))
        return set(re.findall(r"[0-9a-f]{64}", json.dumps(Template.from_stack(stacks["realtime"]).to_json())))

    first, second = asset_hashes(), asset_hashes()
    # THEN the model asset hashes are the same (no redeploy without a change)
    assert first and first == second


def test_framework_mismatch_fails_synth_with_a_clear_message(tmp_path):
    # GIVEN metadata saying the model was pickled with scikit-learn 1.4.2
    from ml_constructs.common.model_metadata import ModelArtifactsError, ModelMetadata
    from ml_constructs.common.model_package import check_framework_compatibility

    source = ModelMetadata.load(CONFIG.model.artifacts_dir)
    raw = {**source.raw, "library_versions": {**source.raw["library_versions"], "scikit_learn": "1.4.2"}}
    (tmp_path / "metadata.json").write_text(json.dumps(raw))
    # WHEN checked against framework 1.2-1  THEN synth stops and says what to do
    with pytest.raises(ModelArtifactsError, match=r"built with scikit-learn 1\.4\.2, but framework_version 1\.2-1 "
                                                  r"serves scikit-learn 1\.2\.1"):
        check_framework_compatibility(ModelMetadata.load(tmp_path), "1.2-1")


def test_missing_artifacts_say_how_to_build_them(tmp_path):
    from ml_constructs.common.model_metadata import ModelArtifactsError, ModelMetadata

    with pytest.raises(ModelArtifactsError, match="make model"):
        ModelMetadata.load(tmp_path / "nowhere")


def test_image_account_is_resolved_at_synth_for_a_concrete_region():
    # GIVEN a stack pinned to eu-west-1
    _, stacks = build_app(overrides={"deploy.target.region": "eu-west-1", "deploy.target.account": "123456789012",
                                     **only_pattern("realtime")})
    from aws_cdk.assertions import Template

    template = json.dumps(Template.from_stack(stacks["realtime"]).to_json())
    # THEN the image URI names that region's registry account (SDK fact) and no mapping is needed
    assert "141502667606.dkr.ecr.eu-west-1" in template


def test_unsupported_region_fails_with_the_supported_list():
    with pytest.raises(ValueError, match=r"not published in region 'xx-mars-1'; supported regions: af-south-1"):
        build_app(overrides={"deploy.target.region": "xx-mars-1", "deploy.target.account": "123456789012"})


def test_cloudwatch_may_publish_to_the_tls_only_topic(realtime_template):
    # GIVEN the topic policy that enforce_ssl writes (it replaces SNS's default policy)
    # THEN it still lets CloudWatch publish, for this account's alarms only
    realtime_template.has_resource_properties("AWS::SNS::TopicPolicy", {"PolicyDocument": {
        "Statement": Match.array_with([Match.object_like({
            "Effect": "Allow", "Action": "sns:Publish", "Principal": {"Service": "cloudwatch.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}},
                          "ArnLike": {"aws:SourceArn": Match.any_value()}}})])}})


def test_variants_mixing_nvme_and_ebs_instances_are_refused():
    # GIVEN one NVMe-backed and one EBS-backed variant (one EndpointConfig KMS setting cannot fit both)
    variants = ('[{"name": "v1", "instance_type": "ml.m5d.large", "initial_instance_count": 2},'
                ' {"name": "v2", "instance_type": "ml.m5.large", "initial_instance_count": 2}]')
    # WHEN synthesized  THEN the error says which kinds must not be mixed
    with pytest.raises(ValueError, match=r"deploy\.realtime\.variants: instance types with local NVMe storage .* cannot be mixed with EBS-backed ones"):
        build_app(overrides={"deploy.realtime.variants": variants})


def test_nvme_instances_get_no_volume_key():
    # GIVEN only NVMe-backed variants  WHEN synthesized
    from aws_cdk.assertions import Template

    variants = ('[{"name": "v1", "instance_type": "ml.m5d.large", "initial_instance_count": 2},'
                ' {"name": "v2", "instance_type": "ml.m5d.large", "initial_instance_count": 2}]')
    _, stacks = build_app(overrides={"deploy.realtime.variants": variants, **only_pattern("realtime")})
    config = Template.from_stack(stacks["realtime"]).find_resources("AWS::SageMaker::EndpointConfig")
    # THEN the endpoint config carries no KmsKeyId, which SageMaker would refuse for these types
    assert [c["Properties"].get("KmsKeyId") for c in config.values()] == [None]


def test_every_log_group_is_encrypted_with_the_stacks_data_key(realtime_template):
    # GIVEN the real-time stack's log groups (update guard and the built-in drift job; the model-monitor engine adds
    # the baseline handlers' and provider's)
    log_groups = realtime_template.find_resources("AWS::Logs::LogGroup")
    assert len(log_groups) == 2
    # THEN each is encrypted with the stack's own KMS key, like the other stacks' log groups
    (key_id,) = realtime_template.find_resources("AWS::KMS::Key")
    for logical_id, log_group in log_groups.items():
        assert log_group["Properties"].get("KmsKeyId") == {"Fn::GetAtt": [key_id, "Arn"]}, logical_id
