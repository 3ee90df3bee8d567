"""The public webhook endpoint: REST API -> ingest function.

Authentication is in the function, not the gateway: Ignition signs each body (HMAC-SHA256 or a
shared token, per client config), which API Gateway cannot verify. The gateway adds what it can:
throttling, an access log, and cheap edge checks: the signature header is present and a JSON
body is a JSON object (API Gateway answers 400 otherwise, before any Lambda runs).

Body size: API Gateway's hard limit is 10 MB and Lambda's synchronous payload limit 6 MB; the
ingest function enforces the configured ``runtime.ignition.webhook.max_body_bytes`` (default
256 KB) and answers 413 above it.
"""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_apigateway as apigateway
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import ClientConfig
from infra.functions import log_retention
from infra.nag import acknowledge

STAGE_NAME = "v1"

_SIGNED_BODY = (
    "Webhook callers are not AWS principals or Cognito users: Ignition authenticates each request by "
    "signing the body (HMAC-SHA256 or shared token, verified in the ingest function against the "
    "ignition-webhook secret); unsigned requests are rejected at the edge by the required header."
)


class WebhookApi(Construct):
    """``POST /webhooks/ignition`` today; ``add_webhook`` is the place for ``POST /webhooks/xero``."""

    def __init__(self, scope: Construct, construct_id: str, *, config: ClientConfig) -> None:
        super().__init__(scope, construct_id)
        self._config = config
        access_logs = logs.LogGroup(
            self,
            "AccessLogs",
            retention=log_retention(config.log_retention_days),
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.rest_api = apigateway.RestApi(
            self,
            "RestApi",
            rest_api_name=f"{config.stack_name}-webhooks",
            description=f"Ignition -> Xero webhooks ({config.name})",
            endpoint_types=[apigateway.EndpointType.REGIONAL],
            # The account-wide API Gateway CloudWatch role is a singleton per account and region;
            # creating it here would clash between two clients in one account.
            cloud_watch_role=False,
            deploy_options=apigateway.StageOptions(
                stage_name=STAGE_NAME,
                throttling_rate_limit=config.api.throttle_rate_limit,
                throttling_burst_limit=config.api.throttle_burst_limit,
                access_log_destination=apigateway.LogGroupLogDestination(access_logs),
                access_log_format=apigateway.AccessLogFormat.json_with_standard_fields(
                    caller=False,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=False,
                ),
                tracing_enabled=config.tracing,
            ),
        )
        self.webhooks = self.rest_api.root.add_resource("webhooks")
        acknowledge(
            self.rest_api,
            "APIG2",
            "No request validation at the edge on purpose: a missing signature must get the function's "
            "401 (and be counted), and an authentic body that is not a valid webhook must be quarantined "
            "for replay, not refused by API Gateway with nothing kept. The function validates everything.",
        )
        acknowledge(self.rest_api, "APIG4", _SIGNED_BODY)
        acknowledge(self.rest_api, "COG4", _SIGNED_BODY)
        acknowledge(
            self.rest_api,
            "APIG3",
            "No WAF: the endpoint accepts only signed webhook bodies from one sender, stage throttling "
            "caps the rate, and a web ACL would cost more than the whole integration.",
        )
        acknowledge(
            self.rest_api,
            "APIG6",
            "Execution logging needs the account-wide API Gateway CloudWatch role (one per account and "
            "region, shared by every client stack); access logs are on and the function logs each request.",
        )

    def add_webhook(self, path: str, handler: lambda_.IFunction) -> apigateway.Resource:
        """``POST /webhooks/<path>`` -> ``handler`` (proxy integration); the handler verifies.

        ``POST /webhooks/xero`` plugs in here when Xero webhooks arrive.
        """
        resource = self.webhooks.add_resource(path)
        resource.add_method("POST", apigateway.LambdaIntegration(handler, proxy=True))
        return resource

    def url_for(self, resource: apigateway.Resource) -> str:
        return self.rest_api.url_for_path(resource.path)
