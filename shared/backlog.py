"""When a backlog of queued changes will have landed in Xero, from the call budget.

The sync spends at most ``calls_per_minute`` a minute and ``calls_per_day`` a UTC day
(``shared/config.py`` XeroConfig; 960 a day on Xero's 2026 Starter tier). A backlog needs
``records x calls per record`` calls: what fits in what is left of today lands at the minute rate;
the rest waits for each UTC midnight, a day's budget at a time, and comes back after it staggered
by rank (``shared/burst_order.py``: payments, then the oldest changes, within ``STAGGER_SECONDS``),
so the last day's share lands no sooner than that window. The dashboard's "Backlog" widget
(infra/monitoring.py) computes the same in CloudWatch metric math from the queue depth, the sync's
calls per synced record and Xero's X-DayLimit-Remaining; the bench (bench/__main__.py) uses it for
the Starter-tier billing-run figure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from shared.burst_order import STAGGER_SECONDS
from shared.config import XeroConfig

DAY_SECONDS = 86_400


@dataclass(frozen=True)
class Landing:
    calls: float  # Xero calls the backlog needs
    days_after_today: int  # UTC midnights it waits for (0: it lands today)
    hours: float  # from now until its last change lands

    @property
    def utc_days_spanned(self) -> int:
        """UTC days on which the backlog's calls are made, today included."""
        return self.days_after_today + 1


def hours_to_utc_midnight(now: datetime) -> float:
    epoch = now.astimezone(UTC).timestamp()
    return ((math.floor(epoch / DAY_SECONDS) + 1) * DAY_SECONDS - epoch) / 3600


def lands(
    records: float, calls_per_record: float, left_today: float, xero: XeroConfig, now: datetime
) -> Landing:
    """``left_today``: our budget's calls left today (Xero's X-DayLimit-Remaining less the margin
    ``day_limit - calls_per_day``); below 0 counts as 0."""
    calls = max(records, 0.0) * calls_per_record
    per_hour = xero.calls_per_minute * 60.0
    rest = calls - max(left_today, 0.0)
    if rest <= 0:
        return Landing(calls, 0, calls / per_hour)
    days = math.ceil(rest / xero.calls_per_day)
    last_day = max((rest - (days - 1) * xero.calls_per_day) / per_hour, STAGGER_SECONDS / 3600)
    return Landing(calls, days, hours_to_utc_midnight(now) + 24 * (days - 1) + last_day)


def fresh_day_run(records: float, calls_per_record: float, xero: XeroConfig) -> Landing:
    """A burst that arrives at the start of a UTC day, with the whole day's budget left (a firm's
    billing run): the bench's tier figures."""
    midnight = datetime(2026, 1, 1, tzinfo=UTC)
    return lands(records, calls_per_record, xero.calls_per_day, xero, midnight + timedelta(microseconds=1))
