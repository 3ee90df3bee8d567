"""A light harness for fuzzing the ingest Lambda in-process against moto's server.

Each configuration gets its own copy of the stack in moto (built from the synthesized template,
the handler running under the ingest function's role with IAM enforced), and its own ingest
handler built by the factory of ``functions/ingest/handler.py`` from that configuration's
environment (as a cold start would), so thousands of requests run in seconds without HTTP in
between. The archive and the queue
the handler writes to are wrapped in recorders: every write still reaches moto, and each example
can assert exactly what it caused. Tests then check the real bucket and queue agree.

If a sandbox in this process already points boto3 at a moto server (the integration suite's), the
harness uses that server with its own resource names and leaves the process's environment alone;
otherwise it starts its own server and restores everything when done.
"""

from __future__ import annotations

import base64
import json
import os
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from sandbox.aws import MotoServer, create_resources, point_boto3_at
from sandbox.iam import Enforcer, acting_as, register
from sandbox.runtime import LambdaContext
from shared import aws
from shared.config import IngestSettings, IntegrationConfig, WebhookVerification
from shared.ignition.webhook import sign_webhook
from shared.models.events import SyncEvent

if TYPE_CHECKING:
    from functions.ingest.handler import IngestHandler

_AWS_KEYS = (
    "AWS_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
)

# What each fuzz test sent, by class; printed at the end of the session (and per test).
SENT: Counter[str] = Counter()


@dataclass
class Put:
    key: str
    body: bytes
    metadata: dict[str, str]


@dataclass
class RecordingArchive:
    inner: Any
    puts: list[Put] = field(default_factory=list)

    def put(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        self.inner.put(key, body, metadata)
        self.puts.append(Put(key, body, dict(metadata)))


@dataclass
class RecordingQueue:
    inner: Any
    sent: list[SyncEvent] = field(default_factory=list)

    def send(self, event: SyncEvent) -> None:
        self.inner.send(event)
        self.sent.append(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass(frozen=True)
class Response:
    status: int
    body: dict[str, Any]


class IngestHarness:
    """One configured ingest function: post requests, see what they stored and queued."""

    def __init__(self, name: str, webhook: WebhookVerification) -> None:
        self.name = name
        self.webhook = webhook
        self.secret = f"fuzz-secret-{uuid.uuid4().hex}"
        prefix = f"fuzz-{name}-{uuid.uuid4().hex[:8]}"
        self.resources = create_resources(
            prefix,
            visibility_timeout=30,
            secrets={
                "xero-client": "{}",
                "xero-token": "{}",
                "ignition-webhook": self.secret,
                "ignition-api": "{}",
            },
        )
        # The ingest function's variables as the template sets them, and its role enforced.
        self.environment = {
            **self.resources.functions["ingest"].environment,
            "CLIENT_NAME": prefix,
            "INTEGRATION_CONFIG": IntegrationConfig.model_validate(
                {"ignition": {"webhook": webhook.model_dump()}}
            ).model_dump_json(),
            "POWERTOOLS_SERVICE_NAME": "ingest-fuzz",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_METRICS_NAMESPACE": f"IgnitionXeroSync/{prefix}",
        }
        enforcer = Enforcer.for_stack(self.resources.stack, self.resources.functions)
        register(enforcer)
        self.role = enforcer.roles["ingest"]
        self.ingest = self._cold_start()
        self.archive = RecordingArchive(self.ingest.intake.archive)
        self.queue = RecordingQueue(self.ingest.intake.queue)
        self.ingest.intake.archive = self.archive
        self.ingest.intake.queue = self.queue

    def _cold_start(self) -> IngestHandler:
        """The handler built from this configuration's environment, as a cold start builds it."""
        # Powertools' switches are the process's: a sandbox's, when one runs here, are left alone.
        for key, value in self.environment.items():
            if key.startswith("POWERTOOLS_"):
                os.environ.setdefault(key, value)
        from functions.ingest.handler import IngestHandler  # after the switches: its Logger reads them

        settings = IngestSettings.from_env(self.environment)
        return IngestHandler(settings, IntegrationConfig.from_env(self.environment))

    # -- requests --------------------------------------------------------------------------------

    def sign(self, body: bytes, at: datetime | None = None, secret: str | None = None) -> dict[str, str]:
        return sign_webhook(body, secret or self.secret, self.webhook, at or datetime.now(UTC))

    def event(self, body: bytes, headers: Mapping[str, str], *, as_base64: bool = False) -> dict[str, Any]:
        """An API Gateway REST proxy event, as the sandbox's front (and AWS) builds it."""
        if as_base64:
            text, encoded = base64.b64encode(body).decode("ascii"), True
        else:
            try:
                text, encoded = body.decode("utf-8"), False
            except UnicodeDecodeError:
                text, encoded = base64.b64encode(body).decode("ascii"), True
        return {
            "resource": "/webhooks/ignition",
            "path": "/webhooks/ignition",
            "httpMethod": "POST",
            "headers": dict(headers),
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "body": text,
            "isBase64Encoded": encoded,
            "requestContext": {"requestId": str(uuid.uuid4()), "stage": "v1", "httpMethod": "POST"},
        }

    def invoke(self, event: dict[str, Any]) -> Response:
        with acting_as(self.role):
            response = self.ingest(event, LambdaContext("ingest", 10))
        return Response(int(response["statusCode"]), json.loads(response["body"]))

    def post(self, body: bytes, headers: Mapping[str, str], *, as_base64: bool = False) -> Response:
        return self.invoke(self.event(body, headers, as_base64=as_base64))

    def mark(self) -> tuple[int, int]:
        return len(self.archive.puts), len(self.queue.sent)

    # -- what is really in moto ------------------------------------------------------------------

    def s3_keys(self) -> list[str]:
        keys: list[str] = []
        for page in aws.client("s3").get_paginator("list_objects_v2").paginate(Bucket=self.resources.bucket):
            keys += [item["Key"] for item in page.get("Contents", [])]
        return keys

    def s3_object(self, key: str) -> tuple[bytes, dict[str, str]]:
        obj = aws.client("s3").get_object(Bucket=self.resources.bucket, Key=key)
        return obj["Body"].read(), obj.get("Metadata", {})

    def drain_queue(self) -> list[dict[str, Any]]:
        """Receive and delete every message in the sync queue; their bodies."""
        sqs = aws.client("sqs")
        bodies: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.resources.queue_url, MaxNumberOfMessages=10, VisibilityTimeout=30
            ).get("Messages", [])
            if not batch:
                return bodies
            for message in batch:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.resources.queue_url, ReceiptHandle=message["ReceiptHandle"])


