"""One sandbox per test process: moto server, both emulators, the real ingest and sync handlers.

Tests isolate themselves with unique client slugs, so they can share it. Xero's limits are
raised here for speed; tests about limits inject 429s explicitly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from sandbox.environment import Sandbox
from shared import aws
from shared.config import RecordType
from shared.store.dead_letter_queue import DeadLetter
from shared.store.mappings import DynamoMappingStore, RecordMapping
from tests import ignition_records
from tests.sandbox_options import sandbox_options

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(sandbox_options(log_level="WARNING")) as running:
        yield running


class World:
    """What a test does to Ignition and sees in Xero and AWS."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(timeout=30)
        self.tag = uuid.uuid4().hex[:8]
        self._calls_at_start = self.xero_calls()

    def slug(self, name: str = "client") -> str:
        return f"cli_{name}_{self.tag}"

    def client(self, slug: str, **fields: Any) -> dict[str, Any]:
        record: dict[str, Any] = {
            "slug": slug,
            "name": f"Client {slug}",
            "email": f"{slug}@example.test",
            "state": "active",
            "created_at": "2026-11-01T09:00:00Z",
        }
        record.update(fields)
        return record

    def put_client(
        self, record: dict[str, Any], *, payload: str | None = None, deliver: bool = True
    ) -> dict[str, Any]:
        return self.put_record("clients", record, payload=payload, deliver=deliver)

    def put_record(
        self, resource: str, record: dict[str, Any], *, payload: str | None = None, deliver: bool = True
    ) -> dict[str, Any]:
        """Store an Ignition client, invoice or payment; unless ``deliver`` is false the emulator
        delivers its signed webhook (``payload``: Ignition's payload style, e.g. ``"id"``)."""
        params = {"deliver": "false"} if not deliver else ({"payload": payload} if payload else {})
        response = self.http.put(
            f"{self.sandbox.ignition_url}/_emulator/{resource}/{record['slug']}", json=record, params=params
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def put_and_settle(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        """Store an Ignition invoice or payment and wait until the sync has done with its webhook."""
        stored = self.put_record(resource, record)
        self.settle()
        return stored

    def invoice(
        self, slug: str, client_slug: str, items: list[dict[str, Any]], total: str, **fields: Any
    ) -> dict[str, Any]:
        return ignition_records.invoice(slug, client_slug, items, total, **fields)

    def synced_client(self, name: str = "client") -> str:
        """A new client, synced to Xero before the test goes on."""
        slug = self.slug(name)
        self.put_client(self.client(slug))
        self.settle()
        return slug

    def synced_invoice(self, client_slug: str) -> tuple[str, dict[str, Any]]:
        """The test's invoice (``inv_<tag>``): 100.00 plus 10% GST for ``client_slug``, synced to
        Xero before the test goes on. Its slug and the Ignition record."""
        slug = f"inv_{self.tag}"
        record = self.invoice(slug, client_slug, [ignition_records.line("100.00")], "110.00")
        self.put_and_settle("invoices", record)
        return slug, record

    def only_invoice(self, slug: str) -> dict[str, Any]:
        """The one Xero invoice of the Ignition invoice ``slug``."""
        (invoice,) = self.xero_invoices(Reference=slug)
        return invoice

    @contextmanager
    def advertising_account(self, code: str) -> Iterator[None]:
        """Invoice the advertising service (``svc_ads``) to the Xero account ``code`` while inside;
        the default rules again after. 400 is an expense account Xero refuses GST on income on."""
        self.sandbox.reconfigure(invoices={"account_codes_by_service": {"svc_ads": code}})
        try:
            yield
        finally:
            self.sandbox.reconfigure(invoices={"account_codes_by_service": {}})

    def put_advertising_invoice(self, slug: str, client_slug: str) -> None:
        """An invoice for the advertising service, synced (or refused) before the test goes on."""
        items = [ignition_records.line("100.00", service={"slug": "svc_ads"})]
        self.put_and_settle("invoices", self.invoice(slug, client_slug, items, "110.00"))

    def xero_invoices(self, **match: str) -> list[dict[str, Any]]:
        return [
            i for i in self.xero_state()["Invoices"] if all(str(i.get(k, "")) == v for k, v in match.items())
        ]

    def xero_payments_for(self, invoice_id: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.xero_state()["Payments"]
            if (p.get("Invoice") or {}).get("InvoiceID") == invoice_id and p.get("Status") != "DELETED"
        ]

    def redrive_dead_letters(self) -> int:
        """Move every DLQ message back to the sync queue (what an operator's replay does)."""
        assert self.sandbox.resources is not None
        sqs = aws.client("sqs")
        moved = 0
        while True:
            batch = sqs.receive_message(
                QueueUrl=self.sandbox.resources.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
            ).get("Messages", [])
            if not batch:
                return moved
            for message in batch:
                # The event out of its dead-letter envelope: the sync queue takes bare events only.
                letter = DeadLetter.from_message(message)
                body = json.loads(letter.body)
                sqs.send_message(
                    QueueUrl=self.sandbox.resources.queue_url,
                    MessageBody=letter.body,
                    MessageGroupId=body["group_id"],
                    MessageDeduplicationId=f"redrive-{uuid.uuid4().hex}",
                )
                sqs.delete_message(
                    QueueUrl=self.sandbox.resources.dlq_url, ReceiptHandle=message["ReceiptHandle"]
                )
                moved += 1

    def send_event(self, event_type: str, data: dict[str, Any], **extra: Any) -> dict[str, Any]:
        response = self.http.post(
            f"{self.sandbox.ignition_url}/_emulator/webhooks/send",
            json={"type": event_type, "data": data, **extra},
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()["delivery"]
        return body

    def redeliver(self, event_id: str) -> dict[str, Any]:
        response = self.http.post(
            f"{self.sandbox.ignition_url}/_emulator/webhooks/redeliver", json={"event_id": event_id}
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()["delivery"]
        return body

    def post_webhook(self, body: bytes, headers: dict[str, str]) -> httpx.Response:
        return self.http.post(self.sandbox.info()["webhook_url"], content=body, headers=headers)

    def xero_state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get(f"{self.sandbox.xero_url}/_emulator/state").json()
        return state

    def xero_calls(self) -> int:
        return int(self.xero_state()["requests"]["total"])

    def calls_since_start(self) -> int:
        return self.xero_calls() - self._calls_at_start

    def contacts(self, **match: str) -> list[dict[str, Any]]:
        """Xero contacts (archived included) whose fields equal ``match``, case-insensitively."""
        return [
            c
            for c in self.xero_state()["Contacts"]
            if all(str(c.get(k, "")).casefold() == v.casefold() for k, v in match.items())
        ]

    def seed_contacts(self, *contacts: dict[str, Any]) -> list[dict[str, Any]]:
        response = self.http.post(
            f"{self.sandbox.xero_url}/_emulator/contacts", json={"Contacts": list(contacts)}
        )
        response.raise_for_status()
        seeded: list[dict[str, Any]] = response.json()["Contacts"]
        return seeded

    def xero_fail_next(self, **fault: Any) -> None:
        self.http.post(f"{self.sandbox.xero_url}/_emulator/fail-next", json=fault).raise_for_status()

    def mapping_of(self, record_type: RecordType, ignition_id: str) -> str | None:
        assert self.sandbox.resources is not None
        found = DynamoMappingStore(self.sandbox.resources.state_table).get(record_type, ignition_id)
        return found.xero_id if found else None

    def mapping(self, slug: str) -> RecordMapping | None:
        assert self.sandbox.resources is not None
        return DynamoMappingStore(self.sandbox.resources.state_table).get(RecordType.CLIENT, slug)

    def s3_keys(self, prefix: str) -> list[str]:
        assert self.sandbox.resources is not None
        listing = aws.client("s3").list_objects_v2(Bucket=self.sandbox.resources.bucket, Prefix=prefix)
        return [item["Key"] for item in listing.get("Contents", [])]

    def s3_object(self, key: str) -> tuple[bytes, dict[str, str]]:
        assert self.sandbox.resources is not None
        obj = aws.client("s3").get_object(Bucket=self.sandbox.resources.bucket, Key=key)
        return obj["Body"].read(), obj.get("Metadata", {})

    def dead_letters_for(self, slug: str) -> list[dict[str, Any]]:
        return [m for m in self.sandbox.dead_letters() if m["body"].get("record_id") == slug]

    def settle(self) -> None:
        self.sandbox.wait_until_idle(timeout=60)


AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
STATE_PREFIXES = ("map#", "xref#", "reconcile#", "xero-event#", "audit#")


class Books(World):
    """A World that starts empty and can change Xero the way a person would (through the API)."""

    def reset(self) -> None:
        self.sandbox.wait_until_idle(timeout=60)
        self.http.post(f"{self.sandbox.xero_url}/_emulator/reset").raise_for_status()
        self.http.post(f"{self.sandbox.ignition_url}/_emulator/reset").raise_for_status()
        assert self.sandbox.resources is not None
        ddb, table = aws.client("dynamodb"), self.sandbox.resources.state_table
        for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="pk, sk"):
            for item in page["Items"]:
                if item["pk"]["S"].startswith(STATE_PREFIXES):
                    ddb.delete_item(TableName=table, Key={"pk": item["pk"], "sk": item["sk"]})
        sqs = aws.client("sqs")  # drained, not purged: SQS allows one purge a minute
        while batch := sqs.receive_message(
            QueueUrl=self.sandbox.resources.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=30
        ).get("Messages", []):
            for message in batch:
                sqs.delete_message(
                    QueueUrl=self.sandbox.resources.dlq_url, ReceiptHandle=message["ReceiptHandle"]
                )
        self.token = self.sandbox.xero.issue_token_set()["access_token"]

    def at(self, minutes: int = 0) -> str:
        return iso(AN_HOUR_AGO + timedelta(minutes=minutes))

    def new_client(self, label: str, *, deliver: bool = True, **fields: Any) -> str:
        slug = self.slug(label)
        self.put_record("clients", self.client(slug, updated_at=self.at(), **fields), deliver=deliver)
        return slug

    def new_invoice(self, client: str, price: str = "100.00", *, deliver: bool = True) -> str:
        slug = f"inv_{uuid.uuid4().hex[:10]}"
        item = ignition_records.line(price, tax_rate=None, description="Bookkeeping")
        record = self.invoice(slug, client, [item], price, updated_at=self.at())
        self.put_record("invoices", record, deliver=deliver)
        return slug

    def new_payment(self, client: str, invoice: str, amount: str, *, deliver: bool = True) -> str:
        slug = f"pypay_{uuid.uuid4().hex[:10]}"
        record = ignition_records.payment(slug, client, amount, invoice, created_at=self.at())
        self.put_record("payments", record, deliver=deliver)
        return slug

    def xero_api(self, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.http.request(
            method,
            f"{self.sandbox.xero_url}/api.xro/2.0{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.token}", "xero-tenant-id": self.sandbox.xero.tenant_id},
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def edit_in_xero(self, slug: str, **fields: Any) -> str:
        """Change the Xero contact of client ``slug`` as a person would; returns its ContactID."""
        contact_id = str(self.contact_of(slug)["ContactID"])
        self.xero_api("POST", "/Contacts", {"Contacts": [{"ContactID": contact_id, **fields}]})
        return contact_id

    def contact_of(self, slug: str) -> dict[str, Any]:
        (contact,) = [c for c in self.contacts(ContactNumber=slug) if c["ContactStatus"] == "ACTIVE"] or [
            self.contacts(ContactNumber=slug)[0]
        ]
        return contact

    def reconcile(self, **event: Any) -> dict[str, Any]:
        return self.sandbox.run_reconcile(event or {"mode": "full"})

    def report(self, result: dict[str, Any]) -> dict[str, Any]:
        body, _ = self.s3_object(result["report"]["json"])
        parsed: dict[str, Any] = json.loads(body)
        return parsed

    def found(self, result: dict[str, Any]) -> set[tuple[str, str | None, str | None]]:
        return {(d["category"], d["ignition_id"], d["xero_id"]) for d in self.report(result)["discrepancies"]}


@pytest.fixture
def books(sandbox: Sandbox) -> Iterator[Books]:
    current = Books(sandbox)
    current.reset()
    yield current
    current.http.close()


# The sandbox's Xero organisation as it starts: what a test that changes it restores.
DEFAULT_ORGANISATION: dict[str, Any] = {
    "country": "AU",
    "currencies": ["AUD", "NZD", "USD", "GBP"],
    "period_lock_date": None,
    "end_of_year_lock_date": None,
}


@pytest.fixture
def organise(world: World) -> Iterator[Any]:
    """Set the Xero organisation up (country, currencies, lock dates); back to the default after."""

    def apply(**body: Any) -> dict[str, Any]:
        response = world.http.post(f"{world.sandbox.xero_url}/_emulator/organisation", json=body)
        response.raise_for_status()
        shown: dict[str, Any] = response.json()
        return shown

    yield apply
    world.settle()
    apply(**DEFAULT_ORGANISATION)


@pytest.fixture
def world(sandbox: Sandbox) -> Iterator[World]:
    sandbox.wait_until_idle(timeout=60)
    current = World(sandbox)
    yield current
    current.http.close()


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
