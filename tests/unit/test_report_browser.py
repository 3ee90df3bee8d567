"""The reconciliation's HTML report as a bookkeeper sees it: rendered by a headless Chromium (Debian's
chromium, installed by ``make browser``; driven by Playwright, whose own browser download is never
used). The findings come through the working set, so the names, numbers and amounts on the page are
the ones the engine fills from the rows it read. A screenshot is kept under ``.artifacts/``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.config import ReconcileRules, RecordType
from shared.reconcile.compare import AllocationRow, ClientRow, InvoiceRow, MappingInfo
from shared.reconcile.model import Discrepancy, FieldDifference, RunResult
from shared.reconcile.report import write_all
from shared.reconcile.workset import WorkSet

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts"
# The arguments that keep Chromium from calling home: no component updates, sync or field trials.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip("no Chromium at /usr/bin/chromium: run `make browser` (needs apt and root) to install it")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed: run make setup"
    )
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def _report(tmp_path: Path) -> Path:
    ws = WorkSet(tmp_path / "work.sqlite3")
    unlinked = MappingInfo()
    ws.add_clients(
        [ClientRow("cli_harbour", "Harbour & Co Accountants", "a@harbour.example", "active", None, None,
                   "2026-11-20T00:00:00+00:00", MappingInfo("c-1", "2026-11-20T00:00:00+00:00", None))]
    )  # fmt: skip
    ws.add_invoices(
        [InvoiceRow("inv_42", "cli_harbour", "INV-0042", "sent", "unpaid", "AUD", "1234.5", "1234.5",
                    "2026-11-20T00:00:00+00:00", MappingInfo("i-42", "2026-11-20T00:00:00+00:00", None))]
    )  # fmt: skip
    ws.add_allocations(
        [AllocationRow("pypay_7:inv_42", "pypay_7", "inv_42", "cli_harbour", "received", "200", "AUD",
                       "2026-11-21T00:00:00+00:00", unlinked)]
    )  # fmt: skip
    ws.build_indexes()
    for item in (
        Discrepancy(category="not_applied", record_type=RecordType.INVOICE, ignition_id="inv_42",
                    xero_id="i-42", detail="Ignition updated 2026-11-26T03:15:00+00:00; the sync last wrote "
                    "2026-11-20T00:00:00+00:00"),
        Discrepancy(category="field_drift", record_type=RecordType.INVOICE, ignition_id="inv_42",
                    xero_id="i-42", detail="Xero's invoice differs from Ignition's",
                    differences=[FieldDifference(field="total", ignition="1234.5 AUD", xero="1200.0 AUD")]),
        Discrepancy(category="missing_in_xero", record_type=RecordType.PAYMENT, ignition_id="pypay_7:inv_42",
                    detail="payment not applied in Xero", action="requeued"),
        Discrepancy(category="dead_letter", record_type=RecordType.CLIENT, ignition_id="cli_harbour",
                    detail="archived_contact: Xero contact c-1 is archived; unarchive it in Xero or set "
                    "contacts.archived_contact to 'reactivate', then replay"),
    ):  # fmt: skip
        ws.add_discrepancy(item)
    summary = ws.counts()
    result = RunResult(run_id="20261126T233000Z-abc123", mode="full", status="complete",
                       started_at="2026-11-26T23:30:00+00:00", finished_at="2026-11-26T23:34:10+00:00",
                       summary=summary, healed=1, needs_person=3, report={})  # fmt: skip
    paths = write_all(tmp_path, result, ws.iter_discrepancies, ReconcileRules(), "harbour")
    ws.close()
    return paths["html"]


def test_given_a_report_when_a_browser_renders_it_then_names_numbers_amounts_and_local_times_show_and_nothing_external_loads(  # noqa: E501
    tmp_path: Path, browser: object
) -> None:
    # Given a run's report with findings on one client's invoice, payment and contact,
    html = _report(tmp_path)
    requests: list[str] = []
    # When headless Chromium opens it (offline: any request but the file itself is recorded),
    page = browser.new_page(viewport={"width": 1200, "height": 900})  # type: ignore[attr-defined]
    page.on("request", lambda request: requests.append(request.url))
    page.goto(html.as_uri(), wait_until="load")
    text = page.inner_text("body")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "reconciliation-report.png"
    page.screenshot(path=str(shot), full_page=True)
    page.close()
    print(f"report screenshot: {shot}")

    # Then the bookkeeper reads names, invoice numbers, amounts with currency and Sydney times,
    assert "Harbour & Co Accountants" in text and "INV-0042" in text
    assert "1,234.50 AUD" in text and "200.00 AUD" in text and "1,200.00 AUD" in text
    assert "27 Nov 2026, 10:30 AEDT" in text  # the run started 23:30 UTC
    assert "26 Nov 2026, 14:15 AEDT" in text  # a time inside a finding's detail
    # each reason in plain words with its action, config keys where they really live,
    assert "The client's contact is archived in Xero." in text and "What to do:" in text
    assert "runtime.contacts.archived_contact in clients/harbour.json" in text
    assert "archived_contact:" not in text and "ambiguous_match" not in text
    # the ids still there as links,
    assert page.is_closed() and "i-42" in text and "go.xero.com" in html.read_text()
    # and the page loaded nothing but itself.
    assert requests == [html.as_uri()], requests
    assert shot.stat().st_size > 10_000