def _moto_in_use() -> bool:
    url = os.environ.get("AWS_ENDPOINT_URL")
    if not url:
        return False
    try:
        httpx.get(f"{url}/moto-api/", timeout=1.0)
    except httpx.TransportError:
        return False
    return True


@pytest.fixture(scope="session")
def fuzz_aws() -> Iterator[None]:
    if _moto_in_use():
        yield
        return
    saved = {key: os.environ.get(key) for key in _AWS_KEYS}
    server = MotoServer()
    server.start()
    point_boto3_at(server.url)
    try:
        yield
    finally:
        from aws_lambda_powertools.utilities import parameters

        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        aws.reset_clients()
        # Powertools keeps one Secrets Manager client per process: forget ours (it points here).
        parameters.clear_caches()
        server.stop()


PLAIN = WebhookVerification()  # hex HMAC in X-Ignition-Signature, no timestamp: the default
TIMESTAMPED = WebhookVerification(
    encoding="base64",
    prefix="sha256=",
    timestamp_header="X-Ignition-Timestamp",
    max_age_seconds=300,
    max_body_bytes=8_192,
)


@pytest.fixture(scope="session")
def plain_ingest(fuzz_aws: None) -> IngestHarness:
    return IngestHarness("plain", PLAIN)


@pytest.fixture(scope="session")
def timestamped_ingest(fuzz_aws: None) -> IngestHarness:
    return IngestHarness("timestamped", TIMESTAMPED)


@pytest.fixture(params=["plain", "timestamped"])
def ingest(request: pytest.FixtureRequest) -> IngestHarness:
    harness: IngestHarness = request.getfixturevalue(f"{request.param}_ingest")
    return harness


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SENT:
        terminalreporter.section("ingest fuzz: requests sent by class")
        for name, count in sorted(SENT.items()):
            terminalreporter.write_line(f"{count:7d}  {name}")
        terminalreporter.write_line(f"{sum(SENT.values()):7d}  total")
