"""The context the test suite synthesizes with, pinned here so that tests do not depend on cdk.json.

A user points cdk.json at their own model (and their own choices); the suite keeps testing the demo model
with these settings and stays green. ``FEATURE_FLAGS`` are the CDK feature flags the app runs with (a test
checks that cdk.json still carries the same ones when it has them).
"""
from __future__ import annotations

import copy
from typing import Any

DEMO_MODEL = "artifacts/fraud-detector"
DEMO_CANDIDATE = "artifacts/fraud-detector-v2"

#: The demo's choices: one model on variant v1; a candidate, when tests pass one, on v2 at 10% of traffic.
DEPLOY: dict[str, Any] = {
    "model": {"artifacts_dir": DEMO_MODEL, "candidate_dir": None},
    "alerts": {"email": None},
    "target": {"account": None, "region": None},
    "realtime": {"variants": [
        {"name": "v1", "model": "main", "instance_type": "ml.m5.large", "initial_instance_count": 2,
         "initial_weight": 0.9},
        {"name": "v2", "model": "candidate", "instance_type": "ml.m5.large", "initial_instance_count": 2,
         "initial_weight": 0.1}]},
    "environments": {
        "staging": {"target": {"account": "111111111111", "region": "eu-west-1"},
                    "realtime": {"autoscaling": {"max_capacity": 4}}},
        "production": {"target": {"account": "222222222222", "region": "eu-west-1"},
                       "batch": {"job_name_prefix": "fraud-detector-prod"}},
    },
}

#: ``-c deploy.model.candidate_dir=...``: what canary and shadow tests add to deploy the demo's second model.
WITH_CANDIDATE = {"deploy.model.candidate_dir": DEMO_CANDIDATE}

