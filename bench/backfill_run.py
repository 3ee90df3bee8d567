"""Backfill: Xero calls per record of the operator's ``python -m cli backfill``.

The bench seeds the Ignition emulator with clients, invoices and payments (no webhooks), puts a
tenth of the clients into Xero by hand (same e-mail, so the backfill links them), then runs the CLI
as an operator would, in its own process, against this sandbox (``--sandbox-file``). Xero calls are
counted by the emulator (Accounting API only; token calls excluded), records by the CLI's report.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import payloads
from bench.core import REPO_ROOT
from bench.flow import Harness, api_calls, sandbox_file

NOT_BUILT = "not measured: backfill not built yet"


def available() -> str | None:
    """None when the backfill can be measured, else why not."""
    if (
        not (REPO_ROOT / "shared" / "backfill").is_dir()
        or not (REPO_ROOT / "cli" / "backfill_cmd.py").exists()
    ):
        return NOT_BUILT
    return None


def seed(h: Harness, clients: int, invoices: int, payments: int, first_index: int) -> dict[str, int]:
    created = "2026-10-01T09:00:00Z"

    def client_of(index: int) -> str:
        return f"cli_fill_{first_index + (index - first_index) % clients:06d}"

    client_records = [
        {
            "slug": f"cli_fill_{index:06d}",
            "name": f"Backfill Client {index:06d}",
            "email": f"fill{index}@bench-client.test",
            "created_at": created,
            "updated_at": created,
        }
        for index in range(first_index, first_index + clients)
    ]
    # A tenth typed into Xero by hand before the integration existed (same e-mail: linked).
    existing = [
        {"Name": f"{record['name']} (Xero)", "EmailAddress": record["email"]}
        for record in client_records[::10]
    ]
    invoice_records = [
        payloads.invoice_record(
            f"inv_fill_{index:06d}",
            f"FILL-{index:06d}",
            client_of(index),
            net="100.00",
            total="110.00",
            description="Fees",
            date="2026-10-02",
            due_date="2026-10-30",
            created_at=created,
        )
        for index in range(first_index, first_index + invoices)
    ]
    payment_records = [
        payloads.payment_record(
            f"pypay_fill_{index:06d}", client_of(index), f"inv_fill_{index:06d}", "110.00", created_at=created
        )
        for index in range(first_index, first_index + payments)
    ]
    for resource, records in (
        ("clients", client_records),
        ("invoices", invoice_records),
        ("payments", payment_records),
    ):
        for record in records:
            h.http.put(
                f"{h.sandbox.ignition_url}/_emulator/{resource}/{record['slug']}",
                params={"deliver": "false"},
                json=record,
            ).raise_for_status()
    if existing:
        h.http.post(
            f"{h.sandbox.xero_url}/_emulator/contacts", json={"Contacts": existing}
        ).raise_for_status()
    return {"clients": clients, "invoices": invoices, "payments": payments, "already_in_xero": len(existing)}


def run(h: Harness, clients: int, invoices: int, payments: int, first_index: int) -> dict[str, Any]:
    seeded = seed(h, clients, invoices, payments, first_index)
    before = h.xero_state()
    with tempfile.TemporaryDirectory(prefix="bench-backfill-") as tmp:
        info = Path(tmp) / "sandbox.json"
        sandbox_file(h, info)
        started = time.monotonic()
        out = subprocess.run(  # noqa: S603 - our own interpreter and CLI
            [sys.executable, "-m", "cli", "backfill", "--sandbox", "--sandbox-file", str(info), "--json"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
        seconds = time.monotonic() - started
    after = h.xero_state()
    if out.returncode not in (0,):
        raise RuntimeError(f"backfill exited {out.returncode}: {(out.stderr or out.stdout)[-1500:]}")
    report: dict[str, Any] = json.loads(out.stdout)
    calls = api_calls(after) - api_calls(before)
    records = int(report.get("records") or 0)
    by_endpoint = {
        label: n - before["requests"]["by_endpoint"].get(label, 0)
        for label, n in after["requests"]["by_endpoint"].items()
        if n - before["requests"]["by_endpoint"].get(label, 0)
    }
    return {
        "seeded": seeded,
        "status": report.get("status"),
        "records": records,
        "xero_calls": calls,
        "calls_per_record": round(calls / records, 4) if records else None,
        "cli_reported_calls": report.get("xero_calls"),
        "by_endpoint": by_endpoint,
        "counts": report.get("counts"),
        "failures": len(report.get("failures") or []),
        "seconds_including_cli_start": round(seconds, 1),
    }
