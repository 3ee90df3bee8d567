"""The chaos suite's own sandbox and workload.

One sandbox per test process, configured like production where it matters to faults: four
concurrent sync workers, each its own execution environment (own token cache, own batch processor),
a short Xero client timeout so injected timeouts cost little, visibility timeout above the
function timeout (as AWS requires), and the product's own retry policy unchanged.
"""

from __future__ import annotations

import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.environment import Sandbox
from tests import ignition_records
from tests.chaos.report import FIGURES_KEY
from tests.sandbox_options import sandbox_options

CLIENT_TIMEOUT_SECONDS = 0.5
INJECTED_TIMEOUT_MS = 1_200  # past the client's timeout


@pytest.fixture(scope="session")
def chaos_sandbox() -> Iterator[Sandbox]:
    options = sandbox_options(
        max_inline_wait_seconds=3,
        sync_timeout_seconds=10,
        visibility_timeout=12,
        sync_batch_size=4,
        sync_concurrency=4,
        isolated_sync_workers=True,
        prefix="chaos",
        log_level="CRITICAL",
        extra_config={"xero": {"timeout_seconds": CLIENT_TIMEOUT_SECONDS}},
    )
    with Sandbox(options) as running:
        yield running


@pytest.fixture(params=[False, True], ids=["batching_off", "batching_on"])
def batching(chaos_sandbox: Sandbox, request: pytest.FixtureRequest) -> Iterator[bool]:
    """Each delivery path under the fault (one record per call, or gathered batches): they make
    different numbers of Xero calls and invocations, so a profile must bite on both. The deployed
    setting is restored after the test."""
    deployed = chaos_sandbox.config.batching.enabled
    chaos_sandbox.wait_until_idle(timeout=120)
    chaos_sandbox.reconfigure(batching={"enabled": request.param})
    yield bool(request.param)
    chaos_sandbox.wait_until_idle(timeout=120)
    chaos_sandbox.reconfigure(batching={"enabled": deployed})


def money(value: Any) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.01"))


@dataclass
class Workload:
    """Ignition clients (some updated later), one invoice each, payments on half of them, and
    ``poison`` payments the sync must refuse and dead-letter (in USD for an AUD invoice)."""

    tag: str
    clients: dict[str, dict[str, Any]] = field(default_factory=dict)
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, dict[str, Any]] = field(default_factory=dict)
    payments: dict[str, dict[str, Any]] = field(default_factory=dict)
    poison: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def build(cls, tag: str, size: int, seed: int) -> Workload:
        draw = random.Random(seed)
        work = cls(tag)
        for n in range(size):
            slug = f"cli_{tag}_{n}"
            work.clients[slug] = {
                "slug": slug,
                "name": f"Chaos Holdings {tag} {n}",
                "email": f"c{n}@{tag}.test",
                "state": "active",
                "created_at": "2026-11-01T09:00:00Z",
                "updated_at": "2026-11-01T09:00:00Z",
            }
            if draw.random() < 0.3:
                work.updates[slug] = {
                    **work.clients[slug],
                    "email": f"c{n}.new@{tag}.test",
                    "updated_at": "2026-11-01T10:00:00Z",
                }
            lines = [
                {
                    "description": f"Service {k}",
                    "quantity": str(draw.randint(1, 3)),
                    # A whole number of dimes: GST at 10 % is exact, so Ignition's total is Xero's.
                    "unit_price": {"amount": f"{draw.randint(10, 400)}.{draw.choice(['00', '50', '90'])}"},
                    "tax_rate": "10",
                }
                for k in range(draw.randint(1, 2))
            ]
            for line in lines:
                line["unit_price"]["currency"] = "AUD"
            total = sum(
                (Decimal(i["quantity"]) * Decimal(i["unit_price"]["amount"]) * Decimal("1.1") for i in lines),
                Decimal(0),
            )
            invoice = f"inv_{tag}_{n}"
            work.invoices[invoice] = ignition_records.invoice(
                invoice,
                slug,
                lines,
                str(money(total)),
                reference_number=f"IGN-{tag}-{n}",
                updated_at=ignition_records.INVOICED_AT,
            )
            if n % 2 == 0:
                payment = f"pypay_{tag}_{n}"
                half = str(money(total / 2))
                work.payments[payment] = ignition_records.payment(payment, slug, half, invoice)
            elif n % 17 == 1:
                # Paid in another currency than the invoice's: the sync must refuse it (permanent).
                payment = f"pypay_{tag}_{n}_usd"
                work.poison[payment] = ignition_records.payment(
                    payment, slug, str(money(total)), invoice, currency="USD"
                )
        return work

    @property
    def records(self) -> int:
        return len(self.clients) + len(self.invoices) + len(self.payments) + len(self.poison)

    def latest_client(self, slug: str) -> dict[str, Any]:
        return self.updates.get(slug, self.clients[slug])

    def puts_for(self, slug: str) -> list[tuple[str, dict[str, Any]]]:
        """One client's records in the order Ignition produces them."""
        n = slug.rsplit("_", 1)[1]
        puts: list[tuple[str, dict[str, Any]]] = [("clients", self.clients[slug])]
        puts.append(("invoices", self.invoices[f"inv_{self.tag}_{n}"]))
        if slug in self.updates:
            puts.append(("clients", self.updates[slug]))
        for payments in (self.payments, self.poison):
            puts += [("payments", p) for p in payments.values() if p["client"]["slug"] == slug]
        return puts


