"""Reconciliation at scale against the sandbox: N clients and N invoices on each side, in step,
plus a few known discrepancies; one full run through the real reconcile handler.

    .venv/bin/python -m bench.reconcile_scale --clients 100000 --invoices 100000

Prints time, memory (growth of the process's peak RSS during the run; with ``--tracemalloc`` also
the peak of Python allocations, slower) - both include the in-process emulators' page rendering,
so they are upper bounds for the function - and the Xero and Ignition calls the run made.
The emulators' rate limits are raised so the run is not throttled; the call counts are what the
real limits are measured against.
Records are seeded straight into the emulators and mappings written in DynamoDB batches, which is
set-up, not measured.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.environment import Sandbox, SandboxOptions
from shared import aws
from shared.config import RecordType
from shared.store.mappings import WRITE_BATCH, RecordMapping, forward_item, until_processed

AN_HOUR_AGO = datetime.now(UTC) - timedelta(hours=1)
STAMP = AN_HOUR_AGO.isoformat().replace("+00:00", "Z")
DISCREPANCIES = 10  # of each seeded kind
PRICE = {"amount": "100.00", "currency": "AUD"}


def seed(sandbox: Sandbox, clients: int, invoices: int) -> dict[str, int]:
    """Both sides in step, except: DISCREPANCIES clients lost (no Xero contact, no mapping) and
    DISCREPANCIES invoices whose Xero total is one cent off."""
    assert sandbox.resources is not None
    ignition = sandbox.ignition
    contacts: list[dict[str, Any]] = []
    client_map: list[tuple[str, str]] = []
    for i in range(clients):
        slug = f"cli_{i:06d}"
        ignition._records["clients"][slug] = {
            "slug": slug, "name": f"Client {i:06d}", "email": f"c{i}@example.test", "state": "active",
            "kind": "organisation", "created_at": STAMP, "updated_at": STAMP,
        }  # fmt: skip
        if i < DISCREPANCIES:
            continue  # a lost webhook
        contact_id = str(uuid.uuid4())
        contacts.append(
            {"ContactID": contact_id, "ContactNumber": slug, "Name": f"Client {i:06d}",
             "EmailAddress": f"c{i}@example.test", "UpdatedDateUTC": STAMP}
        )  # fmt: skip
        client_map.append((slug, contact_id))
    sandbox.xero.contacts.seed(contacts)
    contact_of = dict(client_map)
    xero_invoices: list[dict[str, Any]] = []
    invoice_map: list[tuple[str, str]] = []
    for i in range(invoices):
        slug = f"inv_{i:06d}"
        client = f"cli_{(i % (clients - DISCREPANCIES)) + DISCREPANCIES:06d}"
        ignition._records["invoices"][slug] = {
            "slug": slug, "reference_number": f"IGN-{i}", "state": "awaiting_payment",
            "client": {"slug": client}, "amount": {"total": "100.00", "currency": "AUD"},
            "date": "2026-11-02", "items": [{"description": "Fees", "quantity": "1", "unit_price": PRICE}],
            "created_at": STAMP, "updated_at": STAMP,
        }  # fmt: skip
        invoice_id = str(uuid.uuid4())
        price = 100.01 if i < DISCREPANCIES else 100.0
        xero_invoices.append(
            {"InvoiceID": invoice_id, "Type": "ACCREC", "Status": "AUTHORISED", "InvoiceNumber": f"IGN-{i}",
             "Reference": slug, "Contact": {"ContactID": contact_of[client]}, "LineAmountTypes": "NoTax",
             "CurrencyCode": "AUD", "Date": "2026-11-02", "DueDate": "2026-11-16", "UpdatedDateUTC": STAMP,
             "LineItems": [{"Description": "Fees", "Quantity": 1, "UnitAmount": price, "AccountCode": "200",
                            "TaxType": "BASEXCLUDED"}]}
        )  # fmt: skip
        invoice_map.append((slug, invoice_id))
    for start in range(0, len(xero_invoices), 5_000):
        sandbox.xero.invoices.seed(xero_invoices[start : start + 5_000])
    write_mappings(sandbox.resources.state_table, "client", client_map)
    write_mappings(sandbox.resources.state_table, "invoice", invoice_map)
    return {"xero_contacts": len(contacts), "xero_invoices": len(xero_invoices)}


def write_mappings(table: str, record_type: str, pairs: list[tuple[str, str]]) -> None:
    ddb = aws.client("dynamodb")
    mappings = [
        RecordMapping(record_type=RecordType(record_type), ignition_id=slug, xero_id=xero_id,
                      ignition_updated_at=AN_HOUR_AGO, synced_at=AN_HOUR_AGO, last_event_id="bench",
                      match_method="created", version=1)
        for slug, xero_id in pairs
    ]  # fmt: skip
    for start in range(0, len(mappings), WRITE_BATCH):
        puts = [{"PutRequest": {"Item": forward_item(m)}} for m in mappings[start : start + WRITE_BATCH]]
        until_processed(
            ddb.batch_write_item, {table: puts}, leftover="UnprocessedItems", what="mappings unwritten"
        )


def measure(clients: int, invoices: int, *, trace: bool = False) -> dict[str, Any]:
    options = SandboxOptions(
        xero_calls_per_minute=100_000,
        xero_calls_per_day=10_000_000,
        xero_limits={"per_minute": 1_000_000, "per_day": 10_000_000},
        extra_config={
            "reconcile": {"max_xero_calls_per_run": 100_000, "max_ignition_requests_per_run": 100_000}
        },
        log_level="ERROR",
    )
    with Sandbox(options) as sandbox:
        sandbox.ignition._rate_limit = 10_000_000  # the emulator's hourly limit, raised like Xero's
        seeded_at = time.monotonic()
        seeded = seed(sandbox, clients, invoices)
        seed_seconds = time.monotonic() - seeded_at
        xero_before = sandbox.xero.state_snapshot()["requests"]["total"]
        ignition_before = sandbox.ignition.state_snapshot()["requests"]["total"]
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        if trace:
            tracemalloc.start()
        started = time.monotonic()
        result = sandbox.run_reconcile({"mode": "full", "dry_run": True})
        seconds = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory() if trace else (0, 0)
        tracemalloc.stop()
        rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        body = aws.client("s3").get_object(Bucket=sandbox.resources.bucket, Key=result["report"]["json"])  # type: ignore[union-attr]
        report = json.loads(body["Body"].read())
        return {
            "clients_per_side": clients,
            "invoices_per_side": invoices,
            "seeded": seeded,
            "seed_seconds": round(seed_seconds, 1),
            "status": result["status"],
            "summary": result["summary"],
            "run_seconds": round(seconds, 1),
            "peak_traced_mib": round(peak / 2**20, 1) if trace else None,
            "max_rss_growth_mib": round((rss_after - rss_before) / 1024, 1),
            "xero_calls": sandbox.xero.state_snapshot()["requests"]["total"] - xero_before,
            "ignition_requests": sandbox.ignition.state_snapshot()["requests"]["total"] - ignition_before,
            "run_counters": report["counters"],
        }


def measure_engine(clients: int, invoices: int, *, trace: bool = True) -> dict[str, Any]:
    """The engine alone at this size (in-memory ports, see ``bench.reconcile_fakes``)."""
    import tempfile
    from pathlib import Path

    from bench.reconcile_fakes import Books, Files, Runs
    from shared.config import IntegrationConfig
    from shared.reconcile.engine import Ports, Reconciler
    from shared.reconcile.model import RunCounters

    counters = RunCounters()
    books = Books(clients, invoices, counters)
    with tempfile.TemporaryDirectory() as tmp:
        files = Files(Path(tmp))
        ports = Ports(xero=books, ignition=books, mappings=books, queue=books, dead_letters=books,
                      runs=Runs(), artifacts=files)  # fmt: skip
        reconciler = Reconciler(ports, IntegrationConfig(), client_name="bench", counters=counters,
                                remaining_seconds=lambda: 900.0, workdir=Path(tmp))  # fmt: skip
        if trace:
            tracemalloc.start()
        started, cpu = time.monotonic(), time.process_time()
        result = reconciler.run("full")
        seconds, cpu_seconds = time.monotonic() - started, time.process_time() - cpu
        _, peak = tracemalloc.get_traced_memory() if trace else (0, 0)
        tracemalloc.stop()
    return {
        "clients_per_side": clients,
        "invoices_per_side": invoices,
        "status": result.status,
        "summary": result.summary,
        "healed": result.healed,
        "run_seconds": round(seconds, 1),
        "cpu_seconds": round(cpu_seconds, 1),
        "peak_traced_mib": round(peak / 2**20, 1) if trace else None,
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "xero_calls": counters.xero_calls,
        "ignition_requests": counters.ignition_requests,
        "dynamodb_batch_gets": counters.dynamodb_batches,
        "report_bytes": files.sizes,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=10_000)
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--tracemalloc", action="store_true", help="trace Python allocations (slower)")
    parser.add_argument(
        "--engine-only", action="store_true", help="in-memory ports instead of the sandbox's servers"
    )
    args = parser.parse_args(argv)
    if args.engine_only:
        figures = measure_engine(args.clients, args.invoices, trace=args.tracemalloc)
    else:
        figures = measure(args.clients, args.invoices, trace=args.tracemalloc)
    sys.stdout.write(json.dumps(figures, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
