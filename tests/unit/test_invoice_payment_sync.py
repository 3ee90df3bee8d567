"""The invoice and payment use cases (shared/invoices.py, shared/payments.py) end to end on
in-memory fakes of the mapping store and Ignition (tests/fakes.py) and the real Xero client on the
emulator in-process (tests/xero_double.py): what ends up in Xero, in the mapping, and when a
person is needed instead."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from shared.config import InvoiceRules, PaymentRules, RecordType
from shared.errors import PermanentSyncError
from shared.invoices import InvoiceSync
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionInvoice, IgnitionPayment
from shared.oauth import InMemoryTokenStore
from shared.payments import PaymentSync
from tests.fakes import InMemoryIgnition, InMemoryMappingStore, ManualClock
from tests.sync_events import sync_event
from tests.xero_double import XeroDouble

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class SeededContacts:
    """The contact port: each client's Xero contact seeded the first time an invoice needs it
    (contact matching has its own tests, test_contact_sync.py and test_xero_strict_lookups.py)."""

    def __init__(self, xero: XeroDouble) -> None:
        self._xero = xero
        self.ids: dict[str, str] = {}

    def ensure(self, client_slug: str, event: SyncEvent) -> str:
        if client_slug not in self.ids:
            (contact,) = self._xero.seed(
                "Contacts", {"Name": f"Client {client_slug}", "ContactNumber": client_slug}
            )
            self.ids[client_slug] = contact["ContactID"]
        return self.ids[client_slug]


class Books:
    """Ignition, the mapping table and Xero, with the invoice and payment syncs between them."""

    def __init__(self) -> None:
        self.xero = XeroDouble(ManualClock(T0.timestamp()))
        client = self.xero.client(self.xero.refreshing_tokens(InMemoryTokenStore(self.xero.token_set())))
        self.ignition = InMemoryIgnition()
        self.store = InMemoryMappingStore()
        self.contacts = SeededContacts(self.xero)
        # What both syncs are wired with, as the sync Lambda wires them.
        common: dict[str, Any] = {
            "xero": client,
            "ignition": self.ignition,
            "store": self.store,
            "unit": "major",
            "now": self.xero.clock.now,
        }
        self.invoice_sync = InvoiceSync(contacts=self.contacts, rules=InvoiceRules(), **common)
        self.payment_sync = PaymentSync(invoices=self.invoice_sync, rules=PaymentRules(), **common)

    def invoice(self, slug: str = "inv_1", *, price: str = "100.00", edited: int = 0, **fields: Any) -> str:
        """An Ignition invoice of one GST line (10% on top), ``edited`` minutes after T0."""
        total = Decimal(price) * Decimal("1.1")
        record = {
            "slug": slug,
            "reference_number": "INV-0101",
            "client": {"slug": "cli_1"},
            "amount": {"total": str(total.quantize(Decimal("0.01"))), "currency": "AUD"},
            "date": "2026-11-01",
            "items": [
                {
                    "description": "Advice",
                    "unit_price": {"amount": price, "currency": "AUD"},
                    "tax_rate": "10",
                }
            ],
            "created_at": T0.isoformat(),
            "updated_at": (T0 + timedelta(minutes=edited)).isoformat(),
            **fields,
        }
        self.ignition.invoices[slug] = IgnitionInvoice.model_validate(record)
        return slug

    def payment(self, amount: str, *invoices: str, slug: str = "pay_1") -> str:
        self.ignition.payments[slug] = IgnitionPayment.model_validate(
            {
                "slug": slug,
                "client": {"slug": "cli_1"},
                "amount": {"amount": amount, "currency": "AUD"},
                "invoices": [{"slug": s} for s in invoices or ("inv_1",)],
                "paid_on": "2026-11-02",
                "created_at": T0.isoformat(),
            }
        )
        return slug

    def sync_invoice(self, slug: str = "inv_1", event_id: str = "evt_1") -> Any:
        return self.invoice_sync.handle(_hint(RecordType.INVOICE, slug, event_id))

    def sync_payment(self, slug: str = "pay_1", event_id: str = "evt_p1") -> Any:
        return self.payment_sync.handle(_hint(RecordType.PAYMENT, slug, event_id))

    def xero_invoices(self) -> list[dict[str, Any]]:
        return self.xero.records("Invoices")

    def xero_payments(self) -> list[dict[str, Any]]:
        return [p for p in self.xero.records("Payments") if p["Status"] != "DELETED"]

    def writes(self) -> int:
        return sum(r.method in ("PUT", "POST") for r in self.xero.api_requests())


@pytest.fixture
def books() -> Books:
    return Books()


def _hint(record_type: RecordType, slug: str, event_id: str) -> SyncEvent:
    """A webhook that names the record only: the sync reads its current state from Ignition."""
    return sync_event(slug, record_type=record_type, event_id=event_id, at=T0)


# --- invoices -------------------------------------------------------------------------------------


def test_given_a_new_ignition_invoice_when_synced_then_one_approved_xero_invoice_to_the_cent_and_its_mapping(
    books: Books,
) -> None:
    books.invoice(price="100.00")

    outcome = books.sync_invoice()

    (written,) = books.xero_invoices()
    assert outcome.action == "created" and outcome.xero_id == written["InvoiceID"]
    assert outcome.total_mismatch is None
    assert (written["InvoiceNumber"], written["Status"], Decimal(str(written["Total"]))) == (
        "INV-0101",
        "AUTHORISED",
        Decimal("110.00"),
    )
    assert written["Contact"]["ContactID"] == books.contacts.ids["cli_1"]
    mapping = books.store.get(RecordType.INVOICE, "inv_1")
    assert mapping is not None and mapping.xero_id == written["InvoiceID"] and mapping.version == 1
    notes = books.xero.state()["History"][written["InvoiceID"].lower()]
    assert any("Created from Ignition invoice INV-0101 [inv_1]" in n["Details"] for n in notes)


def test_given_a_synced_invoice_when_ignition_changes_its_price_then_the_same_xero_invoice_is_updated(
    books: Books,
) -> None:
    books.invoice(price="100.00")
    first = books.sync_invoice()
    books.invoice(price="200.00", edited=5)

    outcome = books.sync_invoice(event_id="evt_2")

    (written,) = books.xero_invoices()
    assert outcome.action == "updated" and outcome.xero_id == first.xero_id == written["InvoiceID"]
    assert Decimal(str(written["Total"])) == Decimal("220.00")
    mapping = books.store.get(RecordType.INVOICE, "inv_1")
    assert mapping is not None and mapping.version == 2 and mapping.last_event_id == "evt_2"


def test_given_an_invoice_already_written_when_the_same_state_arrives_again_then_xero_is_not_called(
    books: Books,
) -> None:
    books.invoice()
    books.sync_invoice()
    writes = books.writes()

    again = books.sync_invoice(event_id="evt_redelivered")

    assert again.action == "skipped_stale"
    assert books.writes() == writes and len(books.xero_invoices()) == 1


def test_given_a_paid_xero_invoice_when_ignition_changes_it_then_it_stops_for_a_person_and_xero_keeps_it(
    books: Books,
) -> None:
    books.invoice(price="100.00")
    books.payment("110.00")
    assert books.sync_payment().action == "applied"  # writes the invoice first, then pays it
    books.invoice(price="150.00", edited=5)

    with pytest.raises(PermanentSyncError) as stopped:
        books.sync_invoice(event_id="evt_2")

    assert stopped.value.category == "invoice_locked"
    assert "credit or void it in Xero by hand" in stopped.value.reason
    (kept,) = books.xero_invoices()
    assert kept["Status"] == "PAID" and Decimal(str(kept["Total"])) == Decimal("110.00")
    mapping = books.store.get(RecordType.INVOICE, "inv_1")
    assert mapping is not None and mapping.version == 1  # the refused change is not recorded as written


def test_given_xero_has_the_number_on_somebody_elses_invoice_when_synced_then_it_stops_as_a_duplicate_number(
    books: Books,
) -> None:
    contact_id = books.contacts.ensure("cli_other", _hint(RecordType.CLIENT, "cli_other", "evt_c"))
    books.xero.seed(
        "Invoices",
        {
            "Type": "ACCREC",
            "InvoiceNumber": "INV-0101",
            "Contact": {"ContactID": contact_id},
            "Status": "DRAFT",
        },
    )
    books.invoice()

    with pytest.raises(PermanentSyncError) as stopped:
        books.sync_invoice()

    assert stopped.value.category == "duplicate_number"
    assert "INV-0101" in stopped.value.reason and "number_field" in stopped.value.reason
    assert len(books.xero_invoices()) == 1
    assert books.store.get(RecordType.INVOICE, "inv_1") is None


def test_given_our_invoice_written_before_a_crash_when_synced_again_then_found_by_number_not_duplicated(
    books: Books,
) -> None:
    books.invoice(price="100.00")
    first = books.sync_invoice()
    books.store.mappings.clear()  # the crash came between Xero's answer and the mapping's save
    books.store.owners.clear()
    books.invoice(price="120.00", edited=5)

    outcome = books.sync_invoice(event_id="evt_2")

    (written,) = books.xero_invoices()
    assert outcome.action == "updated" and outcome.xero_id == first.xero_id == written["InvoiceID"]
    assert any("written earlier" in d for d in outcome.decisions)
    assert Decimal(str(written["Total"])) == Decimal("132.00")
    mapping = books.store.get(RecordType.INVOICE, "inv_1")
    assert mapping is not None and mapping.match_method == "invoice_number"


def test_given_a_synced_invoice_when_ignition_voids_it_then_it_is_voided_in_xero(books: Books) -> None:
    books.invoice()
    books.sync_invoice()
    books.invoice(edited=5, state="void")

    outcome = books.sync_invoice(event_id="evt_void")

    (voided,) = books.xero_invoices()
    assert outcome.action == "voided" and voided["Status"] == "VOIDED"


# --- payments -------------------------------------------------------------------------------------


def test_given_a_payment_on_a_synced_invoice_when_synced_then_xero_applies_it_once(books: Books) -> None:
    books.invoice(price="100.00")
    invoice_id = books.sync_invoice().xero_id
    books.payment("50.00")

    outcome = books.sync_payment()
    again = books.sync_payment(event_id="evt_p1_redelivered")

    (paid,) = books.xero_payments()
    assert outcome.action == "applied" and outcome.xero_id == paid["PaymentID"]
    assert paid["Invoice"]["InvoiceID"] == invoice_id and Decimal(str(paid["Amount"])) == Decimal("50.00")
    assert paid["Reference"].endswith("pay_1")
    (invoice,) = books.xero_invoices()
    assert Decimal(str(invoice["AmountDue"])) == Decimal("60.00") and invoice["Status"] == "AUTHORISED"
    mapping = books.store.get(RecordType.PAYMENT, "pay_1:inv_1")
    assert mapping is not None and mapping.xero_id == paid["PaymentID"]
    assert again.action == "skipped_duplicate" and len(books.xero_payments()) == 1


def test_given_a_payment_above_the_amount_due_when_synced_then_only_the_due_is_applied_and_the_rest_reported(
    books: Books,
) -> None:
    books.invoice(price="100.00")
    books.sync_invoice()
    books.payment("150.00")

    outcome = books.sync_payment()

    (paid,) = books.xero_payments()
    assert Decimal(str(paid["Amount"])) == Decimal("110.00")
    assert books.xero_invoices()[0]["Status"] == "PAID"
    assert outcome.total_mismatch is not None and "40.00" in outcome.total_mismatch


def test_given_a_payment_before_its_invoice_reached_xero_when_synced_then_the_invoice_is_written_and_paid(
    books: Books,
) -> None:
    # Webhooks arrive out of order: the payment's event can come before its invoice's.
    books.invoice(price="100.00")
    books.payment("110.00")

    outcome = books.sync_payment()

    (invoice,) = books.xero_invoices()
    (paid,) = books.xero_payments()
    assert outcome.action == "applied" and paid["Invoice"]["InvoiceID"] == invoice["InvoiceID"]
    assert invoice["Status"] == "PAID"
    mapping = books.store.get(RecordType.INVOICE, "inv_1")
    assert mapping is not None and mapping.xero_id == invoice["InvoiceID"]
    # The invoice's own event, when it comes, finds it written.
    assert books.sync_invoice().action == "skipped_stale"


def test_given_a_payment_on_an_invoice_ignition_lacks_when_synced_then_nothing_is_written_and_it_stops(
    books: Books,
) -> None:
    books.payment("10.00", "inv_missing")

    with pytest.raises(PermanentSyncError) as stopped:
        books.sync_payment()

    assert stopped.value.category == "missing_invoice" and "inv_missing" in stopped.value.reason
    assert books.xero_invoices() == [] and books.xero_payments() == []
    assert books.store.get(RecordType.PAYMENT, "pay_1:inv_missing") is None
