"""cdk-nag as a synth gate, and the one way this app acknowledges a finding (with a reason)."""

from __future__ import annotations

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


def add_security_checks(app: App) -> None:
    """AwsSolutions rules run during synthesis; any unacknowledged finding fails it.

    cdk-nag 3 is a CDK validation plugin (the v2 ``Aspects`` recipe crashes). Acknowledgements are
    also written into the template metadata so the reasons travel with what is deployed.
    """
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, write_suppressions_to_cloud_formation=True))


def acknowledge(scope: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge ``AwsSolutions-<rule>`` on ``scope`` and everything below it."""
    if len(reason) < 40:
        raise ValueError(f"the reason for acknowledging {rule} must explain why (got {reason!r})")
    Validations.of(scope).acknowledge(Acknowledgment(id=f"AwsSolutions-{rule}", reason=reason))
