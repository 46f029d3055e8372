"""The SNS topic every alarm of a stack notifies: KMS-encrypted, TLS-only, optional email."""
from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as event_targets
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

    def rule_target(self, scope: Construct, construct_id: str, *, rule_name: str,
                    message: events.RuleTargetInput) -> event_targets.SnsTopic:
        """An EventBridge target publishing ``message`` to the topic through a role only rule ``rule_name`` may use.

        CDK's default SNS target instead lets ``events.amazonaws.com`` publish through the topic policy and (for
        an encrypted topic) the key policy with no condition: any account's rule aimed at this topic could page.
        Here neither policy names EventBridge; the role trusts EventBridge only on behalf of this account's rule
        (the rule's name is fixed so its ARN is known without a dependency cycle), and its identity policy
        allows sns:Publish on this topic and the data-key actions SNS needs on its key.
        """
        stack = cdk.Stack.of(scope)
        rule_arn = stack.format_arn(service="events", resource="rule", resource_name=rule_name)
        role = iam.Role(scope, construct_id, description=f"Lets EventBridge rule {rule_name} publish to the alert topic",
                        assumed_by=iam.ServicePrincipal("events.amazonaws.com", conditions={
                            "StringEquals": {"aws:SourceAccount": stack.account, "aws:SourceArn": rule_arn}}))
        self.topic.grant_publish(role)
        if self.topic.master_key is not None:
            cdk.Validations.of(role.node.find_child("DefaultPolicy").node.default_child).acknowledge(
                cdk.Acknowledgment(id="AwsSolutions-IAM5[Action::kms:GenerateDataKey*]",
                                   reason="Publishing to the KMS-encrypted alert topic needs data keys from its one "
                                          "key (CDK's grantPublish); the statement names that key only."))
        return event_targets.SnsTopic(self.topic, message=message, role=role)

    def notify_on(self, *alarms: cloudwatch.IAlarm, ok_too: bool = True) -> None:
        """Send ALARM (and OK, so the pager clears) transitions of ``alarms`` to the topic."""
        for alarm in alarms:
            alarm.add_alarm_action(self.alarm_action)
            if ok_too:
                alarm.add_ok_action(self.alarm_action)
