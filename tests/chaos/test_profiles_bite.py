"""The chaos profiles' Xero faults bite on any workload, however few calls the sync makes.

The Xero emulator decides each Accounting API call's faults in call order from the profile's seed
(``sandbox/xero_emulator/faults.py``), so planning the first calls here replays what the chaos
suite's emulator decides (``tests/chaos/test_chaos.py``), without a sandbox. A rate alone missed
on the 12-client workload once gathered batches cut it to 15 to 25 calls; ``first_within_calls``
makes each fault certain within the first calls.
"""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.clock import Clock
from sandbox.xero_emulator import XeroEmulator
from sandbox.xero_emulator.faults import FaultPlan, XeroFaultProfile, XeroFaults
from tests.chaos.test_chaos import EVERYTHING, FIRST_WITHIN_CALLS, PROFILES, profile_seed

ALONE = sorted(name for name, profile in PROFILES.items() if "xero" in profile)


def planned(body: dict[str, Any], seed: int, calls: int) -> tuple[XeroFaults, list[FaultPlan]]:
    """The plans of ``calls`` calls a second apart (a 1.5 s burst covers the next call)."""
    faults = XeroFaults()
    faults.configure(XeroFaultProfile.parse({**body, "seed": seed}))
    return faults, [faults.plan(float(call)) for call in range(calls)]


@pytest.mark.parametrize("name", ALONE)
def test_given_a_xero_chaos_profile_when_its_first_calls_are_made_then_its_fault_comes_in_them(
    name: str,
) -> None:
    faults, plans = planned(PROFILES[name]["xero"], profile_seed(name), FIRST_WITHIN_CALLS)

    expiries = sum(plan.expire_tokens for plan in plans)
    assert sum(faults.injected.values()) + expiries > 0, f"{name}: nothing in {FIRST_WITHIN_CALLS} calls"


@pytest.mark.parametrize("seed", [99, 1000, 2026])
def test_given_every_fault_at_once_when_the_first_calls_are_made_then_each_kind_comes_soon(seed: int) -> None:
    """A call taken by one fault passes another owed at it on to the next call: every kind still
    comes within one call per kind after the first calls."""
    faults, plans = planned(EVERYTHING["xero"], seed, FIRST_WITHIN_CALLS + 4)

    injected = faults.injected
    assert injected["rate_limit_bursts"] >= 1
    assert sum(injected[str(status)] for status in EVERYTHING["xero"]["error_statuses"]) >= 1
    assert injected["timeouts"] + injected["timeouts_after_apply"] >= 1
    assert any(plan.expire_tokens for plan in plans)


def test_given_an_owed_expiry_when_the_token_is_too_young_then_the_first_old_enough_call_meets_it_once() -> (
    None
):
    clock = Clock()
    emulator = XeroEmulator(clock=clock)
    tokens = emulator.issue_token_set()
    headers = {"Authorization": f"Bearer {tokens['access_token']}", "xero-tenant-id": emulator.tenant_id}
    client = emulator.app.test_client()
    profile = {"expire_tokens": True, "expire_rate": 0.0, "min_token_age_seconds": 1, "first_within_calls": 1}
    client.post("/_emulator/faults", json=profile)

    spared = client.get("/api.xro/2.0/Contacts", headers=headers)
    clock.advance(2)
    expired = client.get("/api.xro/2.0/Contacts", headers=headers)

    assert spared.status_code == 200
    assert expired.status_code == 401
    assert "TokenExpired" in expired.get_json()["Detail"]
    fresh = emulator.issue_token_set()
    clock.advance(2)
    again = client.get(
        "/api.xro/2.0/Contacts", headers={**headers, "Authorization": f"Bearer {fresh['access_token']}"}
    )
    assert again.status_code == 200  # owed once, paid once; the rate (0) draws no other
    assert emulator.state_snapshot()["faults"]["injected"] == {"tokens_expired": 1}


@pytest.mark.parametrize("value", [-1, 1.5, True, "4"])
def test_given_first_within_calls_not_a_count_when_posting_a_profile_then_400(value: Any) -> None:
    client = XeroEmulator().app.test_client()

    assert client.post("/_emulator/faults", json={"first_within_calls": value}).status_code == 400
