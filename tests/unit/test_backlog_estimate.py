"""When a backlog lands in Xero under the call budget (shared/backlog.py): the dashboard widget's
figures and the bench's Starter-tier billing run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from shared.backlog import fresh_day_run, hours_to_utc_midnight, lands
from shared.burst_order import STAGGER_SECONDS
from shared.config import XeroConfig

STARTER = XeroConfig.model_validate({"day_limit": 1_000})  # 55 a minute, 960 a day
TEN_PM = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)


def test_given_a_backlog_within_todays_budget_when_estimated_then_it_lands_at_the_minute_rate() -> None:
    landing = lands(300, 2.0, left_today=900, xero=STARTER, now=TEN_PM)

    assert landing.calls == 600 and landing.days_after_today == 0
    assert landing.hours == pytest.approx(600 / 3_300)


def test_given_more_than_is_left_today_when_estimated_then_the_rest_waits_for_utc_midnights() -> None:
    # 2,000 calls, 100 left today: 1,900 more at 960 a day -> two midnights, 940 on the second day.
    landing = lands(1_000, 2.0, left_today=100, xero=STARTER, now=TEN_PM)

    assert landing.days_after_today == 2
    assert landing.hours == pytest.approx(2 + 24 + 940 / 3_300)


def test_given_xero_reports_less_than_our_margin_when_estimated_then_nothing_counts_as_left() -> None:
    assert lands(10, 1.0, left_today=-30, xero=STARTER, now=TEN_PM).days_after_today == 1


def test_given_a_2000_invoice_billing_run_on_starter_when_it_starts_a_day_then_it_takes_four_days() -> None:
    run = fresh_day_run(2_000, 2.0, STARTER)

    assert run.calls == 4_000 and run.utc_days_spanned == 5
    assert run.hours / 24 == pytest.approx(4.0, abs=0.01)
    assert fresh_day_run(2_000, 0.02, STARTER).hours < 0.1  # batched 50 a call: 40 calls


def test_given_a_time_when_asked_then_hours_to_utc_midnight_count_from_utc_not_local() -> None:
    assert hours_to_utc_midnight(TEN_PM) == pytest.approx(2.0)


def test_given_a_small_remainder_after_today_when_estimated_then_it_lands_after_the_stagger_window() -> None:
    # 50 calls beyond today's: at 55 a minute under a minute of calls, but its records come back
    # over the window after midnight in rank order (shared/burst_order.py), the newest last.
    landing = lands(75, 2.0, left_today=100, xero=STARTER, now=TEN_PM)

    assert landing.days_after_today == 1
    assert landing.hours == pytest.approx(2 + STAGGER_SECONDS / 3600)
