"""The reports topic: where the reconcile function says "a report needs a person".

Separate from the alarm topic on purpose: reports go to the people who fix data (bookkeepers,
the practice manager, ``reconciliation.report_emails``), alarms to whoever runs the integration.
"""

from __future__ import annotations

from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct


class ReportTopic(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, emails: list[str]) -> None:
        super().__init__(scope, construct_id)
        # The AWS-managed aws/sns key is enough here (unlike the alarm topic): only a function in
        # this account publishes, and the key policy lets any principal of the account use it
        # through SNS. No key to pay for or manage.
        self.topic = sns.Topic(
            self,
            "Topic",
            master_key=kms.Alias.from_alias_name(self, "SnsKey", "alias/aws/sns"),
            enforce_ssl=True,
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