FEATURE_FLAGS: dict[str, Any] = {
    '@aws-cdk-containers/ecs-service-extensions:enableDefaultLogDriver': True,
    '@aws-cdk/aws-apigateway:authorizerChangeDeploymentLogicalId': True,
    '@aws-cdk/aws-apigateway:disableCloudWatchRole': True,
    '@aws-cdk/aws-apigateway:logGroupDestinationArnWithoutWildcard': True,
    '@aws-cdk/aws-apigateway:requestValidatorUniqueId': True,
    '@aws-cdk/aws-appsync:appSyncGraphQLAPIScopeLambdaPermission': True,
    '@aws-cdk/aws-appsync:useArnForSourceApiAssociationIdentifier': True,
    '@aws-cdk/aws-autoscaling:generateLaunchTemplateInsteadOfLaunchConfig': True,
    '@aws-cdk/aws-batch:defaultToAL2023': True,
    '@aws-cdk/aws-cloudfront:defaultFunctionRuntimeV2_0': True,
    '@aws-cdk/aws-cloudfront:defaultViewerProtocolPolicyRedirectToHttps': True,
    '@aws-cdk/aws-cloudwatch-actions:changeLambdaPermissionLogicalIdForLambdaAction': True,
    '@aws-cdk/aws-codedeploy:removeAlarmsFromDeploymentGroup': True,
    '@aws-cdk/aws-codepipeline-actions:useNewDefaultBranchForCodeCommitSource': True,
    '@aws-cdk/aws-codepipeline:crossAccountKeyAliasStackSafeResourceName': True,
    '@aws-cdk/aws-codepipeline:crossAccountKeysDefaultValueToFalse': True,
    '@aws-cdk/aws-codepipeline:defaultPipelineTypeToV2': True,
    '@aws-cdk/aws-dynamodb:resourcePolicyPerReplica': True,
    '@aws-cdk/aws-dynamodb:retainTableReplica': True,
    '@aws-cdk/aws-ec2:bastionHostUseAmazonLinux2023ByDefault': True,
    '@aws-cdk/aws-ec2:ebsDefaultGp3Volume': True,
    '@aws-cdk/aws-ec2:ec2SumTImeoutEnabled': True,
    '@aws-cdk/aws-ec2:launchTemplateDefaultUserData': True,
    '@aws-cdk/aws-ec2:requirePrivateSubnetsForEgressOnlyInternetGateway': True,
    '@aws-cdk/aws-ec2:restrictDefaultSecurityGroup': True,
    '@aws-cdk/aws-ec2:uniqueImdsv2TemplateName': True,
    '@aws-cdk/aws-ecs-patterns:secGroupsDisablesImplicitOpenListener': True,
    '@aws-cdk/aws-ecs-patterns:uniqueTargetGroupId': True,
    '@aws-cdk/aws-ecs:arnFormatIncludesClusterName': True,
    '@aws-cdk/aws-ecs:disableExplicitDeploymentControllerForCircuitBreaker': True,
    '@aws-cdk/aws-ecs:reduceEc2FargateCloudWatchPermissions': True,
    '@aws-cdk/aws-ecs:removeDefaultDeploymentAlarm': True,
    '@aws-cdk/aws-ecs:removeEmptyLoadBalancers': True,
    '@aws-cdk/aws-efs:denyAnonymousAccess': True,
    '@aws-cdk/aws-efs:mountTargetOrderInsensitiveLogicalId': True,
    '@aws-cdk/aws-eks:defaultToAL2023': True,
    '@aws-cdk/aws-eks:nodegroupNameAttribute': True,
    '@aws-cdk/aws-eks:useNativeOidcProvider': True,
    '@aws-cdk/aws-elasticloadbalancingV2:albDualstackWithoutPublicIpv4SecurityGroupRulesDefault': True,
    '@aws-cdk/aws-elasticloadbalancingv2:networkLoadBalancerWithSecurityGroupByDefault': True,
    '@aws-cdk/aws-elasticloadbalancingv2:usePostQuantumTlsPolicy': True,
    '@aws-cdk/aws-events:eventsTargetQueueSameAccount': True,
    '@aws-cdk/aws-events:requireEventBusPolicySid': True,
    '@aws-cdk/aws-iam:importedRoleStackSafeDefaultPolicyName': True,
    '@aws-cdk/aws-iam:minimizePolicies': True,
    '@aws-cdk/aws-iam:oidcRejectUnauthorizedConnections': True,
    '@aws-cdk/aws-kms:aliasNameRef': True,
    '@aws-cdk/aws-kms:applyImportedAliasPermissionsToPrincipal': True,
    '@aws-cdk/aws-kms:reduceCrossAccountRegionPolicyScope': True,
    '@aws-cdk/aws-lambda-nodejs:sdkV3ExcludeSmithyPackages': True,
    '@aws-cdk/aws-lambda-nodejs:useLatestRuntimeVersion': True,
    '@aws-cdk/aws-lambda:createNewPoliciesWithAddToRolePolicy': False,
    '@aws-cdk/aws-lambda:recognizeLayerVersion': True,
    '@aws-cdk/aws-lambda:useCdkManagedLogGroup': True,
    '@aws-cdk/aws-opensearchservice:enableOpensearchMultiAzWithStandby': True,
    '@aws-cdk/aws-rds:auroraClusterChangeScopeOfInstanceParameterGroupWithEachParameters': True,
    '@aws-cdk/aws-rds:databaseProxyUniqueResourceName': True,
    '@aws-cdk/aws-rds:preventRenderingDeprecatedCredentials': True,
    '@aws-cdk/aws-rds:setCorrectValueForDatabaseInstanceReadReplicaInstanceResourceId': True,
    '@aws-cdk/aws-redshift:columnId': True,
    '@aws-cdk/aws-route53-patterns:useDistribution': True,
    '@aws-cdk/aws-route53-patters:useCertificate': True,
    '@aws-cdk/aws-route53-targets:userPoolDomainNameMethodWithoutCustomResource': True,
    '@aws-cdk/aws-s3:createDefaultLoggingPolicy': True,
    '@aws-cdk/aws-s3:keepNotificationInImportedBucket': False,
    '@aws-cdk/aws-s3:publicAccessBlockedByDefault': True,
    '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': True,
    '@aws-cdk/aws-s3:setUniqueReplicationRoleName': True,
    '@aws-cdk/aws-secretsmanager:useAttachedSecretResourcePolicyForSecretTargetAttachments': True,
    '@aws-cdk/aws-signer:signingProfileNamePassedToCfn': True,
    '@aws-cdk/aws-sns-subscriptions:restrictSqsDescryption': True,
    '@aws-cdk/aws-stepfunctions-tasks:enableEmrServicePolicyV2': True,
    '@aws-cdk/aws-stepfunctions-tasks:fixRunEcsTaskPolicy': True,
    '@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2': True,
    '@aws-cdk/core:annotationsInValidationReport': True,
    '@aws-cdk/core:aspectPrioritiesMutating': True,
    '@aws-cdk/core:cfnIncludeRejectComplexResourceUpdateCreatePolicyIntrinsics': True,
    '@aws-cdk/core:checkSecretUsage': True,
    '@aws-cdk/core:defaultCrossStackReferences': 'weak',
    '@aws-cdk/core:enableAdditionalMetadataCollection': True,
    '@aws-cdk/core:enablePartitionLiterals': True,
    '@aws-cdk/core:explicitStackTags': True,
    '@aws-cdk/core:includePrefixInUniqueNameGeneration': True,
    '@aws-cdk/core:target-partitions': ['aws', 'aws-cn'],
    '@aws-cdk/core:validateAgainstDefaultRules': True,
    '@aws-cdk/core:validateSnapshotRemovalPolicy': True,
    '@aws-cdk/custom-resources:logApiResponseDataPropertyTrueDefault': False,
    '@aws-cdk/customresources:installLatestAwsSdkDefault': False,
    '@aws-cdk/s3-notifications:addS3TrustKeyPolicyForSnsSubscriptions': True
}


def pinned_context() -> dict[str, Any]:
    """A fresh copy of the pinned context (``deploy`` plus feature flags), safe to modify."""
    return copy.deepcopy({"deploy": DEPLOY, **FEATURE_FLAGS})


#: The four deployment patterns, each a ``deploy.<pattern>`` section with an ``enabled`` key.
PATTERNS = ("realtime", "batch", "edge", "serverless")


def only_pattern(pattern: str) -> dict[str, Any]:
    """``-c`` overrides that switch every other pattern off (faster synths)."""
    return {f"deploy.{other}.enabled": False for other in PATTERNS if other != pattern}
