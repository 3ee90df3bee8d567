"""Secrets and data: a real flow through the sandbox at DEBUG, with every log record and
everything written to stdout/stderr captured; then no token, secret, signature or Authorization
value appears anywhere, and the client's name and e-mail do not either (logs carry ids only)."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.environment import WEBHOOK_SECRET, XERO_WEBHOOK_KEY
from shared import aws
from shared.ignition.webhook import sign_webhook
from shared.store.dead_letter_queue import DeadLetter
from tests import ignition_records
from tests.integration.conftest import World

pytestmark = pytest.mark.integration

# Our code (and the functions' Powertools service logger) at DEBUG; libraries at INFO. botocore at
# DEBUG logs whole request and response bodies, Secrets Manager's included: docs/security.md says
# never to turn it on in a deployed function (AWS_LAMBDA_LOG_LEVEL / root logger at DEBUG).
PRODUCT_LOGGERS = ("shared", "functions", "sandbox", "aws_lambda_powertools")


# The emulators' own request logs are Xero's and Ignition's servers talking, not our function.
EMULATORS = ("werkzeug", "sandbox.xero_emulator", "sandbox.ignition_emulator", "sandbox.server")
_SERVER_LINE = re.compile(r'^\S+ - - \[[^\]]+\] "')


class Everything(logging.Handler):
    """Keeps each record as its message plus every attribute (extras included), so a value passed
    in ``extra=`` or an exception's text is seen whatever the formatter would print."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(EMULATORS):
            return
        text = record.getMessage()
        if record.exc_info:
            text += "\n" + logging.Formatter().formatException(record.exc_info)
        self.lines.append(text + " " + json.dumps(record.__dict__, default=str))


