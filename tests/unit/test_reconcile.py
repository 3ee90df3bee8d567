"""The reconciliation's rules, engine and report, with in-memory ports (no network, no AWS)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from bench.reconcile_fakes import AN_HOUR_AGO, CENT_OFF, LOST, Books, Files, Runs
from shared.config import (
    ContactRules,
    IntegrationConfig,
    InvoiceRules,
    PaymentRules,
    ReconcileRules,
    RecordType,
)
from shared.models.xero import Invoice
from shared.reconcile.compare import (
    ClientRow,
    ContactRow,
    InvoiceRow,
    MappingInfo,
    XeroInvoiceRow,
    compare_client,
    compare_invoice,
    invoice_key,
    payment_key,
)
from shared.reconcile.engine import Ports, Reconciler
from shared.reconcile.model import CATEGORIES, Discrepancy, FieldDifference, RunCounters, RunResult
from shared.reconcile.report import Links, write_csv, write_html
from shared.store.mappings import RecordMapping

T0 = "2026-11-01T09:00:00+00:00"
T1 = "2026-11-01T10:00:00+00:00"


def client(**changes: object) -> ClientRow:
    row = ClientRow("cli_1", "Acme", "ops@acme.test", "active", None, None, T0, MappingInfo("c-1", T0, T1))
    for key, value in changes.items():
        setattr(row, key, value)
    return row


def contact(**changes: object) -> ContactRow:
    row = ContactRow("c-1", "cli_1", "Acme", "OPS@acme.test", "ACTIVE", T0)
    for key, value in changes.items():
        setattr(row, key, value)
    return row


def test_given_a_client_in_step_then_no_discrepancy_even_with_email_case_or_a_disambiguated_name() -> None:
    assert compare_client(client(), contact(), ContactRules()) is None
    assert compare_client(client(), contact(name="Acme (cli_1)"), ContactRules()) is None


def test_given_an_email_edited_in_xero_then_field_drift_with_both_values_and_a_forced_requeue() -> None:
    found = compare_client(client(), contact(email="typed@hand.test"), ContactRules())

    assert found is not None and found.category == "field_drift" and found.force
    assert found.differences == [
        FieldDifference(field="email", ignition="ops@acme.test", xero="typed@hand.test")
    ]


@pytest.mark.parametrize(
    ("row", "xero", "category"),
    [
        (client(mapping=MappingInfo()), None, "missing_in_xero"),
        (client(mapping=MappingInfo()), contact(), "not_mapped"),
        (client(updated_at=T1), contact(), "not_applied"),
        (client(), None, "mapped_missing_in_xero"),
        (client(), contact(status="ARCHIVED"), "archived_in_xero"),
    ],
)
def test_given_each_client_situation_then_its_category(
    row: ClientRow, xero: ContactRow | None, category: str
) -> None:
    found = compare_client(row, xero, ContactRules())
    assert found is not None and found.category == category


def test_given_a_lead_the_sync_skips_then_its_absence_from_xero_is_not_a_discrepancy() -> None:
    lead = client(state="lead", mapping=MappingInfo())
    assert compare_client(lead, None, ContactRules(skip_client_states=["lead"])) is None


def invoice_row(**changes: object) -> InvoiceRow:
    row = InvoiceRow("inv_1", "cli_1", "IGN-1", "awaiting_payment", "unpaid", "AUD", "110.00", "110.00", T0,
                     MappingInfo("i-1", T0, T1))  # fmt: skip
    for key, value in changes.items():
        setattr(row, key, value)
    return row


def xero_invoice(**changes: object) -> XeroInvoiceRow:
    row = XeroInvoiceRow("i-1", "inv_1", "IGN-1", "AUTHORISED", "AUD", "110.00", "0", T0)
    for key, value in changes.items():
        setattr(row, key, value)
    return row


def test_given_a_total_one_cent_off_then_total_drift_with_both_amounts() -> None:
    found = compare_invoice(
        invoice_row(), xero_invoice(total="110.01"), InvoiceRules(), payments_in_question=False
    )

    assert found is not None and found.category == "field_drift"
    assert found.differences == [FieldDifference(field="total", ignition="110.00 AUD", xero="110.01 AUD")]


def test_given_an_invoice_voided_in_xero_then_archived_and_reported_not_resurrected() -> None:
    found = compare_invoice(
        invoice_row(), xero_invoice(status="VOIDED"), InvoiceRules(), payments_in_question=False
    )
    assert found is not None and found.category == "archived_in_xero" and not found.force


def test_given_paid_in_ignition_but_not_in_xero_then_amount_paid_drift_unless_a_payment_explains_it() -> None:
    paid = invoice_row(payment_state="paid")
    found = compare_invoice(paid, xero_invoice(), InvoiceRules(), payments_in_question=False)
    assert found is not None and [d.field for d in found.differences] == ["amount_paid"]
    assert compare_invoice(paid, xero_invoice(), InvoiceRules(), payments_in_question=True) is None


def test_given_references_then_only_our_keys_are_read_as_ignition_slugs() -> None:
    assert invoice_key("inv_1", "inv_") == "inv_1"
    assert invoice_key("IGN-7 [inv_9]", "inv_") == "inv_9"
    assert invoice_key("PO 123", "inv_") is None
    assert payment_key("Ignition pypay_1", PaymentRules(), "pypay_") == "pypay_1"
    assert payment_key("Bank transfer", PaymentRules(), "pypay_") is None


def test_given_a_report_only_category_then_requeue_is_refused_in_configuration() -> None:
    with pytest.raises(ValueError, match="duplicate_in_xero can only be reported"):
        ReconcileRules(heal={"duplicate_in_xero": "requeue"})


# --- the engine with in-memory ports ----------------------------------------------------------------


def reconciler(
    books: Books, runs: Runs, tmp_path: Path, counters: RunCounters, **rules: object
) -> Reconciler:
    config = IntegrationConfig(reconcile=ReconcileRules.model_validate(rules))
    ports = Ports(xero=books, ignition=books, mappings=books, queue=books, dead_letters=books, runs=runs,
                  artifacts=Files(tmp_path))  # fmt: skip
    return Reconciler(ports, config, client_name="t", counters=counters, remaining_seconds=lambda: 900.0,
                      workdir=tmp_path)  # fmt: skip


def test_given_lost_clients_and_cent_drifts_when_a_full_run_completes_then_each_found_once_lost_requeued(
    tmp_path: Path,
) -> None:
    counters = RunCounters()
    books = Books(300, 300, counters)

    result = reconciler(books, Runs(), tmp_path, counters, xero_page_size=100).run("full")

    assert result.status == "complete"
    assert result.summary == {"missing_in_xero": LOST, "field_drift": CENT_OFF}
    assert sorted(e.record_id for e in books.sent) == [f"cli_{i:06d}" for i in range(LOST)]
    assert all(e.source == "reconcile" and e.record is not None and not e.force for e in books.sent)


def test_given_a_run_out_of_budget_when_the_next_run_starts_then_it_resumes_and_finds_the_same(
    tmp_path: Path,
) -> None:
    runs, work = Runs(), tmp_path / "s3"
    work.mkdir()
    stored: dict[str, bytes] = {}

    class Bucket(Files):
        def put_file(self, key: str, path: Path, content_type: str) -> None:
            stored[key] = path.read_bytes()

        def get_file(self, key: str, path: Path) -> bool:
            if key not in stored:
                return False
            path.write_bytes(stored[key])
            return True

    def run(max_xero: int) -> RunResult:
        counters = RunCounters()
        books = Books(300, 300, counters)
        config = IntegrationConfig(
            reconcile=ReconcileRules(xero_page_size=10, max_xero_calls_per_run=max_xero)
        )
        ports = Ports(xero=books, ignition=books, mappings=books, queue=books, dead_letters=books, runs=runs,
                      artifacts=Bucket(work))  # fmt: skip
        return Reconciler(ports, config, client_name="t", counters=counters, remaining_seconds=lambda: 900.0,
                          workdir=tmp_path).run("full")  # fmt: skip

    first = run(max_xero=10)
    second = run(max_xero=1_000)

    assert first.status == "partial" and first.stopped_because and "budget" in first.stopped_because
    assert runs.items.get("full") is None  # the checkpoint is cleared once a run completes
    assert (second.status, second.run_id) == ("complete", first.run_id)
    assert second.summary == {"missing_in_xero": LOST, "field_drift": CENT_OFF}


def test_given_nearly_no_time_left_then_the_run_stops_cleanly_as_partial(tmp_path: Path) -> None:
    counters = RunCounters()
    books = Books(50, 50, counters)
    config = IntegrationConfig()
    ports = Ports(xero=books, ignition=books, mappings=books, queue=books, dead_letters=books, runs=Runs(),
                  artifacts=Files(tmp_path))  # fmt: skip
    result = Reconciler(ports, config, client_name="t", counters=counters, remaining_seconds=lambda: 10.0,
                        workdir=tmp_path).run("full")  # fmt: skip

    assert result.status == "partial" and "time" in (result.stopped_because or "")
    assert books.sent == []


# --- report ------------------------------------------------------------------------------------------


def test_given_hostile_values_then_html_escapes_them_and_csv_neutralises_formulas(tmp_path: Path) -> None:
    item = Discrepancy(
        category="field_drift",
        record_type="client",  # type: ignore[arg-type]
        ignition_id="cli_1",
        xero_id="c-1",
        differences=[FieldDifference(field="name", ignition="<b>A</b>", xero='=HYPERLINK("x")')],
        detail="x & y",
    )
    result = RunResult(run_id="r", mode="full", status="complete", started_at=datetime.now(UTC).isoformat(),
                       finished_at=datetime.now(UTC).isoformat(), summary={"field_drift": 1}, healed=0,
                       needs_person=1, report={})  # fmt: skip
    links = Links(ReconcileRules())
    write_html(tmp_path / "r.html", result, [item], links, client_name="<Firm>", max_rows=10)
    write_csv(tmp_path / "r.csv", [item], links)

    html = (tmp_path / "r.html").read_text()
    assert "<b>A</b>" not in html and "&lt;b&gt;A&lt;/b&gt;" in html and "&lt;Firm&gt;" in html
    assert "<script" not in html and "src=" not in html
    (row,) = csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text()))
    assert row["xero_values"].startswith("'=")


def test_given_more_rows_than_the_html_limit_then_the_rest_are_counted_and_left_to_the_csv(
    tmp_path: Path,
) -> None:
    items = [
        Discrepancy(category="missing_in_xero", record_type="client", ignition_id=f"cli_{i}", detail="d")  # type: ignore[arg-type]
        for i in range(25)
    ]
    result = RunResult(run_id="r", mode="full", status="complete", started_at=AN_HOUR_AGO.isoformat(),
                       finished_at=(AN_HOUR_AGO + timedelta(seconds=1)).isoformat(),
                       summary={"missing_in_xero": 25}, healed=0, needs_person=25, report={})  # fmt: skip
    write_html(tmp_path / "r.html", result, items, Links(ReconcileRules()), client_name="f", max_rows=10)

    html = (tmp_path / "r.html").read_text()
    assert html.count('<tr class="finding">') == 10 and "15 more in this category" in html
    assert json.dumps(str(Decimal("0.1")))  # money stays text in the JSON report


class Outbox:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def publish(self, subject: str, message: str) -> None:
        self.sent.append((subject, message))


@pytest.mark.parametrize(("drift", "notified"), [(True, True), (False, False)])
def test_given_the_default_notify_policy_then_sns_only_when_something_needs_a_person(
    tmp_path: Path, drift: bool, notified: bool
) -> None:
    counters = RunCounters()
    books = Books(30, 30 if drift else 0, counters)  # lost clients heal; cent-off invoices need a person
    outbox = Outbox()
    ports = Ports(xero=books, ignition=books, mappings=books, queue=books, dead_letters=books, runs=Runs(),
                  artifacts=Files(tmp_path), notifier=outbox)  # fmt: skip
    config = IntegrationConfig(reconcile=ReconcileRules(heal={"missing_in_xero": "requeue"}))
    result = Reconciler(ports, config, client_name="Firm", counters=counters, remaining_seconds=lambda: 900.0,
                        workdir=tmp_path).run("full")  # fmt: skip

    assert bool(outbox.sent) is notified
    if notified:
        ((subject, message),) = outbox.sent
        assert "need attention" in subject and result.report["html"] in message


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("\t=1+1", "'\t=1+1"),
        ("\r=cmd|' /C calc'!A0", "'\r=cmd|' /C calc'!A0"),
        ("\tplain text after a tab", "'\tplain text after a tab"),
        ('  =HYPERLINK("x")', '\'  =HYPERLINK("x")'),
        (" @SUM(A1)", "' @SUM(A1)"),
        ("\n+1+2", "'\n+1+2"),
        ("-1+2", "'-1+2"),
        ("-12.50", "-12.50"),
        ("12.50", "12.50"),
        ("+3", "+3"),
        ("0", "0"),
        ("Acme Pty Ltd", "Acme Pty Ltd"),
    ],
)
def test_given_a_formula_behind_a_tab_cr_or_spaces_when_written_to_csv_then_text_but_numbers_stay_numbers(
    tmp_path: Path, value: str, written: str
) -> None:
    # Given a drifted value that is a formula hidden behind leading whitespace, or a plain number,
    item = Discrepancy(
        category="field_drift",
        record_type="invoice",  # type: ignore[arg-type]
        ignition_id="inv_1",
        xero_id="i-1",
        differences=[FieldDifference(field="total", ignition="1.00", xero=value)],
        detail=value,
    )
    # When the CSV report is written,
    write_csv(tmp_path / "r.csv", [item], Links(ReconcileRules()))
    # Then the cell is quoted as text exactly when a spreadsheet would read a formula.
    with (tmp_path / "r.csv").open(newline="", encoding="utf-8") as read:
        (row,) = csv.DictReader(read)
    assert row["xero_values"] == written and row["detail"] == written


class BooksWithIgnitionsOwnPush(Books):
    """Ignition's own Xero integration was left on: it pushed invoice 0 before the sync wrote it (no
    link; Xero holds only Ignition's copy) and invoice 1 beside the sync's linked copy. Its copies
    carry Ignition's number and none of our keys."""

    FOREIGN = ("f0000000-0000-4000-8000-000000000000", "f0000000-0000-4000-8000-000000000001")

    def find_invoices(self, where: str | None = None, **kwargs: Any) -> list[Invoice]:
        found = [i for i in super().find_invoices(where, **kwargs) if i.InvoiceNumber != "IGN-0"]
        if kwargs.get("page") == 1:
            found += [
                Invoice(InvoiceID=xero_id, Type="ACCREC", Status="AUTHORISED", InvoiceNumber=f"IGN-{n}",
                        Reference="Proposal accepted", CurrencyCode="AUD", Total=Decimal("100.00"),
                        AmountPaid=Decimal(0), UpdatedDateUTC=AN_HOUR_AGO)
                for n, xero_id in enumerate(self.FOREIGN)
            ]  # fmt: skip
        return found

    def forward(self, record_type: RecordType, ignition_ids: Sequence[str]) -> dict[str, RecordMapping]:
        found = super().forward(record_type, ignition_ids)
        found.pop("inv_000000", None)
        return found


