"""Deterministic Ignition webhooks for the benchmarks (fixed seed): a ~5 KB client webhook, the
API Gateway REST proxy event that carries it, and the SQS event that the sync function receives."""

from __future__ import annotations

import json
import random
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from shared.config import WebhookVerification
from shared.ignition.webhook import sign_webhook

SEED = 7
TARGET_BYTES = 5 * 1024
CREATED_AT = "2026-11-01T09:00:00Z"
STREETS = ["George St", "Pitt St", "Collins St", "Queen St", "King William St", "Hay St", "Murray St"]
CITIES = [("Sydney", "2000"), ("Melbourne", "3000"), ("Brisbane", "4000"), ("Adelaide", "5000")]


def client_record(
    index: int, *, seed: int = SEED, updated_at: str = CREATED_AT, **changes: Any
) -> dict[str, Any]:
    """An Ignition client as a full-record webhook carries it, padded to about 5 KB with the kind
    of data a real practice keeps (addresses, contact people, tags, custom fields)."""
    rng = random.Random(seed * 1_000_003 + index)
    city, postcode = rng.choice(CITIES)
    record: dict[str, Any] = {
        "slug": f"cli_bench_{index:06d}",
        "name": f"Bench Client {index:06d} Pty Ltd",
        "email": f"accounts{index}@bench-client.test",
        "phone": f"+61 2 9{rng.randrange(100, 999)} {rng.randrange(1000, 9999)}",
        "state": "active",
        "kind": "organisation",
        "external_client_id": f"EXT-{index:06d}",
        "manager": {"name": "Morgan Manager", "email": "morgan@firm.test"},
        "partner": {"name": "Pat Partner", "email": "pat@firm.test"},
        "tags": [f"tag-{rng.randrange(100)}" for _ in range(8)],
        "addresses": [
            {
                "kind": kind,
                "line1": f"{rng.randrange(1, 400)} {rng.choice(STREETS)}",
                "line2": f"Level {rng.randrange(1, 40)}",
                "city": city,
                "region": "NSW",
                "postal_code": postcode,
                "country": "AU",
            }
            for kind in ("street", "postal")
        ],
        "contacts": [
            {
                "first_name": f"First{rng.randrange(10_000)}",
                "last_name": f"Last{rng.randrange(10_000)}",
                "email": f"person{n}.{index}@bench-client.test",
                "phone": f"+61 4{rng.randrange(10_000_000, 99_999_999)}",
                "primary": n == 0,
            }
            for n in range(4)
        ],
        "created_at": CREATED_AT,
        "updated_at": updated_at,
    }
    record.update(changes)
    # Pad with custom fields (kept by the model's extra="allow") up to the target size.
    fields: dict[str, str] = {}
    record["custom_fields"] = fields
    n = 0
    while len(json.dumps(record)) < TARGET_BYTES - 120:
        fields[f"field_{n:02d}"] = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(90))
        n += 1
    return record


def invoice_record(
    slug: str,
    reference: str,
    client_slug: str,
    *,
    net: str,
    total: str,
    description: str,
    date: str,
    due_date: str | None = None,
    created_at: str | None = CREATED_AT,
    **extra: Any,
) -> dict[str, Any]:
    """An Ignition invoice in AUD of one line taxed at 10% (``net`` before tax, ``total`` after);
    without ``created_at`` the emulator stamps it."""
    record: dict[str, Any] = {
        "slug": slug,
        "reference_number": reference,
        "client": {"slug": client_slug},
        "amount": {"total": total, "currency": "AUD"},
        "date": date,
        "items": [
            {
                "description": description,
                "quantity": "1",
                "unit_price": {"amount": net, "currency": "AUD"},
                "tax_rate": "10",
            }
        ],
        **extra,
    }
    if due_date is not None:
        record["due_date"] = due_date
    if created_at is not None:
        record |= {"created_at": created_at, "updated_at": created_at}
    return record


def payment_record(
    slug: str, client_slug: str, invoice_slug: str, amount: str, created_at: str = CREATED_AT
) -> dict[str, Any]:
    """An Ignition payment in AUD of ``amount`` on one invoice."""
    return {
        "slug": slug,
        "client": {"slug": client_slug},
        "amount": {"amount": amount, "currency": "AUD"},
        "invoices": [{"slug": invoice_slug}],
        "created_at": created_at,
    }


def envelope(event_type: str, data: dict[str, Any], event_id: str | None = None) -> bytes:
    body = {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": event_type,
        "occurred_at": data.get("updated_at", CREATED_AT),
        "source": {"application_slug": "bench"},
        "data": data,
    }
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def signed_headers(body: bytes, secret: str, webhook: WebhookVerification) -> dict[str, str]:
    return {
        **sign_webhook(body, secret, webhook, timestamp=datetime.now(UTC)),
        "Content-Type": "application/json",
    }


def api_gateway_event(
    body: bytes, headers: dict[str, str], path: str = "/webhooks/ignition"
) -> dict[str, Any]:
    """What API Gateway's REST proxy integration hands the ingest function."""
    request_id = str(uuid.uuid4())
    return {
        "resource": path,
        "path": path,
        "httpMethod": "POST",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": None,
        "pathParameters": None,
        "body": body.decode("utf-8"),
        "isBase64Encoded": False,
        "requestContext": {
            "requestId": request_id,
            "stage": "bench",
            "httpMethod": "POST",
            "path": f"/bench{path}",
            "requestTimeEpoch": int(time.time() * 1000),
            "identity": {"sourceIp": "127.0.0.1"},
        },
    }


def sqs_event(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """Lambda's SQS event for messages received with ``MessageSystemAttributeNames=["All"]``."""
    records = []
    for message in messages:
        attributes = message.get("Attributes", {})
        now_ms = str(int(time.time() * 1000))
        records.append(
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": attributes.get("ApproximateReceiveCount", "1"),
                    "SentTimestamp": attributes.get("SentTimestamp", now_ms),
                    "SenderId": attributes.get("SenderId", "bench"),
                    "ApproximateFirstReceiveTimestamp": attributes.get(
                        "ApproximateFirstReceiveTimestamp", now_ms
                    ),
                    "MessageGroupId": attributes.get("MessageGroupId", ""),
                    "MessageDeduplicationId": attributes.get("MessageDeduplicationId", ""),
                    "SequenceNumber": attributes.get("SequenceNumber", "0"),
                },
                "messageAttributes": {
                    key: {
                        "stringValue": value.get("StringValue"),
                        "dataType": value.get("DataType", "String"),
                    }
                    for key, value in message.get("MessageAttributes", {}).items()
                },
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "ap-southeast-2",
            }
        )
    return {"Records": records}
