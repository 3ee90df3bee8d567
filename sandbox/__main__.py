"""``python -m sandbox serve`` runs the product locally until stopped; ``python -m sandbox demo``
runs the whole flow once and prints what happened (this is ``make run``)."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx

from sandbox.environment import XERO_WEBHOOK_KEY, Sandbox, SandboxOptions
from shared.ignition.webhook import sign_webhook
from shared.money import format_money
from shared.xero.webhooks import sign
from shared.xero_to_ignition.trigger import marker_in, marker_of

# The sandbox's reconciliation schedule: often enough that a lost webhook heals while you watch.
DEFAULT_RECONCILE_EVERY_SECONDS = 300.0
STATE_FILE = Path(__file__).resolve().parent.parent / ".sandbox.json"


def _quiet_logs(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def serve(args: argparse.Namespace, out: TextIO) -> int:
    every = args.reconcile_every if args.reconcile_every > 0 else None
    options = SandboxOptions(
        log_level=args.log_level,
        reconcile_every=every,
        xero_country=args.xero_country,
        ignition_sources=tuple(dict.fromkeys(args.ignition_sources.split(","))),
        poll_every=args.poll_every if args.poll_every > 0 else None,
        xero_to_ignition=args.xero_to_ignition,
    )
    sandbox = Sandbox(options).start()
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    info = sandbox.info()
    STATE_FILE.write_text(json.dumps(info) + "\n", encoding="utf-8")
    out.write(json.dumps(info) + "\n")
    out.flush()
    try:
        stop.wait()
    finally:
        sandbox.stop()
        STATE_FILE.unlink(missing_ok=True)
    return 0


def _item(description: str, price: str, quantity: str = "1", tax_rate: str | None = "10") -> dict[str, Any]:
    item: dict[str, Any] = {
        "description": description,
        "quantity": quantity,
        "unit_price": {"amount": price, "currency": "AUD"},
    }
    if tax_rate is not None:
        item["tax_rate"] = tax_rate
    return item


DEMO_CLIENTS: list[dict[str, Any]] = [
    {
        "slug": "cli_jane",
        "name": "Smith, Jane",
        "kind": "person",
        "email": "jane@smith.test",
        "phone": "+61 400 000 001",
    },
    {"slug": "cli_bright", "name": "Bright Accounting Pty Ltd", "email": "HELLO@bright.test"},
    {
        "slug": "cli_acme",
        "name": "Acme Holdings",
        "email": "accounts@acme.test",
        "addresses": [
            {
                "kind": "street",
                "line1": "1 George St",
                "city": "Sydney",
                "postal_code": "2000",
                "country": "AU",
            }
        ],
    },
    {"slug": "cli_acme2", "name": "Acme Holdings", "email": "ops@acme-two.test"},
]
# Created in Ignition with no webhook sent: it reaches Xero only through the Reporting API poller.
DEMO_POLLED_CLIENT: dict[str, Any] = {
    "slug": "cli_quiet",
    "name": "Quiet Pty Ltd",
    "email": "admin@quiet.test",
}
DEMO_INVOICES: list[dict[str, Any]] = [
    {
        "slug": "inv_acme_1",
        "reference_number": "IGN-1001",
        "client": {"slug": "cli_acme"},
        "amount": {"total": "360.01", "currency": "AUD"},
        "date": "2026-11-02",
        "items": [_item("Monthly bookkeeping", "33.335", "3"), _item("Tax return", "250.00", tax_rate="0")],
    },
    {
        "slug": "inv_jane_1",
        "reference_number": "IGN-1002",
        "client": {"slug": "cli_jane"},
        "amount": {"total": "550.00", "currency": "AUD"},
        "date": "2026-11-02",
        "tax_inclusive": True,
        "due_date": "2026-11-30",
        "items": [_item("Personal tax return", "550.00")],
    },
    {
        "slug": "inv_bright_1",
        "reference_number": "IGN-1003",
        "client": {"slug": "cli_bright"},
        "amount": {"total": "0.17", "currency": "AUD"},
        "date": "2026-11-02",
        "items": [_item("Postage", "0.05")] * 3,
    },
]
DEMO_PAYMENTS: list[dict[str, Any]] = [
    {
        "slug": "pypay_acme_1",
        "client": {"slug": "cli_acme"},
        "amount": {"amount": "200.00", "currency": "AUD"},
        "invoices": [{"slug": "inv_acme_1"}],
    },
    {
        "slug": "pypay_jane_1",
        "client": {"slug": "cli_jane"},
        "amount": {"amount": "550.00", "currency": "AUD"},
        "invoices": [{"slug": "inv_jane_1"}],
    },
]


# Work finished in Xero and marked for Ignition (Reference "IGN: ..."): three lines, mixed GST.
DEMO_XERO_DRAFT: dict[str, Any] = {
    "Type": "ACCREC",
    "Status": "DRAFT",
    "Reference": "IGN: December advisory",
    "Date": "2026-12-01",
    "DueDate": "2026-12-15",
    "LineAmountTypes": "Exclusive",
    "CurrencyCode": "AUD",
    "LineItems": [
        {"Description": "Advisory session", "Quantity": "2", "UnitAmount": "180.00", "TaxType": "OUTPUT"},
        {
            "Description": "ASIC fee (GST free)",
            "Quantity": "1",
            "UnitAmount": "63.00",
            "TaxType": "EXEMPTOUTPUT",
        },
        {"Description": "Payroll setup", "Quantity": "2", "UnitAmount": "33.335", "TaxType": "OUTPUT"},
    ],
}


class Demo:
    """The story a newcomer should see: new clients, a client already in Xero, an update, a
    duplicate delivery, two clients with one name, a forged webhook that is refused; then invoices
    (GST, a 4-dp price, a total Ignition rounded differently) and payments (partial, full, repeated);
    a client no webhook announces, which one run of the poller brings across; last, the other
    direction: a draft marked in Xero becomes an Ignition draft, is finished there with one click
    and comes back onto the same Xero invoice."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(timeout=30)
        self.deliveries: list[dict[str, Any]] = []

    def put(self, resource: str, record: dict[str, Any]) -> dict[str, Any]:
        response = self.http.put(
            f"{self.sandbox.ignition_url}/_emulator/{resource}/{record['slug']}", json=record
        )
        response.raise_for_status()
        delivery: dict[str, Any] = response.json()["delivery"]
        self.deliveries.append(delivery)
        return delivery

    def redeliver(self, event_id: str) -> None:
        self.http.post(
            f"{self.sandbox.ignition_url}/_emulator/webhooks/redeliver", json={"event_id": event_id}
        ).raise_for_status()
        self.deliveries.append({"status": 202, "event_id": event_id, "duplicate": True})

    def xero(self) -> dict[str, Any]:
        # Amounts as Decimal: a JSON float would print 550.0 and could lose a cent.
        state: dict[str, Any] = json.loads(
            self.http.get(f"{self.sandbox.xero_url}/_emulator/state").text, parse_float=Decimal
        )
        return state

    def phase(self, work: list[tuple[str, dict[str, Any]]], duplicates: int = 0) -> int:
        """Deliver ``work``, redeliver the first event ``duplicates`` times; Xero calls it took."""
        before = self.xero()["requests"]["total"]
        first = None
        for resource, record in work:
            delivery = self.put(resource, {**record, "created_at": "2026-11-01T09:00:00Z"})
            first = first or delivery["event_id"]
        for _ in range(duplicates):
            assert first is not None
            self.redeliver(first)
        self.sandbox.wait_until_idle(timeout=120)
        return int(self.xero()["requests"]["total"]) - int(before)

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        self.http.post(
            f"{self.sandbox.xero_url}/_emulator/contacts",
            json={
                "Contacts": [
                    {"Name": "Bright Accounting (entered by hand)", "EmailAddress": "hello@bright.test"}
                ]
            },
        ).raise_for_status()
        calls = {
            "clients": self.phase([("clients", c) for c in DEMO_CLIENTS], duplicates=2),
            "client_update": self.phase([("clients", {**DEMO_CLIENTS[2], "email": "billing@acme.test"})]),
            "invoices": self.phase([("invoices", i) for i in DEMO_INVOICES]),
            "payments": self.phase([("payments", p) for p in DEMO_PAYMENTS], duplicates=2),
        }
        polled = self.poll_phase()
        drafted = self.xero_to_ignition_phase()
        body = json.dumps(
            {
                "id": "evt_forged",
                "type": "client.created",
                "occurred_at": "2026-11-01T09:00:00Z",
                "data": {"slug": "cli_evil", "name": "Evil"},
            }
        ).encode()
        forged = self.http.post(
            self.sandbox.info()["webhook_url"],
            content=body,
            headers={
                **sign_webhook(body, "wrong-secret", self.sandbox.webhook),
                "Content-Type": "application/json",
            },
        )
        self.sandbox.wait_until_idle(timeout=120)
        summary = self.summary(calls, polled, forged.status_code, time.monotonic() - started)
        summary["xero_to_ignition"] = drafted
        return summary

    def xero_to_ignition_phase(self) -> dict[str, Any]:
        """A Xero DRAFT marked for Ignition on cli_acme's contact, Xero's webhook for it, the person's
        click in Ignition (the emulator's finalise), and what Xero then holds for that work."""
        xero = self.xero()
        contact_id = next(c["ContactID"] for c in xero["Contacts"] if c.get("ContactNumber") == "cli_acme")
        seeded = self.http.post(
            f"{self.sandbox.xero_url}/_emulator/invoices",
            json={"Invoices": [{**DEMO_XERO_DRAFT, "Contact": {"ContactID": contact_id}}]},
        )
        seeded.raise_for_status()
        marked = seeded.json()["Invoices"][0]
        body = json.dumps(
            {
                "events": [
                    {
                        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Invoices/{marked['InvoiceID']}",
                        "resourceId": marked["InvoiceID"],
                        "eventDateUtc": "2026-12-01T09:00:00.000",
                        "eventType": "UPDATE",
                        "eventCategory": "INVOICE",
                        "tenantId": self.sandbox.xero.tenant_id,
                    }
                ],
                "firstEventSequence": 1,
                "lastEventSequence": 1,
                "entropy": "DEMOXEROTOIGNITION",
            }
        ).encode()
        self.http.post(
            self.sandbox.info()["xero_webhook_url"],
            content=body,
            headers={"x-xero-signature": sign(body, XERO_WEBHOOK_KEY), "Content-Type": "application/json"},
        ).raise_for_status()
        self.sandbox.wait_until_idle(timeout=120)
        ignition = self.http.get(f"{self.sandbox.ignition_url}/_emulator/state").json()
        drafts = [
            d
            for d in ignition.get("invoice_drafts", [])
            if marker_in(d.get("reference")) == marker_of(marked["InvoiceID"])
        ]
        story: dict[str, Any] = {
            "xero_draft": marked.get("InvoiceNumber"),
            "reference": DEMO_XERO_DRAFT["Reference"],
            "xero_total": format_money(str(marked["Total"]), "AUD"),
            "ignition_drafts": len(drafts),
        }
        if len(drafts) != 1:
            return story
        draft = drafts[0]
        story.update(
            draft=draft["id"], lines=len(draft["lines"]), draft_total=format_money(draft["total"], "AUD")
        )
        finished = self.http.post(
            f"{self.sandbox.ignition_url}/_emulator/invoice-drafts/{draft['id']}/finalise"
        )
        finished.raise_for_status()
        self.sandbox.wait_until_idle(timeout=120)
        slug = finished.json()["draft"]["invoice_slug"]
        # The work in Xero: the marked invoice, and any other that names the finished one.
        work = [
            i
            for i in self.xero()["Invoices"]
            if (i["InvoiceID"] == marked["InvoiceID"] or slug in str(i.get("Reference")))
            and i.get("Status") not in ("VOIDED", "DELETED")
        ]
        back: dict[str, Any] = next((i for i in work if i["InvoiceID"] == marked["InvoiceID"]), {})
        invoices = self.http.get(f"{self.sandbox.ignition_url}/_emulator/state").json()["invoices"]
        story.update(
            ignition_invoice=next((i["reference_number"] for i in invoices if i["slug"] == slug), slug),
            xero_invoices_for_the_work=len(work),
            xero_number=back.get("InvoiceNumber"),
            xero_status=back.get("Status"),
            xero_total_after=_xero_money(back or None, "Total", "AUD"),
        )
        return story

    def poll_phase(self) -> dict[str, Any]:
        """A client stored in Ignition with no webhook (the emulator's ``deliver=false``), then one
        poller run, as its EventBridge schedule would start it."""
        record = {**DEMO_POLLED_CLIENT, "created_at": "2026-11-01T09:00:00Z"}
        self.http.put(
            f"{self.sandbox.ignition_url}/_emulator/clients/{record['slug']}",
            json=record,
            params={"deliver": "false"},
        ).raise_for_status()
        before = self.xero()["requests"]["total"]
        run = self.sandbox.run_poll()
        self.sandbox.wait_until_idle(timeout=120)
        return {
            "client": DEMO_POLLED_CLIENT["slug"],
            "queued": run["queued"],
            "ignition_requests": run["ignition_requests"],
            "xero_calls": int(self.xero()["requests"]["total"]) - int(before),
        }

    def summary(
        self, calls: dict[str, int], polled: dict[str, Any], forged_status: int, seconds: float
    ) -> dict[str, Any]:
        xero = self.xero()
        contacts = [c for c in xero["Contacts"] if c.get("ContactStatus") == "ACTIVE"]
        by_number = {c.get("ContactNumber"): c for c in contacts}
        invoices = {i.get("Reference"): i for i in xero["Invoices"]}
        poller = self.sandbox.poller
        assert poller is not None
        return {
            "clients": [
                {
                    "ignition": c["slug"],
                    "xero_contact": by_number.get(c["slug"], {}).get("ContactID"),
                    "xero_name": by_number.get(c["slug"], {}).get("Name"),
                    "email": by_number.get(c["slug"], {}).get("EmailAddress"),
                }
                for c in [*DEMO_CLIENTS, DEMO_POLLED_CLIENT]
            ],
            "polled": polled,
            "invoices": [
                {
                    "ignition": i["slug"],
                    "ignition_total": format_money(i["amount"]["total"], i["amount"]["currency"]),
                    "xero_number": invoices.get(i["slug"], {}).get("InvoiceNumber"),
                    "xero_total": _xero_money(invoices.get(i["slug"]), "Total", i["amount"]["currency"]),
                    "xero_paid": _xero_money(invoices.get(i["slug"]), "AmountPaid", i["amount"]["currency"]),
                    "xero_status": invoices.get(i["slug"], {}).get("Status"),
                }
                for i in DEMO_INVOICES
            ],
            "xero_payments": len([p for p in xero["Payments"] if p.get("Status") != "DELETED"]),
            "xero_contacts_total": len(contacts),
            "webhooks": {
                "delivered": len(self.deliveries),
                "duplicates": sum(1 for d in self.deliveries if d.get("duplicate")),
                "accepted": sum(d["status"] == 202 for d in self.deliveries),
                "forged_rejected_with": forged_status,
            },
            "sync": {
                "invocations": poller.stats.invocations,
                "records": poller.stats.records,
                "failed_records": poller.stats.failed_records,
            },
            "dead_letters": len(self.sandbox.dead_letters()),
            # Calls a function's role did not allow (sandbox/iam.py), as "function action resource".
            "aws_calls_refused": [
                f"{role.function} {request.action} {request.resource}"
                for role in (self.sandbox.iam.roles.values() if self.sandbox.iam else [])
                for request in role.denied
            ],
            "xero_calls": {
                **calls,
                "total": xero["requests"]["total"],
                "by_endpoint": xero["requests"]["by_endpoint"],
            },
            "xero_calls_per_record": {
                "new_client": round(calls["clients"] / len(DEMO_CLIENTS), 2),
                "client_update": calls["client_update"],
                "invoice": round(calls["invoices"] / len(DEMO_INVOICES), 2),
                "payment": round(calls["payments"] / len(DEMO_PAYMENTS), 2),
            },
            "seconds": round(seconds, 2),
        }


