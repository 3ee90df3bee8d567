"""The one Ignition request budget: an hourly window shared by the poller, the sync's newest-state
reads, the reconciliation and the backfill, with a reserve the poller leaves to the others.

Ignition side: the emulator behind the real Reporting API client, so "no request was made" is
counted at the HTTP layer. Clock: the sandbox's fake clock. Counters: in memory, and in DynamoDB
(moto) for the shared table layout.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from shared import aws
from shared.config import IgnitionConfig, PollRules, RetryRules
from shared.delivery import DeliveryPolicy
from shared.errors import LimitWait
from shared.ignition.budget import IGNITION_BUDGET_PK, IgnitionBudgetExhausted, IgnitionRequestBudget
from shared.ignition.reporting import IgnitionReportingClient
from shared.poll import Poller
from shared.windowed_budget import DynamoWindowCounts, InMemoryWindowCounts, WindowCounts
from tests.ignition_double import EmulatedIgnition
from tests.unit.moto_env import STATE_TABLE
from tests.unit.test_delivery_policy import InMemoryLedger
from tests.unit.test_poll import BASE, Lease, Queue, State, client_record

# 10:15 UTC: 45 minutes left in the hour.
T0 = datetime(2025, 3, 3, 10, 15, tzinfo=UTC)
# 8 an hour, a quarter kept back: the poller spends while fewer than 6 are used.
CONFIG = IgnitionConfig(api_url=BASE, requests_per_hour=8, poll_reserve_share=0.25)


class Practice(EmulatedIgnition):
    """One Ignition practice: the emulator, and two Reporting API clients over one budget, the
    poller's (keeping the reserve) and the sync's."""

    def __init__(self, counts: WindowCounts | None = None, config: IgnitionConfig = CONFIG) -> None:
        super().__init__(at=T0)
        self.sleeps: list[float] = []
        self.counts = counts or InMemoryWindowCounts()
        self.poll_budget = IgnitionRequestBudget(
            self.counts, config, background=True, clock=self.clock.time, sleep=self.sleep
        )
        self.sync_budget = IgnitionRequestBudget(self.counts, config, clock=self.clock.time, sleep=self.sleep)
        self.poll_client = IgnitionReportingClient.from_config(
            config, lambda: self.token, http=self.http, clock=self.clock.time, budget=self.poll_budget
        )
        self.sync_client = IgnitionReportingClient.from_config(
            config, lambda: self.token, http=self.http, clock=self.clock.time, budget=self.sync_budget
        )
        self.queue, self.state = Queue(), State()
        self.poller = Poller(
            ignition=self.poll_client,
            queue=self.queue,
            state=self.state,
            lease=Lease(),
            rules=PollRules(overlap_seconds=60, terminal_every_runs=1),
            now=self.clock.now,
        )

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.clock.advance(seconds)

    def put_client(self, slug: str) -> None:
        self.put("clients", client_record(slug, self.clock.now()))

    def spend(self, requests: int) -> None:
        """Requests made by someone else this hour (another function, the CLI)."""
        for _ in range(requests):
            self.sync_budget.acquire()


@pytest.fixture
def practice() -> Practice:
    return Practice()


def test_given_only_the_reserve_left_when_polling_then_skipped_and_a_newest_state_read_succeeds(
    practice: Practice,
) -> None:
    practice.put_client("cli_1")
    practice.spend(6)  # 2 of 8 left: exactly the reserve

    result = practice.poller.run()

    assert result.status == "skipped" and result.reason == "budget"
    assert result.retry_after == pytest.approx(45 * 60, abs=1)
    assert practice.requests == [] and practice.queue.events == []
    # A skipped run does not move the cursor or count towards the terminal-pass cadence.
    assert practice.state.saved is None
    assert practice.poll_budget.remaining() == 0

    found = practice.sync_client.get_client("cli_1")

    assert found is not None and found.slug == "cli_1"
    assert len(practice.requests) == 1
    assert practice.sync_budget.remaining() == 1


def test_given_a_budget_above_the_reserve_when_the_poller_runs_then_it_reads_and_queues_as_usual(
    practice: Practice,
) -> None:
    practice.put_client("cli_1")

    result = practice.poller.run()

    # Three resources, each a default and a terminal-state pass: 3 + 4 listings = 7 requests
    # would exceed the 6 the poller may spend, so the run stops part-way and says why.
    assert result.status == "partial" and result.reason == "budget"
    assert [event.record_id for event in practice.queue.events] == ["cli_1"]
    assert len(practice.requests) == 6
    assert practice.state.saved is not None and practice.state.saved.runs == 1


def test_given_the_hour_spent_when_a_newest_state_read_asks_then_it_waits_for_the_window_without_a_request(
    practice: Practice,
) -> None:
    practice.spend(8)

    with pytest.raises(IgnitionBudgetExhausted) as caught:
        practice.sync_client.get_client("cli_1")

    assert practice.requests == []
    assert caught.value.problem == "budget-hour"
    assert caught.value.retry_after == pytest.approx(45 * 60, abs=1)
    assert practice.sleeps == []  # 45 minutes is far beyond the in-process wait
    # A wait, not a fault: the sync's retry policy never counts it against the event's attempts.
    assert isinstance(caught.value, LimitWait)
    decision = DeliveryPolicy(InMemoryLedger(), RetryRules()).after_failure("m-1", 1, caught.value)
    assert decision.wait is True  # type: ignore[union-attr]


def test_given_the_hour_spent_when_the_next_hour_starts_then_both_may_spend_again(practice: Practice) -> None:
    practice.spend(8)
    with pytest.raises(IgnitionBudgetExhausted):
        practice.sync_budget.acquire()

    practice.clock.advance(45 * 60)

    practice.poll_budget.acquire()
    practice.sync_budget.acquire()
    assert practice.sync_budget.used() == 2
    assert practice.poll_budget.remaining() == 4
    assert practice.sync_budget.remaining() == 6


def test_given_the_hour_ends_within_the_inline_wait_when_the_sync_asks_then_it_sleeps_into_the_next() -> None:
    practice = Practice()
    practice.spend(8)
    practice.clock.advance(45 * 60 - 5)  # 5 s before the hour ends; the default wait is 20 s

    practice.sync_budget.acquire()

    assert practice.sleeps == [pytest.approx(5, abs=0.1)]
    assert practice.sync_budget.used() == 1


def test_given_a_limit_above_ignitions_when_configured_for_the_real_api_then_it_is_refused() -> None:
    with pytest.raises(ValidationError, match="requests_per_hour"):
        IgnitionConfig(requests_per_hour=1_500)
    assert IgnitionConfig(api_url="http://localhost:9000", requests_per_hour=1_500).requests_per_hour == 1_500
    assert IgnitionConfig().requests_per_hour == 900


def test_given_the_state_table_when_the_poller_and_the_sync_spend_then_one_hourly_item_counts_both(
    state_table: str,
) -> None:
    practice = Practice(DynamoWindowCounts(STATE_TABLE, IGNITION_BUDGET_PK))
    practice.put_client("cli_1")
    practice.spend(5)

    practice.poll_client.iter_clients(passes="default").__next__()  # the poller's 6th: allowed

    with pytest.raises(IgnitionBudgetExhausted) as refused:
        practice.poll_budget.acquire()
    assert refused.value.problem == "budget-hour-reserve"
    assert practice.sync_client.get_client("cli_1") is not None
    item = aws.client("dynamodb").get_item(
        TableName=STATE_TABLE, Key={"pk": {"S": "budget#ignition"}, "sk": {"S": "hour#20250303T10"}}
    )["Item"]
    assert item["calls"]["N"] == "7"
    assert int(item["expires_at"]["N"]) > T0.timestamp() + 3_600
