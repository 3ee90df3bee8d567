"""The Xero day budget on each app tier: 5,000 calls a day, or 1,000 on the Starter tier of 2026
(shared/config.py XeroConfig.day_limit, shared/xero/budget.py)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from shared.config import XeroConfig
from shared.xero.budget import BudgetExhausted, InMemoryCallBudget, windows_at
from tests.fakes import ManualClock

A_UTC_DAY = 1_767_225_600  # 2026-01-01T00:00:00Z


def test_given_the_starter_tier_alone_when_configured_then_the_budget_stays_under_its_1000_calls() -> None:
    starter = XeroConfig.model_validate({"day_limit": 1_000})

    assert starter.calls_per_day == 960
    assert XeroConfig().calls_per_day == 4_800 and XeroConfig().day_limit == 5_000


def test_given_a_budget_above_the_starter_limit_when_validated_then_the_message_names_the_tier() -> None:
    with pytest.raises(ValidationError) as caught:
        XeroConfig.model_validate({"day_limit": 1_000, "calls_per_day": 4_800})

    assert "calls_per_day 4800 is above day_limit 1000 (Xero's Starter tier)" in str(caught.value)


@pytest.mark.parametrize("day_limit", [999, 5_001])
def test_given_a_day_limit_outside_xeros_tiers_when_validated_then_refused_naming_starter(
    day_limit: int,
) -> None:
    with pytest.raises(ValidationError) as caught:
        XeroConfig.model_validate({"day_limit": day_limit})

    assert "from 1,000 calls (the Starter tier, 2026) to 5,000" in str(caught.value)


def test_given_an_emulator_when_configured_then_the_bench_may_lift_the_day_limit() -> None:
    lifted = XeroConfig.model_validate({"api_url": "http://127.0.0.1:9000", "calls_per_day": 10_000_000})

    assert lifted.calls_per_day == 10_000_000


def test_given_starter_and_xero_says_900_left_when_calls_follow_then_860_more_fit_today() -> None:
    clock = ManualClock(start=A_UTC_DAY + 3_600)
    config = XeroConfig.model_validate(
        {"day_limit": 1_000, "calls_per_minute": 60, "max_inline_wait_seconds": 0}
    )
    budget = InMemoryCallBudget(config, clock=clock.time, sleep=clock.sleep)

    budget.observe({"X-DayLimit-Remaining": "900"})

    day = windows_at(clock.time(), config)[1]
    assert budget.used(day.key) == 100  # counted down from the Starter tier's 1,000, not 5,000
    for minute in range(15):
        for _ in range(60 if minute < 14 else 20):
            budget.acquire()
            budget.release()
        clock.advance(60)
    with pytest.raises(BudgetExhausted) as caught:
        budget.acquire()
    assert caught.value.problem == "budget-day"
