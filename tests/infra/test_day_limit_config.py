"""clients/<name>.json on Xero's 2026 Starter tier (runtime.xero.day_limit 1000): the budget and the
XeroDailyBudgetLow threshold must sit under the tier's limit, and the errors name the tier."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra.test_config import _error, _example, _load

pytestmark = [pytest.mark.infra]


def _starter(**xero: int) -> dict[str, object]:
    data = _example()
    data["runtime"]["xero"] = {**data["runtime"]["xero"], "day_limit": 1_000, **xero}
    return data


def test_given_the_starter_tier_with_its_budget_when_loaded_then_it_is_valid(tmp_path: Path) -> None:
    config = _load(tmp_path, _starter(calls_per_day=960))

    assert config.runtime.xero.day_limit == 1_000 and config.runtime.xero.calls_per_day == 960


def test_given_the_starter_tier_and_the_default_budget_when_loaded_then_the_error_names_the_tier(
    tmp_path: Path,
) -> None:
    message = _error(tmp_path, _starter())  # example.json keeps calls_per_day 4800

    assert "calls_per_day 4800 is above day_limit 1000 (Xero's Starter tier)" in message


def test_given_a_budget_alarm_at_the_starter_limit_when_loaded_then_refused(tmp_path: Path) -> None:
    data = _starter(calls_per_day=960)
    data["alarms"]["xero_day_limit_remaining_below"] = 1_000  # type: ignore[index]

    message = _error(tmp_path, data)

    assert "must be below runtime.xero.day_limit (1000, Xero's Starter tier)" in message
