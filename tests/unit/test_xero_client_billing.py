"""XeroClient's billing endpoints (invoices, payments, history, reference data) against the Xero
emulator in-process (tests/xero_double.py), which computes amounts in Decimal."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.models.xero import AccountRef, ContactRef, Invoice, InvoiceRef, LineItem, Payment
from shared.oauth import InMemoryTokenStore
from shared.xero.client import MAX_HISTORY_DETAILS_LENGTH, XeroCall
from shared.xero.errors import XeroValidationError
from shared.xero.reference_cache import ReferenceDataCache
from tests.fakes import ManualClock
from tests.xero_double import WireFault, XeroDouble


class World:
    def __init__(self) -> None:
        self.xero = XeroDouble()
        self.clock = self.xero.clock
        self.calls: list[XeroCall] = []
        self.cache = ReferenceDataCache(clock=self.clock.time)
        # The budget is tested elsewhere: room for the 120-invoice batches and page walks here.
        self.client = self.xero.client(
            self.xero.refreshing_tokens(InMemoryTokenStore(self.xero.token_set())),
            on_call=self.calls.append,
            reference_cache=self.cache,
            calls_per_minute=1_000,
        )
        self.contact_id = self.xero.seed("Contacts", {"Name": "Ada Lovelace"})[0]["ContactID"]

    def invoice(
        self, number: str, *lines: tuple[str, str], status: str = "AUTHORISED", **extra: Any
    ) -> Invoice:
        return Invoice(
            Type="ACCREC",
            Contact=ContactRef(ContactID=self.contact_id),
            Date=date(2026, 1, 5),
            DueDate=date(2026, 1, 19),
            InvoiceNumber=number,
            Status=status,
            LineItems=[
                LineItem(Description="Advice", Quantity=Decimal(q), UnitAmount=Decimal(u), AccountCode="200")
                for q, u in (lines or (("1", "100.00"),))
            ],
            **extra,
        )

    def requests(self, method: str | None = None) -> list[httpx.Request]:
        return [r for r in self.xero.api_requests() if method is None or r.method == method]

    def stored(self, resource: str, id_field: str, record_id: str | None) -> dict[str, Any]:
        assert record_id
        return self.xero.record(resource, id_field, record_id)


@pytest.fixture
def world() -> World:
    return World()


# --- Decimal-safe parsing -------------------------------------------------------------------------


def test_given_lines_of_0_10_and_0_20_when_saved_then_totals_come_back_as_exact_decimals(
    world: World,
) -> None:
    [saved] = world.client.save_invoices(
        [world.invoice("INV-1", ("1", "0.10"), ("1", "0.20"), LineAmountTypes="NoTax")]
    )

    assert isinstance(saved.Total, Decimal) and saved.Total == Decimal("0.30")  # not 0.30000000000000004
    assert saved.LineItems is not None
    assert sum((line.LineAmount or Decimal(0) for line in saved.LineItems), Decimal(0)) == saved.Total
    # A field the model does not declare is kept as Decimal too, not as a float.
    assert saved.model_extra is not None and saved.model_extra["AmountCredited"] == Decimal("0")
    assert isinstance(saved.model_extra["AmountCredited"], Decimal)


def test_given_a_json_number_a_float_would_change_when_read_then_every_digit_is_kept(world: World) -> None:
    created = world.client.save_invoices([world.invoice("INV-2")])[0]
    assert created.InvoiceID
    # 17 significant digits: as a float this reads back as 12345678901234568. The emulator keeps
    # floats, so the answer with these digits is canned.
    body = (
        f'{{"Invoices":[{{"InvoiceID":"{created.InvoiceID}","Type":"ACCREC",'
        '"CurrencyRate":1.2345678901234567,"Total":12345678901234567.89}]}'
    )
    world.xero.wire_faults.append(WireFault("answer", body=body.encode()))

    fetched = world.client.get_invoice(created.InvoiceID)

    assert fetched is not None
    assert fetched.CurrencyRate == Decimal("1.2345678901234567")
    assert fetched.Total == Decimal("12345678901234567.89")


def test_given_validation_exception_400_on_invoices_then_error_carries_messages_and_decimal_elements(
    world: World,
) -> None:
    # As Xero summarises a refused batch; 0.10 written as Xero writes it, digit for digit.
    element = (
        '{"InvoiceNumber":"INV-9","LineItems":[{"UnitAmount":0.10}],'
        '"ValidationErrors":[{"Message":"Invoice # must be unique."}]}'
    )
    world.xero.fail_next(
        400,
        body='{"ErrorNumber":10,"Type":"ValidationException","Message":"A validation exception occurred",'
        f'"Elements":[{element}]}}',
    )

    with pytest.raises(XeroValidationError) as caught:
        world.client.save_invoices([world.invoice("INV-9")])

    assert caught.value.messages == ["Invoice # must be unique."]
    assert caught.value.elements[0]["LineItems"][0]["UnitAmount"] == Decimal("0.10")
    assert str(caught.value.elements[0]["LineItems"][0]["UnitAmount"]) == "0.10"


# --- invoices -------------------------------------------------------------------------------------


def test_given_120_invoices_when_saved_then_three_calls_of_at_most_50_and_results_in_order(
    world: World,
) -> None:
    invoices = [world.invoice(f"INV-{i:03}") for i in range(120)]

    saved = world.client.save_invoices(invoices, idempotency_key="run-7")

    posts = world.requests("POST")
    assert [len(json.loads(r.content)["Invoices"]) for r in posts] == [50, 50, 20]
    assert [r.headers["Idempotency-Key"] for r in posts] == ["run-7-1", "run-7-2", "run-7-3"]
    assert all(r.url.params["summarizeErrors"] == "false" for r in posts)
    assert [i.InvoiceNumber for i in saved] == [f"INV-{i:03}" for i in range(120)]
    assert len({i.InvoiceID for i in saved}) == 120


def test_given_a_replayed_batched_save_with_the_same_key_then_xero_creates_nothing_twice(
    world: World,
) -> None:
    invoices = [world.invoice(f"INV-{i:03}") for i in range(60)]

    first = world.client.save_invoices(invoices, idempotency_key="event-1")
    again = world.client.save_invoices(invoices, idempotency_key="event-1")

    assert len(world.xero.records("Invoices")) == 60
    assert [i.InvoiceID for i in again] == [i.InvoiceID for i in first]


def test_given_a_key_too_long_once_numbered_then_nothing_is_sent(world: World) -> None:
    with pytest.raises(ValueError, match="Idempotency-Key"):
        world.client.save_invoices([world.invoice(f"N{i}") for i in range(51)], idempotency_key="k" * 127)

    assert world.requests() == []


def test_given_a_bad_invoice_in_a_batch_then_its_errors_stay_on_it_and_the_others_are_created(
    world: World,
) -> None:
    world.client.save_invoices([world.invoice("INV-TAKEN")])
    bad_account = world.invoice("INV-B")
    assert bad_account.LineItems is not None
    bad_account.LineItems[0].AccountCode = "999"

    # Created with PUT: a POST carrying a taken number would update that invoice, as at Xero.
    result = world.client.create_invoices(
        [world.invoice("INV-A"), world.invoice("INV-TAKEN"), bad_account, world.invoice("INV-C")]
    )

    assert [i.InvoiceNumber for i in result] == ["INV-A", "INV-TAKEN", "INV-B", "INV-C"]
    assert [bool(i.HasErrors) for i in result] == [False, True, True, False]
    assert result[1].ValidationErrors and result[1].ValidationErrors[0].Message == "Invoice # must be unique."
    assert result[2].ValidationErrors and "'999'" in result[2].ValidationErrors[0].Message
    assert result[0].InvoiceID and result[3].InvoiceID
    assert result[1].InvoiceID == "00000000-0000-0000-0000-000000000000"  # Xero's empty GUID: not created
    assert {i["InvoiceNumber"] for i in world.xero.records("Invoices")} == {"INV-TAKEN", "INV-A", "INV-C"}


def test_given_a_4dp_unit_price_when_saved_with_unitdp4_then_flag_is_sent_and_price_kept(
    world: World,
) -> None:
    four = world.client.save_invoices([world.invoice("INV-4", ("3", "12.3456"))], unitdp4=True)[0]
    two = world.client.save_invoices([world.invoice("INV-5", ("3", "12.3456"))])[0]

    first, second = world.requests("POST")
    assert first.url.params["unitdp"] == "4" and "unitdp" not in second.url.params
    assert four.LineItems and four.LineItems[0].UnitAmount == Decimal("12.3456")
    assert four.LineItems[0].LineAmount == Decimal("37.04")
    assert two.LineItems and two.LineItems[0].UnitAmount == Decimal("12.35")
    assert four.InvoiceID
    fetched = world.client.get_invoice(four.InvoiceID, unitdp4=True)
    assert fetched and fetched.LineItems and fetched.LineItems[0].UnitAmount == Decimal("12.3456")
    assert world.requests("GET")[-1].url.params["unitdp"] == "4"


def test_given_create_invoices_then_put_is_used_and_an_existing_id_fails_per_element(world: World) -> None:
    created = world.client.create_invoices([world.invoice("INV-P")])[0]

    again = world.client.create_invoices([created.model_copy(update={"InvoiceNumber": "INV-P2"})])

    assert [r.method for r in world.requests()] == ["PUT", "PUT"]
    assert created.InvoiceID and again[0].HasErrors is True


def test_given_filters_when_finding_invoices_then_xero_query_parameters_are_sent(world: World) -> None:
    since = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

    world.client.find_invoices(
        'Reference=="abc"',
        ids=["a", "b"],
        invoice_numbers=["INV-1", "INV-2"],
        contact_ids=[world.contact_id],
        statuses=["DRAFT", "AUTHORISED"],
        page=2,
        page_size=25,
        modified_since=since,
        summary_only=True,
        unitdp4=True,
    )

    request = world.requests()[0]
    assert dict(request.url.params) == {
        "where": 'Reference=="abc"',
        "IDs": "a,b",
        "InvoiceNumbers": "INV-1,INV-2",
        "ContactIDs": world.contact_id,
        "Statuses": "DRAFT,AUTHORISED",
        "page": "2",
        "pageSize": "25",
        "summaryOnly": "true",
        "unitdp": "4",
    }
    assert request.headers["If-Modified-Since"] == "2026-01-02T03:04:05"


def test_given_250_invoices_when_iterating_then_pages_are_walked_with_line_items(world: World) -> None:
    for chunk in range(5):
        world.client.save_invoices([world.invoice(f"INV-{chunk}-{i}") for i in range(50)])
    world.calls.clear()

    found = list(world.client.iter_invoices(page_size=100))

    assert len(found) == 250 and all(i.LineItems for i in found)
    assert [(c.endpoint, c.status) for c in world.calls] == [("/Invoices", 200)] * 3


def test_given_an_id_or_a_number_when_getting_an_invoice_then_found_or_none(world: World) -> None:
    saved = world.client.save_invoices([world.invoice("INV/7")])[0]
    assert saved.InvoiceID

    by_id = world.client.get_invoice(saved.InvoiceID)
    by_number = world.client.get_invoice("INV/7")
    missing_number = world.client.get_invoice("INV-404")
    missing_id = world.client.get_invoice("00000000-0000-0000-0000-000000000404")

    assert by_id and by_id.InvoiceNumber == "INV/7" and by_id.LineItems
    assert by_number and by_number.InvoiceID == saved.InvoiceID and by_number.LineItems
    assert missing_number is None and missing_id is None
    assert world.requests("GET")[1].url.params["InvoiceNumbers"] == "INV/7"


# --- payments -------------------------------------------------------------------------------------


def _payment(invoice_id: str, amount: str) -> Payment:
    return Payment(
        Invoice=InvoiceRef(InvoiceID=invoice_id),
        Account=AccountRef(Code="090"),  # the emulator's clearing account, enabled for payments
        Date=date(2026, 1, 10),
        Amount=Decimal(amount),
        Reference="pypay_1",
    )


def test_given_payments_then_each_comes_back_in_order_with_its_own_errors(world: World) -> None:
    invoice = world.client.save_invoices([world.invoice("INV-1", ("1", "100.00"))])[0]
    assert invoice.InvoiceID and invoice.Total == Decimal("110.00")

    result = world.client.create_payments(
        [_payment(invoice.InvoiceID, "60.00"), _payment(invoice.InvoiceID, "50.01")]
    )

    put = world.requests("PUT")[0]
    assert put.url.params["summarizeErrors"] == "false"
    assert json.loads(put.content)["Payments"][0]["Amount"] == 60.0
    assert result[0].PaymentID and result[0].Status == "AUTHORISED" and result[0].Amount == Decimal("60.00")
    assert (
        result[1].ValidationErrors
        and "exceeds the amount outstanding" in result[1].ValidationErrors[0].Message
    )
    after = world.client.get_invoice(invoice.InvoiceID)
    assert after and after.AmountDue == Decimal("50.00")


@pytest.mark.parametrize("fault", ["503", "lost"])
def test_given_a_503_or_lost_answer_to_put_payments_then_the_retry_reuses_the_key_and_pays_once(
    world: World, fault: str
) -> None:
    invoice = world.client.save_invoices([world.invoice("INV-1")])[0]
    assert invoice.InvoiceID
    if fault == "503":
        world.xero.fail_next(503)
    else:
        world.xero.wire_faults.append(WireFault("lost"))

    [payment] = world.client.create_payments([_payment(invoice.InvoiceID, "10.00")])

    puts = world.requests("PUT")
    assert len(puts) == 2 and puts[0].headers["Idempotency-Key"] == puts[1].headers["Idempotency-Key"]
    assert puts[0].content == puts[1].content
    assert [p["PaymentID"] for p in world.xero.records("Payments")] == [payment.PaymentID]
    assert world.stored("Invoices", "InvoiceID", invoice.InvoiceID)["AmountDue"] == Decimal("100.00")


def test_given_a_payment_when_deleted_then_it_is_deleted_and_the_invoice_is_due_again(world: World) -> None:
    invoice = world.client.save_invoices([world.invoice("INV-1")])[0]
    assert invoice.InvoiceID
    [paid] = world.client.create_payments([_payment(invoice.InvoiceID, "110.00")])
    assert paid.PaymentID and world.stored("Invoices", "InvoiceID", invoice.InvoiceID)["Status"] == "PAID"

    deleted = world.client.delete_payment(paid.PaymentID)

    post = world.requests("POST")[-1]
    assert post.url.path.endswith(f"/Payments/{paid.PaymentID}")
    assert json.loads(post.content) == {"Status": "DELETED"} and post.headers["Idempotency-Key"]
    assert deleted.Status == "DELETED"
    assert world.stored("Invoices", "InvoiceID", invoice.InvoiceID)["Status"] == "AUTHORISED"
    with pytest.raises(XeroValidationError, match="already been deleted"):
        world.client.delete_payment(paid.PaymentID)


def test_given_payments_when_found_by_id_or_got_then_where_clause_and_none_for_missing(world: World) -> None:
    invoice = world.client.save_invoices([world.invoice("INV-1")])[0]
    assert invoice.InvoiceID
    made = world.client.create_payments(
        [_payment(invoice.InvoiceID, "1.00"), _payment(invoice.InvoiceID, "2.00")]
    )
    first_id = made[0].PaymentID
    assert first_id

    found = world.client.find_payments(ids=[first_id], page=1)
    where_sent = world.requests("GET")[-1].url.params["where"]
    got = world.client.get_payment(first_id)
    missing = world.client.get_payment("00000000-0000-0000-0000-000000000404")
    walked = list(world.client.iter_payments(page_size=1))

    assert [p.PaymentID for p in found] == [first_id]
    assert where_sent == f'PaymentID==Guid("{first_id}")'
    assert got and got.Amount == Decimal("1.00") and missing is None
    assert [p.Amount for p in walked] == [Decimal("1.00"), Decimal("2.00")]
    with pytest.raises(ValueError):
        world.client.find_payments(ids=["not-a-guid"])


# --- history --------------------------------------------------------------------------------------


def test_given_details_over_xeros_250_chars_when_added_to_history_then_truncated_with_an_ellipsis(
    world: World,
) -> None:
    invoice = world.client.save_invoices([world.invoice("INV-1")])[0]
    assert invoice.InvoiceID

    world.client.add_history("Invoices", invoice.InvoiceID, "Synced from Ignition inv_1. " + "x" * 3_000)
    world.client.add_history("Invoices", invoice.InvoiceID, "short note")
    records = world.client.history("Invoices", invoice.InvoiceID)

    sent = json.loads(world.requests("PUT")[0].content)["HistoryRecords"][0]["Details"]
    assert len(sent) == MAX_HISTORY_DETAILS_LENGTH and sent.endswith("\u2026")
    assert sent.startswith("Synced from Ignition inv_1. xxx")
    notes = [r for r in records if r.Changes == "Note"]  # Xero's own entries (created, approved) too
    assert [r.Details for r in notes] == ["short note", sent]  # newest first, as Xero lists them
    assert notes[0].DateUTC is not None
    assert world.calls[-1].endpoint == "/Invoices/{InvoiceID}/History"


def test_given_a_non_guid_record_or_empty_details_then_history_refuses_before_calling(world: World) -> None:
    with pytest.raises(ValueError, match="GUID"):
        world.client.add_history("Contacts", "cli_1", "note")
    with pytest.raises(ValueError, match="empty"):
        world.client.add_history("Contacts", world.contact_id, "   ")
    with pytest.raises(ValueError):
        world.client.history("Quotes", world.contact_id)  # type: ignore[arg-type]

    assert world.requests() == []


# --- reference data -------------------------------------------------------------------------------


def test_given_cached_tax_rates_then_xero_is_read_once_per_ttl_and_again_after_invalidate(
    world: World,
) -> None:
    first = world.client.tax_rates()
    world.clock.advance(3_599)
    second = world.client.tax_rates()
    assert len(world.requests()) == 1
    world.clock.advance(2)
    world.client.tax_rates()
    assert len(world.requests()) == 2
    world.client.invalidate_reference_data("TaxRates")
    world.client.tax_rates()

    assert len(world.requests()) == 3
    assert [t.TaxType for t in first] == [r["TaxType"] for r in world.xero.records("TaxRates")]
    assert first[0].TaxType == "OUTPUT" and first[0].EffectiveRate == Decimal("10") and second == first


def test_given_a_caller_edits_cached_data_then_the_next_read_is_unchanged(world: World) -> None:
    world.client.accounts()[0].Code = "changed"

    assert world.client.accounts()[0].Code == "090"
    assert len(world.requests()) == 1


def test_given_accounts_by_where_then_each_filter_is_cached_on_its_own(world: World) -> None:
    bank = world.client.accounts('Type=="BANK"')
    every = world.client.accounts()
    world.client.accounts('Type=="BANK"')
    world.client.invalidate_reference_data()
    world.client.accounts()

    assert [a.Code for a in bank] == ["090", "091", None]  # a bank account may have no code
    assert len(every) == len(world.xero.records("Accounts")) > len(bank)
    assert [r.url.params.get("where") for r in world.requests()] == ['Type=="BANK"', None, None]


def test_given_a_new_contact_group_then_the_cached_list_is_dropped_and_members_can_be_added(
    world: World,
) -> None:
    assert world.client.contact_groups() == []

    group = world.client.create_contact_group("Ignition clients")
    world.client.add_contacts_to_group(group["ContactGroupID"], [world.contact_id])
    groups = world.client.contact_groups()

    assert [g["Name"] for g in groups] == ["Ignition clients"]
    members = world.stored("ContactGroups", "ContactGroupID", group["ContactGroupID"])["Contacts"]
    assert members == [world.contact_id]
    assert [c.endpoint for c in world.calls] == [
        "/ContactGroups",
        "/ContactGroups",
        "/ContactGroups/{ContactGroupID}/Contacts",
        "/ContactGroups",
    ]
    with pytest.raises(XeroValidationError, match="already exists"):
        world.client.create_contact_group("Ignition clients")


def test_given_tracking_categories_and_branding_themes_then_they_are_read_and_cached(world: World) -> None:
    categories = world.client.tracking_categories()
    themes = world.client.branding_themes()
    world.client.tracking_categories()
    world.client.branding_themes()

    assert categories[0]["Name"] == "Region" and categories[0]["Options"][0]["Name"] == "Sydney"
    assert themes[0]["Name"] == "Standard"
    assert [c.endpoint for c in world.calls] == ["/TrackingCategories", "/BrandingThemes"]


def test_given_a_shared_cache_then_tenants_do_not_see_each_others_data() -> None:
    clock = ManualClock()
    cache = ReferenceDataCache(ttl_seconds=60, clock=clock.time)

    a = cache.get(("tenant-a", "TaxRates"), lambda: ["a"])
    b = cache.get(("tenant-b", "TaxRates"), lambda: ["b"])
    cache.invalidate("tenant-a")

    assert (a, b) == (["a"], ["b"])
    assert cache.get(("tenant-a", "TaxRates"), lambda: ["a2"]) == ["a2"]
    assert cache.get(("tenant-b", "TaxRates"), lambda: ["b2"]) == ["b"]
    with pytest.raises(ValueError):
        cache.invalidate(resource="TaxRates")