def _xero_money(invoice: dict[str, Any] | None, field: str, ignition_currency: str) -> str | None:
    if invoice is None or invoice.get(field) is None:
        return None
    return format_money(invoice[field], invoice.get("CurrencyCode") or ignition_currency)


def print_summary(summary: dict[str, Any], out: TextIO) -> None:
    out.write("\nIgnition -> Xero, in the local sandbox\n\n")
    out.write(f"{'Ignition client':<14} {'Xero ContactID':<38} {'Xero name':<30} email\n")
    for row in summary["clients"]:
        out.write(
            f"{row['ignition']:<14} {row['xero_contact'] or 'MISSING':<38} {row['xero_name'] or '':<30} "
            f"{row['email'] or ''}\n"
        )
    out.write(
        f"\n{'Ignition invoice':<16} {'Xero number':<12} {'status':<11} {'Ignition':>12} {'Xero':>12} "
        f"{'paid':>12}\n"
    )
    for row in summary["invoices"]:
        out.write(
            f"{row['ignition']:<16} {row['xero_number'] or 'MISSING':<12} {row['xero_status'] or '':<11} "
            f"{row['ignition_total']:>12} {row['xero_total'] or '':>12} {row['xero_paid'] or '':>12}\n"
        )
    hooks, per = summary["webhooks"], summary["xero_calls_per_record"]
    polled = summary["polled"]
    landed = any(row["ignition"] == polled["client"] and row["xero_contact"] for row in summary["clients"])
    out.write(
        f"\nWebhooks: {hooks['delivered']} delivered ({hooks['duplicates']} duplicates), "
        f"{hooks['accepted']} accepted; a forged one was refused with {hooks['forged_rejected_with']} "
        "(--verbose shows the functions' warnings, this refusal's among them).\n"
        f"Polling: {polled['client']} was added in Ignition with no webhook. One poll run "
        f"({polled['ignition_requests']} Ignition requests) queued {polled['queued']} changes "
        f"(those webhooks had brought are skipped): {polled['client']} "
        f"{'reached Xero by polling' if landed else 'DID NOT reach Xero'}, "
        f"{polled['xero_calls']} Xero calls.\n"
        f"Xero: {summary['xero_contacts_total']} active contacts (one already existed: linked by email), "
        f"{len(summary['invoices'])} invoices, {summary['xero_payments']} payments.\n"
        f"Xero calls: {summary['xero_calls']['total']} in all; per new client {per['new_client']}, "
        f"per client update {per['client_update']}, per invoice {per['invoice']}, "
        f"per payment {per['payment']} (history notes included).\n"
        f"Sync: {summary['sync']['records']} queue messages in {summary['sync']['invocations']} invocations, "
        f"{summary['sync']['failed_records']} retried; {summary['dead_letters']} in the DLQ.\n"
        f"AWS: each function under its own role from the CDK template; "
        f"{len(summary['aws_calls_refused'])} calls refused by IAM.\n"
        f"Flow time: {summary['seconds']} s.\n"
    )
    print_xero_to_ignition(summary.get("xero_to_ignition") or {}, out)


