"""The SNS topic every alarm of a stack notifies: KMS-encrypted, TLS-only, optional email."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class AlertTopic(Construct):
    """An encrypted topic that CloudWatch alarms (and other AWS services) may publish to."""

    def __init__(self, scope: Construct, construct_id: str, *, encryption_key: kms.IKey,
                 email: str | None = None) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(self, "Topic", master_key=encryption_key, enforce_ssl=True)
        # enforce_ssl writes a topic policy, and a topic policy replaces SNS's default one (which let the
        # account's services publish): CloudWatch must now be allowed by name, for this account's alarms only.
        stack = cdk.Stack.of(self)
        self.topic.add_to_resource_policy(iam.PolicyStatement(
            sid="AllowThisAccountsAlarms", actions=["sns:Publish"], resources=[self.topic.topic_arn],
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            conditions={"StringEquals": {"aws:SourceAccount": stack.account},
                        "ArnLike": {"aws:SourceArn": stack.format_arn(
                            service="cloudwatch", resource="alarm", resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME)}}))
        # CloudWatch publishes to an encrypted topic only if the key lets it make data keys.
        encryption_key.add_to_resource_policy(iam.PolicyStatement(
            actions=["kms:Decrypt", "kms:GenerateDataKey*"],
            principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
            resources=["*"]))  # in a key policy "*" means this key
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self.alarm_action = cloudwatch_actions.SnsAction(self.topic)

    def notify_on(self, *alarms: cloudwatch.IAlarm, ok_too: bool = True) -> None:
        """Send ALARM (and OK, so the pager clears) transitions of ``alarms`` to the topic."""
        for alarm in alarms:
            alarm.add_alarm_action(self.alarm_action)
            if ok_too:
                alarm.add_ok_action(self.alarm_action)
