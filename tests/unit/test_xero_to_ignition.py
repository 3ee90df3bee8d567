"""Xero -> Ignition: the trigger, the draft (to the cent, or refused with a reason), exactly one
draft under redelivery, a crash between the MCP call and the record, and RATE_LIMITED; the round
trip's link; the webhook relay. Ignition's side is an in-memory fake of IgnitionDraftsPort that
follows the emulator's semantics (create is not idempotent; find_drafts reads drafts by reference)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

import pytest

from shared.config import RecordType, XeroToIgnitionRules
from shared.delivery import SyncDelivery
from shared.errors import PermanentSyncError
from shared.ignition.drafts import (
    CreatedDraft,
    IgnitionDraftSummary,
    IgnitionMcpRateLimited,
    IgnitionService,
    IgnitionTaxRate,
    InvoiceDraftRequest,
)
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionInvoice
from shared.models.xero import ContactRef, Invoice, LineItem, LineItemTracking, TaxRate
from shared.observability import Metric
from shared.reconcile.model import DRAFT_WAITING
from shared.reconcile.wording import plain
from shared.xero.webhooks import XeroWebhookEvent
from shared.xero_to_ignition.drafting import DraftPlan, DraftRefused, build_draft
from shared.xero_to_ignition.events import (
    XERO_INVOICE_EVENT,
    MarkedInvoiceRelay,
    invoice_event,
    record_log_keys,
)
from shared.xero_to_ignition.records import DraftRecord, DraftState, DynamoDraftRecordStore, RecordConflict
from shared.xero_to_ignition.safety_net import SafetyNet
from shared.xero_to_ignition.service import RoundTrip, XeroToIgnition
from shared.xero_to_ignition.trigger import draft_reference, is_marked, marker_in, marker_of
from tests.fakes import InMemoryMappingStore

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
RULES = XeroToIgnitionRules(enabled=True)
XERO_RATES = [
    TaxRate(Name="GST on Income", TaxType="OUTPUT", EffectiveRate=Decimal("10"), Status="ACTIVE"),
    TaxRate(Name="GST Free Income", TaxType="EXEMPTOUTPUT", EffectiveRate=Decimal("0"), Status="ACTIVE"),
    TaxRate(Name="VAT 15", TaxType="OUTPUT2", EffectiveRate=Decimal("15"), Status="ACTIVE"),
]
IGNITION_RATES = [
    IgnitionTaxRate(id="tax_gst", name="GST", rate=Decimal("10")),
    IgnitionTaxRate(id="tax_free", name="GST Free", rate=Decimal("0")),
]


# -- fakes -------------------------------------------------------------------------------------------


class Crash(Exception):
    """The worker died (Lambda timeout, OOM) at the injected point."""


class FakeDrafts:
    """IgnitionDraftsPort as the emulator behaves: create is NOT idempotent, find_drafts lists the
    drafts carrying a reference, RATE_LIMITED makes nothing."""

    def __init__(self) -> None:
        self.drafts: list[tuple[str, InvoiceDraftRequest]] = []
        self.rate_limit_next = 0
        self.calls: list[str] = []
        self._ids = itertools.count(1)

    def list_tax_rates(self) -> list[IgnitionTaxRate]:
        self.calls.append("list_tax_rates")
        return list(IGNITION_RATES)

    def list_services(self) -> list[IgnitionService]:
        self.calls.append("list_services")
        return [IgnitionService(id="svc_bk", name="Bookkeeping", code="BK")]

    def find_drafts(self, reference: str) -> list[IgnitionDraftSummary]:
        self.calls.append("find_drafts")
        return [
            IgnitionDraftSummary(
                draft_id=draft_id,
                reference=request.reference,
                client_slug=request.client_slug,
                state="draft",
                app_path=f"/invoices/drafts/{draft_id}",
            )
            for draft_id, request in self.drafts
            if request.reference == reference
        ]

    def create_invoice_draft(self, request: InvoiceDraftRequest) -> CreatedDraft:
        self.calls.append("create_invoice_draft")
        if self.rate_limit_next:
            self.rate_limit_next -= 1
            raise IgnitionMcpRateLimited("RATE_LIMITED", retry_after=7)
        draft_id = f"dft_{next(self._ids)}"
        self.drafts.append((draft_id, request))
        return CreatedDraft(
            draft_id=draft_id, app_path=f"/invoices/drafts/{draft_id}", total=request.expected_total
        )


class FakeXero:
    def __init__(self, *invoices: Invoice) -> None:
        self.invoices = {str(i.InvoiceID): i for i in invoices}
        self.notes: list[tuple[str, str]] = []
        self.reads = 0

    def get_invoice(self, invoice_id_or_number: str, *, unitdp4: bool = False) -> Invoice | None:
        self.reads += 1
        return self.invoices.get(invoice_id_or_number)

    def tax_rates(self) -> list[TaxRate]:
        return list(XERO_RATES)

    def add_history(self, resource: str, record_id: str, details: str) -> None:
        self.notes.append((record_id, details))


class InMemoryDraftRecords:
    def __init__(self) -> None:
        self.records: dict[str, DraftRecord] = {}
        self.crash_on_state: str | None = None

    def get(self, marker: str) -> DraftRecord | None:
        return self.records.get(marker)

    def put(self, record: DraftRecord, *, previous: DraftRecord | None) -> DraftRecord:
        if self.crash_on_state == record.state:
            self.crash_on_state = None
            raise Crash(f"died before recording {record.state}")
        current = self.records.get(record.marker)
        if (current.version if current else None) != (previous.version if previous else None):
            raise RecordConflict("changed meanwhile")
        written = record.model_copy(update={"version": (previous.version if previous else 0) + 1})
        self.records[record.marker] = written
        return written

    def all(self) -> list[DraftRecord]:
        return list(self.records.values())


# -- builders ----------------------------------------------------------------------------------------


def line(description: str, quantity: str, unit: str, tax_type: str = "OUTPUT", **extra: Any) -> LineItem:
    return LineItem(
        Description=description,
        Quantity=Decimal(quantity),
        UnitAmount=Decimal(unit),
        TaxType=tax_type,
        AccountCode="200",
        **extra,
    )


THREE_LINES = [
    line("Monthly bookkeeping", "3", "120.00"),
    line("Tax return (GST free)", "1", "250.00", "EXEMPTOUTPUT"),
    line("Payroll setup", "2", "33.335"),
]
# 360.00 + 36.00 tax; 250.00; 66.67 + 6.67 tax -> 719.34
THREE_LINES_TOTAL = Decimal("719.34")


def xero_invoice(
    *,
    reference: str | None = "IGN: November work",
    status: str = "DRAFT",
    lines: Sequence[LineItem] = THREE_LINES,
    total: Decimal | None = THREE_LINES_TOTAL,
    contact: str = "c0ffee00-0000-4000-8000-000000000001",
    **extra: Any,
) -> Invoice:
    fields: dict[str, Any] = {
        "InvoiceID": str(uuid.uuid4()),
        "Type": "ACCREC",
        "Contact": ContactRef(ContactID=contact),
        "Date": date(2026, 11, 20),
        "DueDate": date(2026, 12, 4),
        "LineAmountTypes": "Exclusive",
        "LineItems": list(lines),
        "InvoiceNumber": "INV-0042",
        "Reference": reference,
        "CurrencyCode": "AUD",
        "Status": status,
        "Total": total,
    }
    return Invoice(**{**fields, **extra})


def drafted(
    invoice: Invoice, rules: XeroToIgnitionRules = RULES, services: Sequence[IgnitionService] = ()
) -> DraftPlan:
    return build_draft(
        invoice,
        client_slug="cli_acme",
        xero_tax_rates=XERO_RATES,
        ignition_tax_rates=IGNITION_RATES,
        services=services,
        rules=rules,
    )


def event_for(invoice: Invoice, at: str = "2026-11-20T09:00:00.000") -> SyncEvent:
    webhook = XeroWebhookEvent.model_validate(
        {
            "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{invoice.InvoiceID}",
            "resourceId": invoice.InvoiceID,
            "eventDateUtc": at,
            "eventType": "UPDATE",
            "eventCategory": "INVOICE",
            "tenantId": "tenant-1",
        }
    )
    return invoice_event(webhook, NOW)


class World:
    def __init__(self, *invoices: Invoice, rules: XeroToIgnitionRules = RULES) -> None:
        self.xero = FakeXero(*invoices)
        self.drafts = FakeDrafts()
        self.mappings = InMemoryMappingStore()
        self.mappings.owners[(RecordType.CLIENT, "c0ffee00-0000-4000-8000-000000000001")] = "cli_acme"
        self.records = InMemoryDraftRecords()
        self.service = XeroToIgnition(
            xero=self.xero,
            drafts=self.drafts,
            mappings=self.mappings,
            records=self.records,
            rules=rules,
            app_url="https://app.ignition.test",
            now=lambda: NOW,
        )


# -- trigger -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("reference", ["IGN: work", "  ign:work", "Ign: x"])
def test_given_a_draft_whose_reference_starts_with_the_prefix_in_any_case_when_checked_then_it_is_marked(
    reference: str,
) -> None:
    assert is_marked(xero_invoice(reference=reference), RULES).marked


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"status": "AUTHORISED"}, "not a draft"),
        ({"reference": "Work for IGN: later"}, "not marked"),
        ({"reference": None}, "not marked"),
        ({"Type": "ACCPAY"}, "not a sales invoice"),
        ({"reference": "IGN: INV-0042 [xero 0123456789ab]"}, "our own draft marker"),
    ],
)
def test_given_an_invoice_that_is_not_a_marked_sales_draft_when_checked_then_it_is_not_a_trigger(
    changes: dict[str, Any], why: str
) -> None:
    verdict = is_marked(xero_invoice(**changes), RULES)

    assert not verdict.marked
    assert why in verdict.why


def test_given_a_tracking_rule_when_a_line_carries_the_option_then_marked_and_both_needs_the_prefix() -> None:
    tracked = [line("Work", "1", "100.00", Tracking=[LineItemTracking(Name="Billing", Option="ignition")])]
    either = XeroToIgnitionRules(enabled=True, tracking_category="Billing", tracking_option="Ignition")
    both = either.model_copy(update={"require_both": True})

    assert is_marked(xero_invoice(reference=None, lines=tracked, total=Decimal("110.00")), either).marked
    assert not is_marked(xero_invoice(reference=None, lines=tracked, total=Decimal("110.00")), both).marked
    assert is_marked(xero_invoice(lines=tracked, total=Decimal("110.00")), both).marked
    assert not is_marked(xero_invoice(reference=None), either).marked


def test_given_a_xero_invoice_when_its_draft_reference_is_made_then_its_marker_leads_back() -> None:
    invoice = xero_invoice()

    reference = draft_reference(invoice)

    assert reference.startswith("INV-0042 ")
    assert marker_in(f"Finished: {reference}") == marker_of(str(invoice.InvoiceID))


# -- the draft ---------------------------------------------------------------------------------------


def test_given_three_lines_with_mixed_gst_when_drafted_then_lines_keep_figures_and_total_to_the_cent() -> (
    None
):
    invoice = xero_invoice()

    plan = drafted(invoice)

    request = plan.request
    assert [(li.description, li.quantity, li.unit_price, li.tax_rate_id) for li in request.lines] == [
        ("Monthly bookkeeping", Decimal(3), Decimal("120.00"), "tax_gst"),
        ("Tax return (GST free)", Decimal(1), Decimal("250.00"), "tax_free"),
        ("Payroll setup", Decimal(2), Decimal("33.335"), "tax_gst"),
    ]
    assert request.expected_total == Decimal("719.34")
    assert (request.client_slug, request.currency, request.due_date) == ("cli_acme", "AUD", date(2026, 12, 4))
    assert request.reference == draft_reference(invoice)


def test_given_a_total_the_lines_do_not_make_when_drafted_then_refused_with_both_figures() -> None:
    invoice = xero_invoice(total=Decimal("719.35"))

    with pytest.raises(DraftRefused) as refused:
        drafted(invoice)

    assert refused.value.category == "draft_refused"
    assert "719.34 AUD" in refused.value.reason and "719.35 AUD" in refused.value.reason
    assert "0.01 AUD" in refused.value.reason


def test_given_a_rate_ignition_lacks_when_drafted_then_refused_naming_it_and_what_ignition_has() -> None:
    invoice = xero_invoice(lines=[line("Export", "1", "100.00", "OUTPUT2")], total=Decimal("115.00"))

    with pytest.raises(DraftRefused) as refused:
        drafted(invoice)

    assert "15%" in refused.value.reason and "GST 10%" in refused.value.reason


def test_given_inclusive_prices_and_a_mapped_account_when_drafted_then_prices_exclude_tax_with_service() -> (
    None
):
    invoice = xero_invoice(
        lines=[line("Bookkeeping", "1", "110.00")], total=Decimal("110.00"), LineAmountTypes="Inclusive"
    )
    rules = RULES.model_copy(update={"services_by_account_code": {"200": "BK"}})

    plan = drafted(invoice, rules, [IgnitionService(id="svc_bk", name="Bookkeeping", code="BK")])

    (only,) = plan.request.lines
    assert (only.unit_price, only.service_id, plan.request.expected_total) == (
        Decimal("100.0000"),
        "svc_bk",
        Decimal("110.00"),
    )


# -- the use case: exactly one draft ----------------------------------------------------------------


def test_given_a_marked_invoice_when_handled_then_one_draft_recorded_and_noted_with_its_link() -> None:
    invoice = xero_invoice()
    world = World(invoice)

    outcome = world.service.handle(event_for(invoice))

    assert outcome.action == "drafted"
    assert len(world.drafts.drafts) == 1
    draft_id, request = world.drafts.drafts[0]
    assert (request.client_slug, request.expected_total) == ("cli_acme", THREE_LINES_TOTAL)
    record = world.records.get(marker_of(str(invoice.InvoiceID)))
    assert record is not None and (record.state, record.draft_id, record.noted) == ("drafted", draft_id, True)
    ((noted_on, note),) = world.xero.notes
    assert noted_on == invoice.InvoiceID
    assert f"https://app.ignition.test/invoices/drafts/{draft_id}" in note


def test_given_the_same_webhook_redelivered_and_a_later_edit_when_handled_then_still_one_draft() -> None:
    invoice = xero_invoice()
    world = World(invoice)

    world.service.handle(event_for(invoice))
    again = world.service.handle(event_for(invoice))
    later = world.service.handle(event_for(invoice, at="2026-11-20T10:00:00.000"))

    assert len(world.drafts.drafts) == 1
    assert (again.action, later.action) == ("skipped_duplicate", "skipped_duplicate")
    assert len(world.xero.notes) == 1


def test_given_a_crash_after_the_mcp_call_when_redelivered_then_the_draft_is_found_not_made_again() -> None:
    invoice = xero_invoice()
    world = World(invoice)
    world.records.crash_on_state = "drafted"

    with pytest.raises(Crash):
        world.service.handle(event_for(invoice))
    assert len(world.drafts.drafts) == 1
    outcome = world.service.handle(event_for(invoice))

    assert len(world.drafts.drafts) == 1
    assert "found Ignition draft" in " ".join(outcome.decisions)
    record = world.records.get(marker_of(str(invoice.InvoiceID)))
    assert record is not None and record.draft_id == world.drafts.drafts[0][0]


def test_given_a_draft_made_when_the_sync_counts_and_logs_it_then_its_own_metric_and_a_xero_id_key() -> None:
    invoice = xero_invoice()
    world = World(invoice)
    counted: list[Metric] = []
    delivery = SyncDelivery(
        policy=cast(Any, None),
        apply=cast(Any, None),
        dead_letters=cast(Any, None),
        queue=cast(Any, None),
        count=counted.append,
        log=cast(Any, None),
    )

    delivery.count_outcome(asdict(world.service.handle(event_for(invoice))))

    assert counted == [Metric.EVENTS_SYNCED, Metric.IGNITION_DRAFTS_CREATED]  # not an invoice made in Xero
    assert record_log_keys(event_for(invoice)) == {"ignition_id": None, "xero_invoice_id": invoice.InvoiceID}


def test_given_rate_limited_answers_when_retried_then_the_wait_is_a_limit_and_one_draft_results() -> None:
    invoice = xero_invoice()
    world = World(invoice)
    world.drafts.rate_limit_next = 2

    for _ in range(2):
        with pytest.raises(IgnitionMcpRateLimited) as limited:
            world.service.handle(event_for(invoice))
        assert limited.value.retry_after == 7
    world.service.handle(event_for(invoice))

    assert len(world.drafts.drafts) == 1
    assert world.drafts.calls.count("create_invoice_draft") == 3


def test_given_a_total_mismatch_when_handled_then_no_draft_and_the_reason_is_parked_and_recorded() -> None:
    invoice = xero_invoice(total=Decimal("700.00"))
    world = World(invoice)

    with pytest.raises(PermanentSyncError) as refused:
        world.service.handle(event_for(invoice))

    assert refused.value.category == "draft_refused"
    assert world.drafts.drafts == []
    record = world.records.get(marker_of(str(invoice.InvoiceID)))
    assert record is not None and record.state == "refused" and "700.00 AUD" in (record.reason or "")


def test_given_a_refused_invoice_fixed_in_xero_when_edited_again_then_its_draft_is_made() -> None:
    invoice = xero_invoice(total=Decimal("700.00"))
    world = World(invoice)
    with pytest.raises(PermanentSyncError):
        world.service.handle(event_for(invoice))

    world.xero.invoices[str(invoice.InvoiceID)] = invoice.model_copy(update={"Total": THREE_LINES_TOTAL})
    outcome = world.service.handle(event_for(invoice, at="2026-11-20T11:00:00.000"))

    assert outcome.action == "drafted" and len(world.drafts.drafts) == 1


def test_given_an_invoice_the_product_wrote_when_its_event_arrives_then_never_sent_back_nor_read() -> None:
    invoice = xero_invoice(reference="IGN: looks marked")
    world = World(invoice)
    world.mappings.owners[(RecordType.INVOICE, str(invoice.InvoiceID))] = "inv_acme_1"

    outcome = world.service.handle(event_for(invoice))

    assert outcome.action == "skipped_state" and "written by this product" in outcome.decisions[0]
    assert (world.drafts.drafts, world.xero.reads) == ([], 0)


def test_given_an_invoice_the_sync_wrote_before_its_mapping_when_seen_then_its_key_keeps_it_out() -> None:
    world = World(invoice := xero_invoice(reference="inv_acme_9"))

    outcome = world.service.handle(event_for(invoice))

    assert "written by this product" in outcome.decisions[0] and world.drafts.drafts == []


def test_given_a_contact_not_linked_to_an_ignition_client_when_handled_then_refused_with_the_reason() -> None:
    invoice = xero_invoice(contact="c0ffee00-0000-4000-8000-0000000000ff")
    world = World(invoice)

    with pytest.raises(PermanentSyncError) as refused:
        world.service.handle(event_for(invoice))

    assert refused.value.category == "unmapped_contact" and world.drafts.drafts == []


# -- the round trip ------------------------------------------------------------------------------------


def _finished(reference: str | None, slug: str = "inv_new_1", client: str = "cli_acme") -> IgnitionInvoice:
    return IgnitionInvoice.model_validate(
        {
            "slug": slug,
            "reference_number": "INV-7001",
            "client": {"slug": client},
            "amount": {"total": "719.34", "currency": "AUD"},
            "date": "2026-11-20",
            "reference": reference,
            "items": [{"description": "x", "unit_price": {"amount": "1", "currency": "AUD"}}],
            "created_at": "2026-11-21T00:00:00Z",
            "updated_at": "2026-11-21T00:00:00Z",
        }
    )


def test_given_a_finished_draft_when_the_invoice_sync_asks_then_its_xero_invoice_is_named_once() -> None:
    invoice = xero_invoice()
    world = World(invoice)
    world.service.handle(event_for(invoice))
    trip = RoundTrip(world.records)
    reference = world.drafts.drafts[0][1].reference

    assert trip.origin(_finished(reference)) == invoice.InvoiceID
    assert trip.origin(_finished(reference)) == invoice.InvoiceID  # a retry of the same invoice
    assert trip.origin(_finished(reference, slug="inv_copy")) is None  # a copy made by hand
    assert trip.origin(_finished("INV-1 no marker")) is None
    record = world.records.get(marker_of(str(invoice.InvoiceID)))
    assert record is not None and (record.state, record.ignition_invoice) == ("finalised", "inv_new_1")


# -- the webhook relay ---------------------------------------------------------------------------------


class _Store:
    def __init__(self, answer: bool) -> None:
        self.answer = answer

    def record(self, event: XeroWebhookEvent, received_at: datetime) -> bool:
        return self.answer


class _Queue:
    def __init__(self) -> None:
        self.sent: list[SyncEvent] = []

    def send(self, event: SyncEvent) -> None:
        self.sent.append(event)


def _webhook(category: str, resource: str) -> XeroWebhookEvent:
    return XeroWebhookEvent.model_validate(
        {
            "resourceUrl": "https://api.xero.com/x",
            "resourceId": resource,
            "eventDateUtc": "2026-11-20T09:00:00.000",
            "eventType": "UPDATE",
            "eventCategory": category,
            "tenantId": "t",
        }
    )


def test_given_recorded_invoice_events_when_relayed_then_queued_grouped_by_invoice_others_not() -> None:
    queue = _Queue()
    invoice_id, contact_id = str(uuid.uuid4()), str(uuid.uuid4())

    MarkedInvoiceRelay(_Store(True), queue).record(_webhook("INVOICE", invoice_id), NOW)
    MarkedInvoiceRelay(_Store(True), queue).record(_webhook("CONTACT", contact_id), NOW)
    MarkedInvoiceRelay(_Store(False), queue).record(_webhook("INVOICE", str(uuid.uuid4())), NOW)
    MarkedInvoiceRelay(_Store(True), queue).record(_webhook("INVOICE", invoice_id), NOW)  # redelivered

    assert [(e.event_type, e.record_id, e.group_id) for e in queue.sent] == [
        (XERO_INVOICE_EVENT, invoice_id, f"xero-invoice#{invoice_id}")
    ] * 2
    assert queue.sent[0].event_id == queue.sent[1].event_id  # SQS and the idempotency drop the repeat


# -- the reconciliation's safety net --------------------------------------------------------------------


class _XeroDrafts:
    def __init__(self, invoices: list[Invoice]) -> None:
        self.invoices = invoices
        self.pages: list[int | None] = []

    def find_invoices(self, *, statuses: Sequence[str] = (), page: int | None = None) -> list[Invoice]:
        self.pages.append(page)
        start = ((page or 1) - 1) * 100
        return [i for i in self.invoices if i.Status in statuses][start : start + 100]


def test_given_marked_drafts_and_records_when_reconciled_then_missing_refused_and_waiting_are_reported() -> (
    None
):
    drafted, refused, unseen, waiting, fresh = (xero_invoice() for _ in range(5))
    ours = xero_invoice(reference="IGN: but ours")
    unmarked = xero_invoice(reference="plain")
    records = InMemoryDraftRecords()

    def record(invoice: Invoice, state: DraftState, days_ago: int, **extra: Any) -> None:
        at = NOW - timedelta(days=days_ago)
        records.put(
            DraftRecord(
                marker=marker_of(str(invoice.InvoiceID)),
                xero_invoice_id=str(invoice.InvoiceID),
                xero_number=invoice.InvoiceNumber,
                client_slug="cli_acme",
                state=state,
                intent_at=at,
                drafted_at=at if state == "drafted" else None,
                draft_id=f"dft_{days_ago}",
                app_path=f"/invoices/drafts/dft_{days_ago}",
                **extra,
            ),
            previous=None,
        )

    record(drafted, "drafted", 1)
    record(refused, "refused", 1, reason="the draft's lines come to 1.00 AUD but ...")
    record(waiting, "drafted", 4, total=Decimal("10.00"), currency="AUD")
    record(fresh, "drafted", 2)
    xero = _XeroDrafts([drafted, refused, unseen, ours, unmarked, fresh])
    net = SafetyNet(
        xero,
        records,
        RULES,
        owner_of=lambda ids: {str(ours.InvoiceID): "inv_1"} if str(ours.InvoiceID) in ids else {},
        invoice_slug_prefix="inv_",
    )

    found = {(d.category, d.xero_id): d for d in net.findings(NOW)}

    assert set(found) == {
        ("ignition_draft", refused.InvoiceID),
        ("ignition_draft", unseen.InvoiceID),
        ("ignition_draft", waiting.InvoiceID),
    }
    assert "1.00 AUD" in found[("ignition_draft", refused.InvoiceID)].detail
    assert "no draft asked for" in found[("ignition_draft", unseen.InvoiceID)].detail
    waited = found[("ignition_draft", waiting.InvoiceID)]
    assert waited.detail.startswith(DRAFT_WAITING) and "4 days" in waited.detail
    assert plain(waited, "firm")[0] != plain(found[("ignition_draft", unseen.InvoiceID)], "firm")[0]
    assert xero.pages == [1]


# -- the record in DynamoDB (moto) ---------------------------------------------------------------------


def test_given_two_workers_recording_one_intent_when_both_write_then_the_second_conflicts_and_one_is_listed(
    state_table: str,
) -> None:
    store = DynamoDraftRecordStore(state_table)
    invoice_id = str(uuid.uuid4())
    intent = DraftRecord(marker="0123456789ab", xero_invoice_id=invoice_id, state="intent", intent_at=NOW)

    first = store.put(intent, previous=None)
    with pytest.raises(RecordConflict):
        store.put(intent, previous=None)
    drafted = store.put(first.model_copy(update={"state": "drafted", "draft_id": "dft_1"}), previous=first)
    with pytest.raises(RecordConflict):
        store.put(first.model_copy(update={"state": "refused"}), previous=first)

    assert store.get("0123456789ab") == drafted
    assert [(r.marker, r.state, r.draft_id, r.version) for r in store.all()] == [
        ("0123456789ab", "drafted", "dft_1", 2)
    ]
