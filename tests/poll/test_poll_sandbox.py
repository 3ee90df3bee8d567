"""The poller in a sandbox of its own (its cursor sees every record of the sandbox, so it cannot
share the integration tests' one): poll-only with no webhook at all, and both sources at once."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from sandbox.environment import PeriodicRunner, Sandbox
from tests import ignition_records
from tests.sandbox_options import sandbox_options

pytestmark = pytest.mark.integration

POLL_EVERY = 10.0


class Ignition:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(timeout=30)
        self.tag = uuid.uuid4().hex[:6]

    def put(self, resource: str, record: dict[str, Any], *, deliver: bool) -> dict[str, Any]:
        response = self.http.put(
            f"{self.sandbox.ignition_url}/_emulator/{resource}/{record['slug']}",
            json=record,
            params={} if deliver else {"deliver": "false"},
        )
        response.raise_for_status()
        body: dict[str, Any] = response.json()
        return body

    def workload(self, *, deliver: bool) -> list[dict[str, Any]]:
        """40 clients, 20 invoices (one each for the first 20), 10 payments (the first 10 in full)."""
        today = datetime.now(UTC).date().isoformat()
        deliveries = []
        for n in range(40):
            deliveries.append(
                self.put(
                    "clients",
                    {
                        "slug": f"cli_p{n}_{self.tag}",
                        "name": f"Polled {n} {self.tag}",
                        "email": f"p{n}.{self.tag}@example.test",
                        "created_at": datetime.now(UTC).isoformat(),
                    },
                    deliver=deliver,
                )
            )
        for n in range(20):
            deliveries.append(
                self.put(
                    "invoices",
                    {
                        "slug": f"inv_p{n}_{self.tag}",
                        "reference_number": f"P{self.tag}-{n}",
                        "state": "awaiting_payment",
                        "client": {"slug": f"cli_p{n}_{self.tag}"},
                        "amount": {"total": "110.00", "currency": "AUD"},
                        "date": today,
                        "items": [
                            {
                                "description": "Advice",
                                "quantity": "1",
                                "unit_price": {"amount": "100.00", "currency": "AUD"},
                                "tax_rate": "10",
                            }
                        ],
                    },
                    deliver=deliver,
                )
            )
        for n in range(10):
            deliveries.append(
                self.put(
                    "payments",
                    ignition_records.payment(
                        f"pypay_p{n}_{self.tag}",
                        f"cli_p{n}_{self.tag}",
                        "110.00",
                        f"inv_p{n}_{self.tag}",
                        created_at=datetime.now(UTC).isoformat(),
                    ),
                    deliver=deliver,
                )
            )
        return deliveries

    def in_xero(self) -> tuple[int, int, int]:
        """(contacts, invoices, payments) of this test in Xero."""
        state = self.http.get(f"{self.sandbox.xero_url}/_emulator/state").json()
        contacts = [
            c for c in state["Contacts"] if str(c.get("ContactNumber") or "").endswith(f"_{self.tag}")
        ]
        invoices = [
            i for i in state["Invoices"] if str(i.get("InvoiceNumber") or "").startswith(f"P{self.tag}-")
        ]
        payments = [
            p
            for p in state["Payments"]
            if str(p.get("Reference") or "").endswith(f"_{self.tag}") and p.get("Status") != "DELETED"
        ]
        return len(contacts), len(invoices), len(payments)

    def xero_calls(self) -> int:
        return int(self.http.get(f"{self.sandbox.xero_url}/_emulator/state").json()["requests"]["total"])


@pytest.fixture
def poll_only() -> Iterator[Sandbox]:
    with Sandbox(sandbox_options(ignition_sources=("poll",))) as running:
        yield running


@pytest.fixture
def both_sources() -> Iterator[Sandbox]:
    with Sandbox(sandbox_options(ignition_sources=("webhook", "poll"))) as running:
        yield running


def test_given_poll_only_when_70_records_change_with_no_webhook_then_each_is_in_xero_once_within_two_polls(
    poll_only: Sandbox,
) -> None:
    ignition = Ignition(poll_only)
    schedule = PeriodicRunner(poll_only.run_poll, POLL_EVERY, name="poll")
    schedule.start()
    try:
        deliveries = ignition.workload(deliver=True)  # asked to deliver: there is nowhere to deliver to
        last_change = time.monotonic()
        while ignition.in_xero() != (40, 20, 10) and time.monotonic() - last_change < 6 * POLL_EVERY:
            time.sleep(0.25)
        landed_after = time.monotonic() - last_change
    finally:
        schedule.stop()

    assert all(d["delivery"] is None or d["delivery"].get("error") for d in deliveries), "no webhook went out"
    assert ignition.in_xero() == (40, 20, 10)
    assert landed_after <= 2 * POLL_EVERY, f"last record in Xero {landed_after:.1f} s after the last change"
    assert schedule.failures == 0
    poll_only.wait_until_idle()
    assert poll_only.dead_letters() == []
    # Later runs find nothing new: nothing queued, and Xero untouched.
    calls = ignition.xero_calls()
    assert poll_only.run_poll()["queued"] == 0
    poll_only.wait_until_idle()
    assert ignition.xero_calls() == calls


def test_given_both_sources_when_every_change_came_twice_by_webhook_then_polling_it_costs_no_xero_call(
    both_sources: Sandbox,
) -> None:
    ignition = Ignition(both_sources)
    deliveries = ignition.workload(deliver=True)
    for delivery in deliveries:  # every change delivered a second time
        ignition.http.post(
            f"{both_sources.ignition_url}/_emulator/webhooks/redeliver",
            json={"event_id": delivery["delivery"]["event_id"]},
        ).raise_for_status()
    both_sources.wait_until_idle(timeout=180)
    assert ignition.in_xero() == (40, 20, 10)
    calls_by_webhook = ignition.xero_calls()

    first = both_sources.run_poll()
    both_sources.wait_until_idle(timeout=120)

    assert first["queued"] >= 70  # the poller saw every change (and maybe earlier records)
    assert ignition.in_xero() == (40, 20, 10)
    assert ignition.xero_calls() == calls_by_webhook, "the polled copy of a change must not reach Xero"
    assert both_sources.dead_letters() == []