class Chaos:
    """Drives one profile through the sandbox and checks the promise."""

    def __init__(self, sandbox: Sandbox, request: pytest.FixtureRequest) -> None:
        self.sandbox = sandbox
        self.request = request
        self.http = httpx.Client(timeout=60)

    # -- faults -------------------------------------------------------------------------------
    def set_faults(
        self, *, xero: dict[str, Any] | None = None, ignition: dict[str, Any] | None = None, **aws: Any
    ) -> None:
        for url, profile in ((self.sandbox.xero_url, xero), (self.sandbox.ignition_url, ignition)):
            response = self.http.post(f"{url}/_emulator/faults", json=profile or {})
            assert response.status_code == 200, response.text
        self.sandbox.set_aws_faults(**aws)

    def clear_faults(self) -> None:
        self.set_faults()

    def injected(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for url in (self.sandbox.xero_url, self.sandbox.ignition_url):
            total.update(self.http.get(f"{url}/_emulator/faults").json()["injected"])
        total.update(self.sandbox.aws_faults.snapshot()["injected"])
        return total

    # -- state --------------------------------------------------------------------------------
    def xero(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get(f"{self.sandbox.xero_url}/_emulator/state").json()
        return state

    def ignition(self) -> dict[str, Any]:
        state: dict[str, Any] = self.http.get(f"{self.sandbox.ignition_url}/_emulator/state").json()
        return state

    def put(self, resource: str, record: dict[str, Any]) -> None:
        response = self.http.put(
            f"{self.sandbox.ignition_url}/_emulator/{resource}/{record['slug']}", json=record
        )
        assert response.status_code in (200, 201), response.text

    # Long enough for the CI workload at raised limits; a run at Xero's real limits sets more.
    settle_timeout: float = 240

    def settle(self, timeout: float | None = None) -> None:
        self.sandbox.wait_until_idle(timeout=timeout or self.settle_timeout, settle=1.0)

    # -- one run --------------------------------------------------------------------------------
    def run(
        self,
        name: str,
        work: Workload,
        *,
        xero: dict[str, Any] | None = None,
        ignition: dict[str, Any] | None = None,
        **aws: Any,
    ) -> dict[str, Any]:
        started = time.monotonic()
        assert self.sandbox.poller is not None
        stats = self.sandbox.poller.stats
        before_stats = (stats.failed_records, stats.crashed_records, stats.crashed_invocations)
        before = self.xero()
        injected_before = self.injected()
        self.set_faults(xero=xero, ignition=ignition, **aws)
        try:
            with ThreadPoolExecutor(max_workers=4) as pool:
                for _ in pool.map(lambda slug: [self.put(*p) for p in work.puts_for(slug)], work.clients):
                    pass
            self.http.post(f"{self.sandbox.ignition_url}/_emulator/faults", json={})  # flush held-back
            self.settle()
        finally:
            injected = self.injected() - injected_before
            self.clear_faults()
        healed = self.heal_drops(work)
        after = self.xero()
        figures = self.check(work, before, after)
        figures.update(
            profile=name,
            records=work.records,
            webhooks=sum(1 for d in self.ignition()["deliveries"] if work.tag in str(d.get("slug"))),
            faults=sum(injected.values()),
            injected=dict(injected),
            retries=stats.failed_records - before_stats[0] + stats.crashed_records - before_stats[1],
            crashes=stats.crashed_invocations - before_stats[2],
            refreshes=after["token_refreshes"] - before["token_refreshes"],
            refreshes_needed=injected["tokens_expired"] + injected["token_responses_dropped"],
            inv_grant=after["invalid_grants"] - before["invalid_grants"],
            healed=healed,
            xero_calls=_api_calls(after) - _api_calls(before),
            secs=round(time.monotonic() - started),
        )
        self.request.node.user_properties.append((FIGURES_KEY, json.dumps(figures)))
        return figures

    def heal_drops(self, work: Workload) -> int:
        """A lost webhook reaches Xero only through reconciliation or a replay. The records whose
        deliveries were dropped are put again (a new webhook, faults cleared), as an operator's
        replay or the reconciliation's re-queue would bring them."""
        dropped = {
            d["slug"]
            for d in self.ignition()["deliveries"]
            if d.get("error") == "dropped" and work.tag in str(d.get("slug"))
        }
        for slug in sorted(dropped):
            if slug in work.clients:
                self.put("clients", work.latest_client(slug))
            elif slug in work.invoices:
                self.put("invoices", work.invoices[slug])
            else:
                self.put("payments", {**work.payments, **work.poison}[slug])
        if dropped:
            self.settle()
        return len(dropped)

    # -- the promise ----------------------------------------------------------------------------
    def check(self, work: Workload, before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
        tally = _Tally()
        contact_ids = _check_contacts(work, after, tally)
        _check_invoices(work, after, contact_ids, tally)
        dead = self._check_dead_letters(work, tally)
        visible, in_flight = self.sandbox.queue_depth()
        if visible or in_flight:
            tally.problems.append(f"sync queue not empty: {visible} visible, {in_flight} in flight")
        assert not tally.problems, "\n".join(tally.problems[:40])
        return {"dlq": dead, "dup": tally.duplicates, "lost": tally.lost}

    def _check_dead_letters(self, work: Workload, tally: _Tally) -> int:
        """Only the poison records reach the DLQ, each with a reason; the number there."""
        dead = [m for m in self.sandbox.dead_letters() if work.tag in str(m["body"].get("record_id"))]
        dead_ids = Counter(str(m["body"].get("record_id")) for m in dead)
        for message in dead:
            if not message["category"] or not message["reason"]:
                tally.problems.append(f"DLQ message without a reason: {message['body'].get('record_id')}")
        if set(dead_ids) != set(work.poison):
            tally.problems.append(f"DLQ holds {sorted(dead_ids)}, expected the poison {sorted(work.poison)}")
            tally.problems += [
                f"  {m['body'].get('record_id')}: {m['category']}: {(m['reason'] or '')[:300]}"
                for m in dead
                if m["body"].get("record_id") not in work.poison
            ]
        return len(dead)


def _api_calls(state: dict[str, Any]) -> int:
    """Accounting API calls the Xero emulator answered (the faults' draws are per such call), not
    the identity endpoints (token, connections), which the profiles' call faults never touch."""
    by_endpoint: dict[str, int] = state["requests"]["by_endpoint"]
    return sum(n for label, n in by_endpoint.items() if not any(i in label for i in _IDENTITY_LABELS))


_IDENTITY_LABELS = ("/connect/", "/connections", "/identity/")


@dataclass
class _Tally:
    """What :meth:`Chaos.check` found wrong: every problem, and the duplicates and losses among them."""

    problems: list[str] = field(default_factory=list)
    duplicates: int = 0
    lost: int = 0

    def exactly_one(self, slug: str, found: list[dict[str, Any]], noun: str) -> dict[str, Any] | None:
        """The one Xero record of ``slug``: none is lost, more are duplicates."""
        if not found:
            self.lost += 1
            self.problems.append(f"{slug}: no Xero {noun}")
            return None
        if len(found) > 1:
            self.duplicates += len(found) - 1
            self.problems.append(f"{slug}: {len(found)} Xero {noun}s")
        return found[0]


def _check_contacts(work: Workload, after: dict[str, Any], tally: _Tally) -> dict[str, str]:
    """Each client is one Xero contact with its latest name and email; client slug -> ContactID."""
    contacts: dict[str, list[dict[str, Any]]] = {}
    for contact in after["Contacts"]:
        contacts.setdefault(str(contact.get("ContactNumber")), []).append(contact)
    contact_ids: dict[str, str] = {}
    for slug in work.clients:
        if (got := tally.exactly_one(slug, contacts.get(slug, []), "contact")) is None:
            continue
        want = work.latest_client(slug)
        contact_ids[slug] = got["ContactID"]
        if got.get("Name") != want["name"] or str(got.get("EmailAddress", "")).lower() != want["email"]:
            tally.problems.append(f"{slug}: Xero has {got.get('Name')!r} {got.get('EmailAddress')!r}")
    return contact_ids


def _check_invoices(
    work: Workload, after: dict[str, Any], contact_ids: dict[str, str], tally: _Tally
) -> None:
    """Each invoice is one authorised Xero invoice on its client's contact, with its total and
    exactly its payment."""
    invoices: dict[str, list[dict[str, Any]]] = {}
    for invoice in after["Invoices"]:
        if invoice.get("Status") not in ("DELETED", "VOIDED"):
            invoices.setdefault(str(invoice.get("Reference")), []).append(invoice)
    payments: dict[str, list[dict[str, Any]]] = {}
    for payment in after["Payments"]:
        if payment.get("Status") != "DELETED":
            payments.setdefault(str((payment.get("Invoice") or {}).get("InvoiceID")), []).append(payment)
    paid = {p["invoices"][0]["slug"]: p for p in work.payments.values()}
    for slug, record in work.invoices.items():
        if (got := tally.exactly_one(slug, invoices.get(slug, []), "invoice")) is None:
            continue
        client = record["client"]["slug"]
        if (got.get("Contact") or {}).get("ContactID") != contact_ids.get(client):
            tally.problems.append(f"{slug}: on contact {got.get('Contact')}, not {contact_ids.get(client)}")
        if money(got["Total"]) != money(record["amount"]["total"]) or got.get("CurrencyCode") != "AUD":
            tally.problems.append(f"{slug}: Xero total {got['Total']} {got.get('CurrencyCode')}")
        if got.get("Status") != "AUTHORISED":
            tally.problems.append(f"{slug}: Xero status {got.get('Status')}")
        _check_payment(slug, payments.get(got["InvoiceID"], []), [paid[slug]] if slug in paid else [], tally)


def _check_payment(
    slug: str, applied: list[dict[str, Any]], expected: list[dict[str, Any]], tally: _Tally
) -> None:
    if len(applied) > len(expected):
        tally.duplicates += len(applied) - len(expected)
        tally.problems.append(f"{slug}: {len(applied)} Xero payments, expected {len(expected)}")
    elif len(applied) < len(expected):
        tally.lost += len(expected) - len(applied)
        tally.problems.append(f"{slug}: payment {expected[0]['slug']} missing in Xero")
    elif expected and money(applied[0]["Amount"]) != money(expected[0]["amount"]["amount"]):
        tally.problems.append(f"{slug}: payment of {applied[0]['Amount']}")


@pytest.fixture
def chaos(chaos_sandbox: Sandbox, request: pytest.FixtureRequest) -> Iterator[Chaos]:
    chaos_sandbox.wait_until_idle(timeout=120)
    driver = Chaos(chaos_sandbox, request)
    yield driver
    driver.clear_faults()
    driver.http.close()


def new_tag() -> str:
    return uuid.uuid4().hex[:6]