def test_given_invoices_pushed_by_ignitions_own_integration_when_a_full_run_then_reported_never_requeued(
    tmp_path: Path,
) -> None:
    counters = RunCounters()
    books = BooksWithIgnitionsOwnPush(300, 300, counters)

    kept: dict[str, bytes] = {}

    class Keeping(Files):
        def put_file(self, key: str, path: Path, content_type: str) -> None:
            kept[key] = path.read_bytes()

    config = IntegrationConfig(reconcile=ReconcileRules(xero_page_size=1_000))
    ports = Ports(xero=books, ignition=books, mappings=books, queue=books, dead_letters=books, runs=Runs(),
                  artifacts=Keeping(tmp_path))  # fmt: skip
    result = Reconciler(ports, config, client_name="t", counters=counters, remaining_seconds=lambda: 900.0,
                        workdir=tmp_path).run("full")  # fmt: skip

    # Invoice 0 is not "missing" (re-queueing it would write it a second time), and invoice 0's
    # one-cent drift went with the sync's copy.
    assert result.summary == {"missing_in_xero": LOST, "field_drift": CENT_OFF - 1, "written_by_ignition": 2}
    assert result.needs_person >= 2
    assert not any(e.record_id.startswith("inv_") for e in books.sent)
    rows = list(csv.DictReader(io.StringIO(kept[result.report["csv"]].decode())))
    found = {row["ignition_id"]: row for row in rows if row["category"] == "written_by_ignition"}
    assert {slug: row["xero_id"] for slug, row in found.items()} == {
        "inv_000000": BooksWithIgnitionsOwnPush.FOREIGN[0],
        "inv_000001": BooksWithIgnitionsOwnPush.FOREIGN[1],
    }
    assert {row["action"] for row in found.values()} == {"reported"}
    title, explanation = CATEGORIES["written_by_ignition"]
    assert title == "Written outside this product" and "Ignition's Xero settings" in explanation
    assert title in kept[result.report["html"]].decode()
