"""The Xero call budget: fixed minute and UTC-day windows, shared through DynamoDB (moto)."""

from __future__ import annotations

import threading

import pytest

from shared import aws
from shared.config import XeroConfig
from shared.xero.budget import BudgetExhausted, DynamoCallBudget, InMemoryCallBudget, windows_at
from shared.xero.errors import XeroRateLimited
from tests.fakes import ManualClock
from tests.unit.moto_env import STATE_TABLE

TENANT = "tenant-abc"


def _config(**overrides: float) -> XeroConfig:
    values: dict[str, float] = {"calls_per_minute": 60, "calls_per_day": 5_000, "max_inline_wait_seconds": 0}
    values.update(overrides)
    return XeroConfig.model_validate(values)


def _call(budget: InMemoryCallBudget | DynamoCallBudget) -> None:
    budget.acquire()
    budget.release()


def test_given_sixty_calls_this_minute_when_sixty_first_then_refused_until_next_window() -> None:
    clock = ManualClock(start=1_767_225_600 + 15)  # 15 s into a minute
    budget = InMemoryCallBudget(_config(), clock=clock.time, sleep=clock.sleep)
    for _ in range(60):
        _call(budget)

    with pytest.raises(BudgetExhausted) as caught:
        budget.acquire()

    assert caught.value.problem == "budget-minute"
    assert caught.value.retry_after_seconds == pytest.approx(45)
    assert isinstance(caught.value, XeroRateLimited) and caught.value.transient
    assert clock.sleeps == []
    clock.advance(45)
    _call(budget)  # a new fixed window
    assert budget.used(windows_at(clock.time(), budget.config)[0].key) == 1


def test_given_minute_spent_and_next_window_within_inline_wait_when_acquire_then_waits_for_it() -> None:
    clock = ManualClock(start=1_767_225_600 + 50)
    budget = InMemoryCallBudget(
        _config(calls_per_minute=2, max_inline_wait_seconds=20), clock.time, clock.sleep
    )
    _call(budget)
    _call(budget)

    _call(budget)

    assert clock.sleeps == [pytest.approx(10)]


def test_given_day_spent_when_acquire_then_refused_without_sleeping_and_minute_unit_returned() -> None:
    clock = ManualClock(start=1_767_225_600 + 3_600)
    budget = InMemoryCallBudget(
        _config(calls_per_day=3, max_inline_wait_seconds=300), clock=clock.time, sleep=clock.sleep
    )
    for _ in range(3):
        _call(budget)

    with pytest.raises(BudgetExhausted) as caught:
        budget.acquire()

    assert caught.value.problem == "budget-day"
    assert caught.value.retry_after_seconds == pytest.approx(86_400 - 3_600)  # UTC midnight
    assert clock.sleeps == []
    minute, _ = windows_at(clock.time(), budget.config)
    assert budget.used(minute.key) == 3


def test_given_xero_reports_few_calls_left_when_observed_then_budget_stops_early() -> None:
    clock = ManualClock()
    budget = InMemoryCallBudget(_config(), clock=clock.time, sleep=clock.sleep)

    budget.observe({"X-MinLimit-Remaining": "2", "X-DayLimit-Remaining": "4000"})

    _call(budget)
    _call(budget)
    with pytest.raises(BudgetExhausted):
        budget.acquire()


def test_given_xero_429_day_problem_when_observed_then_refused_until_next_utc_day() -> None:
    clock = ManualClock()
    budget = InMemoryCallBudget(_config(max_inline_wait_seconds=300), clock=clock.time, sleep=clock.sleep)

    budget.observe({"retry-after": "3600", "x-rate-limit-problem": "day"})

    with pytest.raises(BudgetExhausted) as caught:
        budget.acquire()
    assert caught.value.problem == "budget-day"
    assert clock.sleeps == []


def test_given_all_concurrency_slots_taken_when_acquire_then_refused() -> None:
    clock = ManualClock()
    budget = InMemoryCallBudget(
        _config(max_concurrent=2, max_inline_wait_seconds=0.05), clock.time, clock.sleep
    )
    budget.acquire()
    budget.acquire()

    with pytest.raises(BudgetExhausted) as caught:
        budget.acquire()

    assert caught.value.problem == "budget-concurrency"
    budget.release()
    budget.acquire()  # a slot came back


def test_given_two_workers_sharing_dynamo_budget_when_sixty_first_call_then_refused_and_next_minute_resets(
    state_table: str,
) -> None:
    clock = ManualClock(start=1_767_225_600 + 30)
    a = DynamoCallBudget(STATE_TABLE, TENANT, _config(), clock=clock.time, sleep=clock.sleep)
    b = DynamoCallBudget(STATE_TABLE, TENANT, _config(), clock=clock.time, sleep=clock.sleep)
    for i in range(60):
        _call(a if i % 2 else b)

    with pytest.raises(BudgetExhausted) as caught:
        a.acquire()

    assert caught.value.retry_after_seconds == pytest.approx(30)
    clock.advance(30)
    _call(b)
    items = aws.client("dynamodb").query(
        TableName=STATE_TABLE,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"budget#{TENANT}"}},
    )["Items"]
    counts = {item["sk"]["S"]: int(item["calls"]["N"]) for item in items}
    assert counts == {"minute#20260101T0000": 60, "minute#20260101T0001": 1, "day#20260101": 61}
    assert all(int(item["expires_at"]["N"]) > clock.time() for item in items)


def test_given_other_tenant_when_counting_then_budgets_are_separate(state_table: str) -> None:
    clock = ManualClock()
    mine = DynamoCallBudget(STATE_TABLE, TENANT, _config(calls_per_minute=1), clock.time, clock.sleep)
    theirs = DynamoCallBudget(
        STATE_TABLE, "tenant-other", _config(calls_per_minute=1), clock.time, clock.sleep
    )

    _call(mine)
    _call(theirs)

    with pytest.raises(BudgetExhausted):
        mine.acquire()


def test_given_concurrent_threads_when_racing_for_the_last_calls_then_limit_is_never_exceeded(
    state_table: str,
) -> None:
    clock = ManualClock()
    ddb = aws.client("dynamodb")  # thread-safe; one per thread would be slow to create
    granted: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        budget = DynamoCallBudget(STATE_TABLE, TENANT, _config(calls_per_minute=10), clock.time, client=ddb)
        for _ in range(5):
            try:
                budget.acquire()
            except BudgetExhausted:
                continue
            budget.release()
            with lock:
                granted.append(1)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len(granted) == 10


def test_given_dynamo_budget_when_xero_reports_usage_then_shared_counter_is_raised(state_table: str) -> None:
    clock = ManualClock()
    a = DynamoCallBudget(STATE_TABLE, TENANT, _config(), clock=clock.time, sleep=clock.sleep)
    b = DynamoCallBudget(STATE_TABLE, TENANT, _config(), clock=clock.time, sleep=clock.sleep)

    a.observe({"X-MinLimit-Remaining": "1"})

    _call(b)
    with pytest.raises(BudgetExhausted):
        b.acquire()
