"""10,000 clients and 10,000 invoices a side through the sandbox (``make test-slow``): the run
completes, finds exactly the seeded discrepancies, and stays within its call budget. Figures are
printed (run with ``-s``); ``bench/reconcile_scale.py`` measures other sizes.

It starts its own sandbox, so run it apart from the other integration tests (``-m slow``)."""

from __future__ import annotations

import json

import pytest

from bench.reconcile_scale import DISCREPANCIES, measure

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.mark.timeout(3600)
def test_given_10000_records_a_side_when_reconciled_then_only_the_seeded_discrepancies_within_budget() -> (
    None
):
    figures = measure(10_000, 10_000)
    print(json.dumps(figures, indent=2))

    assert figures["status"] == "complete"
    assert figures["summary"] == {"missing_in_xero": DISCREPANCIES, "field_drift": DISCREPANCIES}
    # pageSize=1000: 10 contact pages, 10 invoice pages, 1 payment page (+1 empty page each).
    assert figures["xero_calls"] <= 25
    # limit=250 (Ignition may refuse more): 40 client pages, 40 invoice pages, 1 payment page, and
    # one page per terminal-state pass (archived clients; void, voided, cancelled invoices;
    # cancelled payments).
    assert figures["ignition_requests"] <= 90
