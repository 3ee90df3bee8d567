"""The five secrets the engineer fills after the first deployment. No value is ever in code or
in the template: four are created empty, the Ignition webhook secret gets a random placeholder."""

from __future__ import annotations

from aws_cdk import CfnResource, RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge

_NO_ROTATION = (
    "No Secrets Manager rotation Lambda: OAuth token sets are rotated by the sync and reconcile "
    "functions on every refresh, and the Xero client credentials and the Ignition and Xero webhook "
    "signing keys are issued by those services and changed there by a person (see docs/deploy.md)."
)


class IntegrationSecrets(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, client_name: str, ignition_mcp: bool = False
    ) -> None:
        super().__init__(scope, construct_id)
        self._prefix = f"ignition-xero-sync/{client_name}"
        # Literal names (known at synth): shorter env vars and outputs than parsing the ARN.
        self.names: dict[str, str] = {}
        self.xero_client = self._secret(
            "XeroClient", "xero-client", 'Xero app credentials: {"client_id": "...", "client_secret": "..."}'
        )
        self.xero_token = self._secret(
            "XeroToken", "xero-token", "Xero token set; written by the connect command and rotated by sync"
        )
        self.ignition_webhook = self._secret(
            "IgnitionWebhook",
            "ignition-webhook",
            "Ignition webhook signing secret (random placeholder; replace it if Ignition issues one)",
            generated=True,
        )
        self.ignition_api = self._secret(
            "IgnitionApi", "ignition-api", "Ignition Reporting API client credentials and token set"
        )
        # Xero generates the webhook key when the webhook is created in its developer portal; the
        # engineer pastes it here (optionally with the tenant id, see shared.xero.webhooks).
        self.xero_webhook = self._secret(
            "XeroWebhook", "xero-webhook", "Xero webhook signing key (from the Xero app's Webhooks page)"
        )
        # Only where runtime.xero_to_ignition is enabled (a secret costs every month): the Ignition
        # user's MCP token set and the MCP OAuth client's credentials (connect ignition-mcp).
        self.ignition_mcp: secretsmanager.Secret | None = None
        if ignition_mcp:
            self.ignition_mcp = self._secret(
                "IgnitionMcp", "ignition-mcp", "Ignition MCP client credentials and the user's token set"
            )
        acknowledge(self, "SMG4", _NO_ROTATION)

    def _secret(
        self, construct_id: str, suffix: str, description: str, *, generated: bool = False
    ) -> secretsmanager.Secret:
        secret = secretsmanager.Secret(
            self,
            construct_id,
            # Named from the client so an engineer can find and fill it; unique per client.
            secret_name=self.names.setdefault(construct_id, f"{self._prefix}/{suffix}"),
            description=description,
            generate_secret_string=secretsmanager.SecretStringGenerator(
                password_length=48, exclude_punctuation=True
            )
            if generated
            else None,
            # Credentials and the OAuth connection survive a stack deletion (re-authorising a
            # client's Xero organisation needs one of their admins).
            removal_policy=RemovalPolicy.RETAIN,
        )
        if not generated:
            # The L2 always asks CloudFormation to generate a random value; without one the secret
            # is created empty, which the functions read as "not connected yet" (a clear error)
            # rather than as a malformed value.
            resource = secret.node.default_child
            assert isinstance(resource, CfnResource)
            resource.add_property_deletion_override("GenerateSecretString")
        return secret

    @property
    def all(self) -> dict[str, secretsmanager.Secret]:
        return {
            "XeroClient": self.xero_client,
            "XeroToken": self.xero_token,
            "IgnitionWebhook": self.ignition_webhook,
            "IgnitionApi": self.ignition_api,
            "XeroWebhook": self.xero_webhook,
            **({"IgnitionMcp": self.ignition_mcp} if self.ignition_mcp is not None else {}),
        }