@pytest.fixture
def captured_logs() -> Iterator[Everything]:
    """Every logger at DEBUG into ``Everything`` (Powertools' loggers do not propagate: attach to
    each), restored afterwards."""
    handler = Everything()
    loggers = [logging.getLogger()] + [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    levels = {logger: logger.level for logger in loggers}
    for logger in loggers:
        logger.addHandler(handler)
        if logger.name.startswith(PRODUCT_LOGGERS):
            logger.setLevel(logging.DEBUG)
    # What Lambda's advanced logging controls do at INFO: every library without its own level logs.
    logging.getLogger().setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
            logger.setLevel(levels[logger])


def test_given_a_full_flow_with_refresh_and_bad_webhooks_when_logs_are_read_then_no_secrets_nor_personal_data(
    world: World, captured_logs: Everything, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a client, an invoice after an expired access token (forcing a refresh), a payment,
    slug = world.slug("logs")
    name, email = f"Fuzzington-{world.tag}, Jane", f"jane.fuzzington.{world.tag}@example.test"
    world.put_client(world.client(slug, name=name, email=email, phone="+61 400 123 987"))
    world.settle()
    world.sandbox.clock.advance(31 * 60)
    invoice = f"inv_logs_{world.tag}"
    items = [
        {
            "description": "Bookkeeping",
            "quantity": "1",
            "unit_price": {"amount": "100.00", "currency": "AUD"},
            "tax_rate": "10",
        }
    ]
    world.put_and_settle("invoices", world.invoice(invoice, slug, items, "110.00"))
    world.put_and_settle(
        "payments",
        ignition_records.payment(f"pypay_logs_{world.tag}", slug, "110.00", invoice),
    )
    # ... a forged webhook carrying the client's details, and an authentic malformed one.
    body = json.dumps(
        {
            "id": f"evt_forged_{world.tag}",
            "type": "client.updated",
            "occurred_at": "2026-11-04T00:00:00Z",
            "data": {"slug": slug, "name": name, "email": email},
        }
    ).encode()
    forged_signature = sign_webhook(body, "not-the-secret", world.sandbox.webhook)
    assert world.post_webhook(body, forged_signature).status_code == 401
    malformed = body[:-2] + b'"email": ' + email.encode() + b"}"
    signed = sign_webhook(malformed, WEBHOOK_SECRET, world.sandbox.webhook, datetime.now(UTC))
    assert world.post_webhook(malformed, signed).status_code == 400
    world.settle()

    # When every log line and everything written to the terminal is read,
    out, err = capfd.readouterr()
    terminal = [line for line in (out + err).splitlines() if not _SERVER_LINE.match(line)]
    logs = "\n".join([*captured_logs.lines, *terminal])
    assert "webhook rejected: not authentic" in logs and "authentic webhook quarantined" in logs
    assert "access token refreshed" in logs, "the flow must have refreshed a token"

    # Then no secret appears: every token either emulator ever issued, the stored token set,
    xero_tokens = world.sandbox.xero._tokens
    ignition = world.sandbox.ignition
    assert world.sandbox.resources is not None
    token_secret = json.loads(
        aws.client("secretsmanager").get_secret_value(SecretId=world.sandbox.resources.xero_token_secret)[
            "SecretString"
        ]
    )
    secrets = {
        "xero access tokens": [*xero_tokens.access],
        "xero refresh tokens": [*xero_tokens.refresh],
        "stored xero token set": [token_secret["access_token"], token_secret["refresh_token"]],
        "ignition access tokens": [*ignition._access_tokens],
        "ignition refresh tokens": [*ignition._refresh_tokens],
        "client secrets": ["sandbox-client-secret", "sandbox-ignition-secret"],
        "webhook secrets": [WEBHOOK_SECRET, XERO_WEBHOOK_KEY],
        "signatures": [*forged_signature.values(), *signed.values()],
        "authorization headers": [
            *(f"Bearer {token}" for token in xero_tokens.access),
            base64.b64encode(b"sandbox-client-id:sandbox-client-secret").decode(),
        ],
    }
    assert len(secrets["xero access tokens"]) >= 2, "expected the original and the refreshed token"
    found = {
        kind: [line[:300] for v in values if v for line in logs.splitlines() if v in line][:2]
        for kind, values in secrets.items()
    }
    assert all(not leaked for leaked in found.values()), f"secrets in the logs: {found}"

    # ... and personal data is limited to ids: neither the name nor the e-mail address is logged.
    personal = [
        line[:400]
        for value in (name, email, email.split("@")[0], "400 123 987")
        for line in logs.splitlines()
        if value in line
    ][:3]
    assert personal == [], f"personal data in the logs: {personal}"
    assert slug in logs, "ids are what the logs should carry"


def test_given_xero_refuses_a_rename_quoting_the_name_when_dead_lettered_then_logs_carry_ids_only(
    world: World, captured_logs: Everything, capfd: pytest.CaptureFixture[str]
) -> None:
    # Given a synced client, and a contact a person typed into Xero under another name,
    slug = world.slug("dlqlogs")
    email = f"ops.dlqlogs.{world.tag}@example.test"
    world.put_client(world.client(slug, name=f"Quillfeather-{world.tag} Pty Ltd", email=email))
    world.settle()
    taken = f"Marrowdale-{world.tag} Holdings"
    world.seed_contacts(
        {"Name": taken, "EmailAddress": f"someone.else.{world.tag}@example.test"},
        # ... and the name the sync falls back on when Xero refuses one as taken.
        {"Name": f"{taken} ({slug})", "EmailAddress": f"another.{world.tag}@example.test"},
    )

    # When the client is renamed in Ignition to that name: Xero refuses both names with a message
    # that quotes them ("The contact name ... is already assigned to another contact."),
    # Ignition stamps the rename's updated_at with its own clock, as it stamped the first put: the
    # wall clock's now would be older whenever a test has moved the sandbox clock forward.
    world.put_client(world.client(slug, name=taken, email=email))
    world.settle()

    # Then the event is parked with Xero's reason, the name in it (in the encrypted DLQ body: SQS
    # does not encrypt message attributes, so none of them may carry it),
    (parked,) = world.dead_letters_for(slug)
    assert taken in (parked.get("reason") or ""), parked
    # ... and no log line or terminal output carries the names or the e-mail: ids only.
    out, err = capfd.readouterr()
    terminal = [line for line in (out + err).splitlines() if not _SERVER_LINE.match(line)]
    logs = "\n".join([*captured_logs.lines, *terminal])
    assert "event dead-lettered" in logs
    personal = [
        line[:400]
        for value in (taken, f"Quillfeather-{world.tag}", f"Marrowdale-{world.tag}", email)
        for line in logs.splitlines()
        if value in line
    ][:3]
    assert personal == [], f"personal data in the logs: {personal}"
    assert slug in logs
    (removed,) = _delete_dead_letters_of(world, slug)
    attributes = json.dumps(removed.get("MessageAttributes", {}))
    assert taken not in attributes and email not in attributes, attributes


def _delete_dead_letters_of(world: World, slug: str) -> list[dict[str, Any]]:
    """Leave the shared DLQ as the test found it; returns the messages deleted, as SQS held them."""
    assert world.sandbox.resources is not None
    sqs, dlq = aws.client("sqs"), world.sandbox.resources.dlq_url
    deleted: list[dict[str, Any]] = []
    for _ in range(20):
        batch = sqs.receive_message(
            QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=5, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            event = DeadLetter.from_message(message).event()
            if event is not None and event.record_id == slug:
                sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                deleted.append(message)
    return deleted
