"""The real Xero client and contact matching against the strict Xero emulator (in process, no
sockets): lookups stay inside Xero's size limits, never put unsafe text into ``where``, and find the
contact whatever the case of its e-mail or name and whatever characters the name holds."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest

from shared.billing import InvoicePlan, payment_reference
from shared.config import ContactRules, IgnitionConfig, InvoiceRules, PaymentRules
from shared.contacts import ContactSync, contact_lookup
from shared.invoices import InvoiceSync
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionClient, IgnitionInvoice, IgnitionPayment
from shared.models.xero import AccountRef, Invoice, InvoiceRef, Payment
from shared.money import Money
from shared.oauth import InMemoryTokenStore
from shared.payments import PaymentSync
from shared.xero.client import MAX_IDS_PER_CALL, MAX_URL_LENGTH, fit_in_url, url_length
from tests.fakes import InMemoryIgnition, InMemoryMappingStore
from tests.sync_events import sync_event
from tests.xero_double import XeroDouble

T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


class Strict:
    """The real XeroClient on the emulator in-process (tests/xero_double.py), at the production base
    URL so that URL lengths are measured as against api.xero.com."""

    def __init__(self) -> None:
        self.xero = XeroDouble()
        tokens = self.xero.refreshing_tokens(InMemoryTokenStore(self.xero.token_set()))
        self.client = self.xero.client(tokens, api_url="https://api.xero.com")

    def seed(self, *contacts: dict[str, Any]) -> list[dict[str, Any]]:
        return self.xero.seed("Contacts", *contacts)

    def api_urls(self) -> list[str]:
        return [str(r.url) for r in self.xero.api_requests() if "/api.xro/2.0/" in str(r.url)]

    def contacts(self) -> list[dict[str, Any]]:
        return self.xero.records("Contacts")


@pytest.fixture
def strict() -> Strict:
    return Strict()


def _ids_in(url: str) -> int:
    value = httpx.URL(url).params.get("IDs")
    return len(value.split(",")) if value else 0


# -- the one chunking helper ---------------------------------------------------------------------


def test_given_values_when_fitted_then_chunks_respect_count_and_full_url_length() -> None:
    url = "https://api.xero.com/api.xro/2.0/Contacts"
    values = [f"{i:036d}" for i in range(120)]

    def params(chunk: list[str]) -> dict[str, str]:
        return {"IDs": ",".join(chunk), "includeArchived": "true"}

    chunks = fit_in_url(values, url, params)

    assert [v for chunk in chunks for v in chunk] == values
    assert all(len(c) <= MAX_IDS_PER_CALL and url_length(url, params(c)) <= MAX_URL_LENGTH for c in chunks)
    # 50 GUIDs with encoded commas and includeArchived are over 2,000 characters: length decides.
    assert url_length(url, params(values[:50])) > MAX_URL_LENGTH and len(chunks[0]) < 50
    with pytest.raises(ValueError):
        fit_in_url(["x" * 3000], url, lambda chunk: {"searchTerm": chunk[0]})


# -- the client against the strict emulator ----------------------------------------------------------


def test_given_120_contacts_when_found_by_ids_then_all_returned_in_calls_xero_accepts(strict: Strict) -> None:
    # XeroAPI/Xero-OpenAPI#534: over ~50 IDs or ~2,000 URL characters Xero answers 404.
    seeded = strict.seed(*({"Name": f"Client {i}"} for i in range(120)))
    ids = [c["ContactID"] for c in seeded]

    found = strict.client.find_contacts(ids=ids, include_archived=True)

    assert sorted(str(c.ContactID) for c in found) == sorted(ids)
    urls = strict.api_urls()
    assert len(urls) >= 3
    assert all(_ids_in(u) <= MAX_IDS_PER_CALL and len(u) <= MAX_URL_LENGTH for u in urls)


def test_given_60_payment_ids_when_found_then_where_clauses_split_under_2000_characters(
    strict: Strict,
) -> None:
    # /Payments has no IDs=: the ids become PaymentID==Guid(...) clauses, ~100 encoded chars each.
    ids = [f"00000000-0000-4000-8000-{i:012d}" for i in range(60)]

    assert strict.client.find_payments(ids=ids) == []

    urls = strict.api_urls()
    assert len(urls) >= 3 and all(len(u) <= MAX_URL_LENGTH for u in urls)
    assert sum(httpx.URL(u).params["where"].count("PaymentID") for u in urls) == 60


def test_given_a_request_xero_would_refuse_for_its_length_then_it_is_never_sent(strict: Strict) -> None:
    with pytest.raises(ValueError, match="2000"):
        strict.client.find_contacts(search_term="x" * 2_100)
    assert strict.api_urls() == []


def test_given_many_clauses_when_found_any_of_then_split_and_each_contact_once(strict: Strict) -> None:
    strict.seed(*({"Name": f"Firm number {i:03}", "EmailAddress": f"f{i}@x.test"} for i in range(60)))
    clauses = [f'Name=="Firm number {i:03}"' for i in range(60)] + ['EmailAddress=="f0@x.test"']

    found = strict.client.find_contacts(any_of=clauses)

    assert sorted(c.Name or "" for c in found) == [f"Firm number {i:03}" for i in range(60)]
    assert len(strict.api_urls()) >= 2 and all(len(u) <= MAX_URL_LENGTH for u in strict.api_urls())


# -- contact matching against the strict emulator ------------------------------------------------------


def _sync(strict: Strict, store: InMemoryMappingStore) -> ContactSync:
    return ContactSync(
        xero=strict.client,
        ignition=InMemoryIgnition(),
        store=store,
        rules=ContactRules(),
        ignition_config=IgnitionConfig(),
        now=lambda: T0,
    )


def _event(slug: str, name: str, email: str | None) -> SyncEvent:
    record = {
        "slug": slug,
        "name": name,
        "email": email,
        "created_at": T0.isoformat(),
        "updated_at": T0.isoformat(),
    }
    return sync_event(slug, record, event_id=f"evt_{slug}", at=T0)


def test_given_contact_email_differs_in_case_when_client_synced_then_linked_without_duplicate(
    strict: Strict,
) -> None:
    # make run's story: Xero has HELLO@bright.test, Ignition says hello@bright.test.
    (existing,) = strict.seed({"Name": "Bright Accounting Pty Ltd", "EmailAddress": "HELLO@bright.test"})
    store = InMemoryMappingStore()

    outcome = _sync(strict, store).handle(_event("cli_bright", "Bright Accounting", "hello@bright.test"))

    assert outcome.action == "updated" and outcome.match_method == "email"
    assert outcome.xero_id == existing["ContactID"]
    assert [c["ContactID"] for c in strict.contacts()] == [existing["ContactID"]]
    assert len(strict.api_urls()) == 2  # one lookup, one save


def test_given_contact_name_differs_in_case_when_client_synced_then_linked_by_name(strict: Strict) -> None:
    (existing,) = strict.seed({"Name": "ACME HOLDINGS"})
    store = InMemoryMappingStore()

    outcome = _sync(strict, store).handle(_event("cli_acme", "Acme Holdings", None))

    assert outcome.match_method == "name" and outcome.xero_id == existing["ContactID"]
    assert len(strict.contacts()) == 1


def test_given_other_clients_contact_has_the_name_in_another_case_then_new_contact_is_disambiguated(
    strict: Strict,
) -> None:
    # Xero's names are unique among active contacts case-insensitively (freakboy3742/pyxero#172).
    strict.seed({"Name": "acme holdings", "ContactNumber": "cli_first"})
    store = InMemoryMappingStore()

    outcome = _sync(strict, store).handle(_event("cli_second", "Acme Holdings", "ops@acme-two.test"))

    assert outcome.action == "created"
    assert any("belongs to another client's contact" in d for d in outcome.decisions)
    names = sorted(c["Name"] for c in strict.contacts())
    assert names == ["Acme Holdings (cli_second)", "acme holdings"]
    assert len(strict.api_urls()) == 2  # found the clash in the lookup: no refused save first


ODD_NAMES = ['O"Brien Partners', "Back\\slash Trading\\", 'Kanga 🦘 "Roo" Café', "x" * 120 + " 🦘" * 40]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_given_name_with_quote_backslash_or_emoji_when_new_client_synced_then_created_with_that_name(
    strict: Strict, name: str
) -> None:
    outcome = _sync(strict, InMemoryMappingStore()).handle(_event("cli_odd", name, "odd@x.test"))

    assert outcome.action == "created"
    (created,) = strict.contacts()
    assert created["Name"] == name and created["ContactNumber"] == "cli_odd"
    assert all(len(u) <= MAX_URL_LENGTH for u in strict.api_urls())


@pytest.mark.parametrize("name", ODD_NAMES)
def test_given_hand_entered_contact_with_odd_name_when_client_differs_in_case_then_linked_by_name(
    strict: Strict, name: str
) -> None:
    (existing,) = strict.seed({"Name": name})

    outcome = _sync(strict, InMemoryMappingStore()).handle(_event("cli_odd", name.upper(), None))

    assert outcome.action == "updated" and outcome.match_method == "name"
    assert outcome.xero_id == existing["ContactID"] and len(strict.contacts()) == 1
    assert all(len(u) <= MAX_URL_LENGTH for u in strict.api_urls())


def test_given_unsafe_name_when_lookup_built_then_it_goes_to_search_term_and_never_into_where() -> None:
    client = IgnitionClient(
        slug="cli_x", name='O"Brien \\ Co', email="A@B.test", created_at=T0, updated_at=T0
    )

    lookup = contact_lookup(client, ContactRules())

    assert lookup.search_terms == ('O"Brien \\ Co',)
    assert all('"Brien' not in clause and "\\" not in clause for clause in lookup.any_of)
    assert 'EmailAddress!=null AND EmailAddress.ToLower()=="a@b.test"' in lookup.any_of
    assert 'ContactNumber=="cli_x"' in lookup.any_of


def test_given_reference_with_a_quote_when_invoice_written_before_a_crash_then_found_by_its_slug(
    strict: Strict,
) -> None:
    # number_field "Reference": Xero's Reference is "<Ignition number> [<slug>]", and Ignition's
    # number is typed by people; a quote in it must not make the crash-recovery lookup a 400.
    (contact,) = strict.seed({"Name": "Quote Co"})
    reference = 'INV "7\\" [inv_quote]'
    ours = {"Type": "ACCREC", "Contact": {"ContactID": contact["ContactID"]}, "Reference": reference}
    (seeded, _other) = strict.xero.seed("Invoices", ours, {**ours, "Reference": "other [inv_quote]"})
    store = InMemoryMappingStore()
    invoices = InvoiceSync(
        xero=strict.client,
        ignition=InMemoryIgnition(),
        store=store,
        contacts=_sync(strict, store),
        rules=InvoiceRules(number_field="Reference"),
        unit="major",
    )
    ignition_invoice = IgnitionInvoice.model_validate(
        {
            "slug": "inv_quote",
            "reference_number": 'INV "7\\"',
            "client": {"slug": "cli_q"},
            "amount": {"total": "10.00", "currency": "AUD"},
            "date": "2026-11-01",
            "items": [{"unit_price": {"amount": "10.00", "currency": "AUD"}}],
            "created_at": T0.isoformat(),
            "updated_at": T0.isoformat(),
        }
    )
    money = Money(amount=Decimal("10.00"), currency="AUD")
    plan = InvoicePlan(
        invoice=Invoice(Reference=reference),
        ignition_total=money,
        predicted_total=money,
        rounding_adjustment=Decimal(0),
        unitdp4=False,
    )
    decisions: list[str] = []

    found = invoices._find_existing(ignition_invoice, plan, decisions)

    assert found == seeded["InvoiceID"]
    assert all("%22INV" not in u for u in strict.api_urls())  # the typed number never went into where


def test_given_xero_folds_a_name_wider_than_to_lower_when_new_client_saved_then_linked_not_duplicated(
    strict: Strict,
) -> None:
    # Names are unique case-insensitively in Xero (freakboy3742/pyxero#172); its collation equates
    # STRASSE and Straße, which ToLower() does not: the where lookup misses, the save is refused.
    (existing,) = strict.seed({"Name": "STRASSE BAU GMBH"})

    outcome = _sync(strict, InMemoryMappingStore()).handle(_event("cli_bau", "Straße Bau GmbH", None))

    assert outcome.action == "updated" and outcome.match_method == "name"
    assert outcome.xero_id == existing["ContactID"]
    assert [c["Name"] for c in strict.contacts()] == ["Straße Bau GmbH"]
    assert any("a search by name found" in d for d in outcome.decisions)


def test_given_payment_prefix_with_a_quote_when_payment_written_before_a_crash_then_adopted_not_reapplied(
    strict: Strict,
) -> None:
    rules = PaymentRules(reference_prefix='Card "web" ')
    (contact,) = strict.seed({"Name": "Payer Co"})
    line = {
        "Description": "Work",
        "Quantity": 1,
        "UnitAmount": 100,
        "AccountCode": "200",
        "TaxType": "OUTPUT",
    }
    (invoice,) = strict.xero.seed(
        "Invoices",
        {
            "Type": "ACCREC",
            "Status": "AUTHORISED",
            "Contact": {"ContactID": contact["ContactID"]},
            "LineItems": [line],
        },
    )
    payment = IgnitionPayment.model_validate(
        {
            "slug": "pypay_q1",
            "client": {"slug": "cli_payer"},
            "amount": {"amount": "50.00", "currency": "AUD"},
            "invoices": [{"slug": "inv_payer"}],
            "created_at": T0.isoformat(),
        }
    )
    (written,) = strict.client.create_payments(
        [
            Payment(
                Invoice=InvoiceRef(InvoiceID=invoice["InvoiceID"]),
                Account=AccountRef(Code="090"),
                Date=T0.date(),
                Amount=Decimal("50.00"),
                Reference=payment_reference(payment, rules),
            )
        ]
    )
    store = InMemoryMappingStore()
    contacts = _sync(strict, store)
    invoices = InvoiceSync(
        xero=strict.client,
        ignition=InMemoryIgnition(),
        store=store,
        contacts=contacts,
        rules=InvoiceRules(),
        unit="major",
    )
    payments = PaymentSync(
        xero=strict.client,
        ignition=InMemoryIgnition(),
        store=store,
        invoices=invoices,
        rules=rules,
        unit="major",
    )

    adopted = payments._already_in_xero(payment, {"inv_payer": invoice["InvoiceID"]}, [])

    assert {slug: p.PaymentID for slug, p in adopted.items()} == {"inv_payer": written.PaymentID}