def print_xero_to_ignition(story: dict[str, Any], out: TextIO) -> None:
    if not story:
        return
    out.write(
        f"\nXero -> Ignition: Xero draft {story['xero_draft']} (Reference {story['reference']!r}, "
        f"{story['xero_total']}) "
    )
    if story["ignition_drafts"] != 1:
        out.write(f"gave {story['ignition_drafts']} Ignition drafts, not one.\n")
        return
    out.write(
        f"became Ignition draft {story['draft']} ({story['lines']} lines, {story['draft_total']}).\n"
        f"Finished in Ignition with one click as {story.get('ignition_invoice')}, it came back onto the "
        f"same Xero invoice: {story.get('xero_number')} {story.get('xero_status')} "
        f"{story.get('xero_total_after')}; {story.get('xero_invoices_for_the_work')} Xero invoice "
        "for that work.\n"
    )


def demo(args: argparse.Namespace, out: TextIO) -> int:
    started = time.monotonic()
    with Sandbox(SandboxOptions(log_level=args.log_level, xero_to_ignition=True)) as sandbox:
        setup = time.monotonic() - started
        summary = Demo(sandbox).run()
        summary["setup_seconds"] = round(setup, 2)
    if args.json:
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        print_summary(summary, out)
        out.write(f"Sandbox start-up: {summary['setup_seconds']} s.\n")
    missing = [row["ignition"] for row in summary["clients"] if not row["xero_contact"]]
    missing += [row["ignition"] for row in summary["invoices"] if not row["xero_number"]]
    drafted = summary.get("xero_to_ignition") or {}
    round_trip = drafted.get("xero_invoices_for_the_work") == 1 and drafted.get("xero_status") == "AUTHORISED"
    return 1 if missing or summary["dead_letters"] or not round_trip else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument(
        "--log-level",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="the functions' and emulators' logs on stderr (default WARNING; the demo: ERROR, so "
        "its story is not interrupted, or WARNING with --verbose)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser(
        "serve", help="run the sandbox until SIGINT/SIGTERM; prints one JSON line when ready"
    )
    serve_parser.add_argument(
        "--ignition-sources",
        default="webhook,poll",
        choices=["webhook", "poll", "webhook,poll", "poll,webhook"],
        help="where Ignition changes come from (runtime.ignition.sources); without webhook the "
        "emulator delivers none (default webhook,poll)",
    )
    serve_parser.add_argument(
        "--poll-every",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="run the Reporting API poller at this interval, as its EventBridge rule does "
        "(default 120; 0 turns it off)",
    )
    serve_parser.add_argument(
        "--reconcile-every",
        type=float,
        default=DEFAULT_RECONCILE_EVERY_SECONDS,
        metavar="SECONDS",
        help="run the scheduled reconciliation at this interval, as EventBridge does in AWS "
        f"(default {DEFAULT_RECONCILE_EVERY_SECONDS:.0f}; 0 turns it off)",
    )
    serve_parser.add_argument(
        "--xero-country",
        default="AU",
        choices=["AU", "NZ", "UK"],
        help="the emulated Xero organisation's country: its tax rates, accounts and base currency",
    )
    serve_parser.add_argument(
        "--xero-to-ignition",
        action="store_true",
        help="turn on Xero -> Ignition drafts (runtime.xero_to_ignition, docs/xero-to-ignition.md): a Xero "
        "DRAFT whose Reference starts with IGN: becomes an Ignition draft through the MCP emulator",
    )
    demo_parser = commands.add_parser("demo", help="run the whole flow once and print a summary")
    demo_parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    demo_parser.add_argument(
        "--verbose", action="store_true", help="also print the functions' warnings (JSON lines on stderr)"
    )
    args = parser.parse_args(argv)
    if args.log_level is None:
        # The demo's forged webhook is refused with a warning by design: a JSON log line in the
        # middle of the story reads as a fault, so the demo shows only errors unless asked.
        quiet = args.command == "demo" and not args.verbose
        args.log_level = "ERROR" if quiet else "WARNING"
    _quiet_logs(args.log_level)
    # Logs and EMF output go to stderr; stdout carries only what the command promises.
    out, sys.stdout = sys.stdout, sys.stderr
    try:
        return serve(args, out) if args.command == "serve" else demo(args, out)
    finally:
        sys.stdout = out


if __name__ == "__main__":
    raise SystemExit(main())
