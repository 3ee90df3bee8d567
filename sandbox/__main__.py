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
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx

from sandbox.environment import Sandbox, SandboxOptions
from shared.ignition.webhook import sign_webhook

STATE_FILE = Path(__file__).resolve().parent.parent / ".sandbox.json"


def _quiet_logs(level: str) -> None:
    logging.basicConfig(stream=sys.stderr, level=getattr(logging, level))
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


def serve(args: argparse.Namespace, out: TextIO) -> int:
    sandbox = Sandbox(SandboxOptions(log_level=args.log_level)).start()
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


class Demo:
    """The story a newcomer should see: new clients, a client already in Xero, an update, a
    duplicate delivery, two clients with one name, and a forged webhook that is refused."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(timeout=30)
        self.deliveries: list[dict[str, Any]] = []

    def put_client(self, record: dict[str, Any]) -> dict[str, Any]:
        response = self.http.put(
            f"{self.sandbox.ignition_url}/_emulator/clients/{record['slug']}", json=record
        )
        response.raise_for_status()
        delivery: dict[str, Any] = response.json()["delivery"]
        self.deliveries.append(delivery)
        return delivery

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
        clients: list[dict[str, Any]] = [
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
        for record in clients:
            self.put_client({**record, "created_at": "2026-11-01T09:00:00Z"})
        self.sandbox.wait_until_idle(timeout=120)
        self.put_client({**clients[2], "email": "billing@acme.test", "created_at": "2026-11-01T09:00:00Z"})
        duplicate = self.deliveries[0]["event_id"]
        for _ in range(2):
            self.http.post(
                f"{self.sandbox.ignition_url}/_emulator/webhooks/redeliver", json={"event_id": duplicate}
            ).raise_for_status()
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
        return self.summary(clients, forged.status_code, time.monotonic() - started)

    def summary(self, clients: list[dict[str, Any]], forged_status: int, seconds: float) -> dict[str, Any]:
        xero = self.http.get(f"{self.sandbox.xero_url}/_emulator/state").json()
        contacts = [c for c in xero["Contacts"] if c.get("ContactStatus") == "ACTIVE"]
        by_number = {c.get("ContactNumber"): c for c in contacts}
        poller = self.sandbox.poller
        assert poller is not None
        synced = len(clients)
        return {
            "clients": [
                {
                    "ignition": c["slug"],
                    "xero_contact": by_number.get(c["slug"], {}).get("ContactID"),
                    "xero_name": by_number.get(c["slug"], {}).get("Name"),
                    "email": by_number.get(c["slug"], {}).get("EmailAddress"),
                }
                for c in clients
            ],
            "xero_contacts_total": len(contacts),
            "webhooks": {
                "delivered": len(self.deliveries) + 2,
                "accepted": sum(d["status"] == 202 for d in self.deliveries) + 2,
                "forged_rejected_with": forged_status,
            },
            "sync": {
                "invocations": poller.stats.invocations,
                "records": poller.stats.records,
                "failed_records": poller.stats.failed_records,
            },
            "dead_letters": len(self.sandbox.dead_letters()),
            "xero_calls": xero["requests"],
            "xero_calls_per_synced_client": round(xero["requests"]["total"] / synced, 2),
            "seconds": round(seconds, 2),
        }


def print_summary(summary: dict[str, Any], out: TextIO) -> None:
    out.write("\nIgnition -> Xero, in the local sandbox\n\n")
    out.write(f"{'Ignition client':<14} {'Xero ContactID':<38} {'Xero name':<34} email\n")
    for row in summary["clients"]:
        out.write(
            f"{row['ignition']:<14} {row['xero_contact'] or 'MISSING':<38} {row['xero_name'] or '':<34} "
            f"{row['email'] or ''}\n"
        )
    hooks = summary["webhooks"]
    out.write(
        f"\nWebhooks: {hooks['delivered']} delivered (2 of them duplicates), {hooks['accepted']} accepted; "
        f"a forged one was refused with {hooks['forged_rejected_with']}.\n"
        f"Xero: {summary['xero_contacts_total']} active contacts (one already existed: linked by email); "
        f"{summary['xero_calls']['total']} API calls {summary['xero_calls']['by_endpoint']}, "
        f"{summary['xero_calls_per_synced_client']} per client.\n"
        f"Sync: {summary['sync']['records']} queue messages in {summary['sync']['invocations']} invocations, "
        f"{summary['sync']['failed_records']} retried; {summary['dead_letters']} in the DLQ.\n"
        f"Flow time: {summary['seconds']} s.\n"
    )


def demo(args: argparse.Namespace, out: TextIO) -> int:
    started = time.monotonic()
    with Sandbox(SandboxOptions(log_level=args.log_level)) as sandbox:
        setup = time.monotonic() - started
        summary = Demo(sandbox).run()
        summary["setup_seconds"] = round(setup, 2)
    if args.json:
        out.write(json.dumps(summary, indent=2) + "\n")
    else:
        print_summary(summary, out)
        out.write(f"Sandbox start-up: {summary['setup_seconds']} s.\n")
    missing = [row["ignition"] for row in summary["clients"] if not row["xero_contact"]]
    return 1 if missing or summary["dead_letters"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--log-level", default="WARNING", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the sandbox until SIGINT/SIGTERM; prints one JSON line when ready")
    demo_parser = commands.add_parser("demo", help="run the whole flow once and print a summary")
    demo_parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    args = parser.parse_args(argv)
    _quiet_logs(args.log_level)
    # Logs and EMF output go to stderr; stdout carries only what the command promises.
    out, sys.stdout = sys.stdout, sys.stderr
    try:
        return serve(args, out) if args.command == "serve" else demo(args, out)
    finally:
        sys.stdout = out


if __name__ == "__main__":
    raise SystemExit(main())
