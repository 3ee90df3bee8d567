"""One Ignition request budget per practice, shared by everything that reads the Reporting API.

Ignition allows about 1,000 requests an hour per practice (integration-facts) and answers 429
beyond it, for everybody at once. The poller, the sync's newest-state reads, the reconciliation
and the backfill all spend from the same hourly window in the state table
(``shared/windowed_budget.py``, the algorithm the Xero budget uses), capped by
``IgnitionConfig.requests_per_hour``.

When the hour runs short the poller slows down first: it spends only while more than
``poll_reserve_share`` of the hour is left (``background=True``), so a newest-state read or a
reconciliation still gets its request when the poller has stopped. A poller that is refused skips
its run (its cursor stays; the next run reads the same changes). Spent means
:class:`IgnitionBudgetExhausted`, an ``IgnitionRateLimited`` and so a ``LimitWait``: the sync's
retry policy waits for the window, it never counts it as a fault.

DynamoDB item (state table)::

    pk="budget#ignition"  sk="hour#YYYYMMDDTHH"  calls=<N>  expires_at=<N epoch s>
"""

from __future__ import annotations

import time
from collections.abc import Callable

from shared.config import IgnitionConfig
from shared.ignition.reporting import IgnitionRateLimited
from shared.windowed_budget import (
    DynamoWindowCounts,
    WindowCounts,
    WindowedBudget,
    WindowSpec,
)

# One practice per deployment, so one key; the IAM policies name it (infra/functions.py).
IGNITION_BUDGET_PK = "budget#ignition"
HOUR_SECONDS = 3_600


class IgnitionBudgetExhausted(IgnitionRateLimited):
    """Our own hourly budget is spent (or, for the poller, down to the reserve); no request was
    made. ``problem`` says which: ``budget-hour`` or ``budget-hour-reserve``."""

    def __init__(self, retry_after: float, problem: str) -> None:
        super().__init__(retry_after)
        self.args = (f"Ignition request budget spent ({problem}); retry in {retry_after:.0f} s",)
        self.status = None
        self.problem = problem


class IgnitionRequestBudget:
    """``acquire()`` before every request to Ignition (``IgnitionReportingClient(budget=...)``)."""

    def __init__(
        self,
        counts: WindowCounts,
        config: IgnitionConfig,
        *,
        background: bool = False,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.background = background
        self._keep_share = config.poll_reserve_share if background else 0.0

        def exhausted(retry_after: float, problem: str) -> Exception:
            return IgnitionBudgetExhausted(retry_after, f"{problem}-reserve" if background else problem)

        self._windows = WindowedBudget(
            counts,
            (WindowSpec("hour", HOUR_SECONDS, config.requests_per_hour),),
            clock=clock,
            sleep=sleep,
            # The poller never sleeps for the hour: its next scheduled run is as good as a wait.
            max_inline_wait_seconds=0.0 if background else config.budget_max_inline_wait_seconds,
            exhausted=exhausted,
        )

    @classmethod
    def in_table(
        cls, table_name: str, config: IgnitionConfig, *, background: bool = False
    ) -> IgnitionRequestBudget:
        """The practice's budget in the state table (every function and the CLI share it)."""
        return cls(DynamoWindowCounts(table_name, IGNITION_BUDGET_PK), config, background=background)

    def acquire(self) -> None:
        """Take one request from this hour, or raise :class:`IgnitionBudgetExhausted`."""
        self._windows.take(keep_share=self._keep_share)

    def remaining(self) -> int:
        """Requests this caller may still make this hour (the poller: above the reserve)."""
        return self._windows.remaining(keep_share=self._keep_share)

    def used(self) -> int:
        """Requests counted this hour, by every caller."""
        (hour,) = self._windows.windows()
        return self._windows.counts.used(hour)
