"""Bursts in gathered batches (``batching.enabled``: ``shared/collector.py``, ``shared/gather.py``):
new clients, invoices and payments posted as fast as Ignition sends them, with Xero answering 5xx
and 429 and Ignition's webhooks duplicated and reordered, end with every record in Xero exactly
once, to the cent, the newest client values, each invoice on its client's contact and each payment
on its invoice (the promise ``tests/chaos/conftest.py`` checks), in far fewer Xero calls than one
record at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.environment import Sandbox
from tests.chaos.conftest import Chaos, Workload, new_tag
from tests.chaos.conftest import chaos as chaos  # the fixture, driving chaos_sandbox below

pytestmark = [pytest.mark.integration]

FAULTS: dict[str, Any] = {
    "xero": {
        "error_rate": 0.1,
        "error_statuses": [500, 502, 503, 504],
        "rate_limit_bursts": True,
        "burst_rate": 0.05,
        "burst_seconds": 1.0,
    },
    "ignition": {"duplicate_rate": 0.2, "reorder": 0.2},
}


class Burst(Workload):
    """``clients`` new clients; the first ``invoices`` of them invoiced, half of those paid."""

    @classmethod
    def sized(cls, tag: str, clients: int, invoices: int, seed: int) -> Burst:
        billed = Workload.build(tag, invoices, seed)
        work = cls(tag, dict(billed.clients), {}, billed.invoices, billed.payments, billed.poison)
        extra = Workload.build(tag, clients, seed)
        for slug, record in extra.clients.items():
            work.clients.setdefault(slug, record)
        return work

    def puts_for(self, slug: str) -> list[tuple[str, dict[str, Any]]]:
        n = slug.rsplit("_", 1)[1]
        puts: list[tuple[str, dict[str, Any]]] = [("clients", self.clients[slug])]
        if (invoice := self.invoices.get(f"inv_{self.tag}_{n}")) is not None:
            puts.append(("invoices", invoice))
        for payments in (self.payments, self.poison):
            puts += [("payments", p) for p in payments.values() if p["client"]["slug"] == slug]
        return puts


@pytest.fixture
def chaos_sandbox(sandbox: Sandbox) -> Iterator[Sandbox]:
    """The chaos driver (``tests/chaos/conftest.py``'s ``chaos``) on the suite's own sandbox, with
    gathered batches on (the default) for the test and as they were after it: turning them off
    after the test left every later test of the worker one record at a time."""
    before = sandbox.config.batching.enabled
    sandbox.reconfigure(batching={"enabled": True})
    try:
        yield sandbox
    finally:
        sandbox.reconfigure(batching={"enabled": before})


def burst(chaos: Chaos, clients: int, invoices: int, seed: int) -> tuple[dict[str, Any], int]:
    work = Burst.sized(new_tag(), clients, invoices, seed)
    before = chaos.xero()["requests"]["by_endpoint"]
    figures = chaos.run(
        "batched_burst",
        work,
        xero={**FAULTS["xero"], "seed": seed},
        ignition={**FAULTS["ignition"], "seed": seed},
    )
    after = chaos.xero()["requests"]["by_endpoint"]
    calls = sum(
        n - before.get(label, 0)
        for label, n in after.items()
        if " /connect" not in label and "/connections" not in label
    )
    return figures, calls


def test_given_a_small_burst_with_xero_faults_and_reordered_duplicates_when_batched_then_each_record_once(
    chaos: Chaos,
) -> None:
    figures, calls = burst(chaos, clients=30, invoices=20, seed=15)
    assert figures["dup"] == 0 and figures["lost"] == 0
    assert figures["faults"] > 0
    # One record at a time this costs about two calls a record (2.2 in this mix).
    assert calls < 2 * figures["records"]


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_given_300_clients_200_invoices_100_payments_at_once_when_batched_then_each_record_once(
    chaos: Chaos,
) -> None:
    chaos.settle_timeout = 900
    figures, calls = burst(chaos, clients=300, invoices=200, seed=300)
    assert figures["dup"] == 0 and figures["lost"] == 0
    assert figures["faults"] > 0
    # Measured 92 to 104 Xero calls for 606 records under these faults (0.15-0.17 a record, in
    # 76-100 s; one record at a time: ~2.2 a record). A loaded machine forms smaller batches, so
    # the bound leaves twice that. The 390 measured before were made on a busier machine while
    # the sandbox's moto server still failed concurrent mapping writes (sandbox/moto_server.py).
    assert calls < figures["records"] / 3
