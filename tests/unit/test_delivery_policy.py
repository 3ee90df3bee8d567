"""The sync's retry policy: waits never spend an event's attempts; faults do; every give-up has a
category and a reason."""

from __future__ import annotations

from dataclasses import replace

from shared.config import RetryRules
from shared.delivery import DeliveryPolicy, GiveUp, RetryLater
from shared.errors import PermanentSyncError
from shared.ignition.reporting import IgnitionRateLimited
from shared.store.attempts import NO_HISTORY, AttemptHistory
from shared.store.locks import LockTimeout
from shared.xero.budget import BudgetExhausted
from shared.xero.errors import XeroRateLimited, XeroUnavailable


class InMemoryLedger:
    """Keeps the same counts as ``DynamoAttemptLedger``, per message id."""

    def __init__(self) -> None:
        self.items: dict[str, AttemptHistory] = {}

    def history(self, message_id: str) -> AttemptHistory:
        return self.items.get(message_id, NO_HISTORY)

    def start(self, message_id: str) -> AttemptHistory:
        current = self.history(message_id)
        self.items[message_id] = replace(current, starts=current.starts + 1)
        return self.items[message_id]

    def add_waits(self, message_ids: list[str], *, finished: bool = False) -> None:
        for message_id in message_ids:
            current = self.history(message_id)
            self.items[message_id] = replace(
                current, waits=current.waits + 1, finished=current.finished + int(finished)
            )

    def add_fault(
        self, message_id: str, error: str, *, unexpected: bool, finished: bool = False
    ) -> AttemptHistory:
        current = self.history(message_id)
        self.items[message_id] = replace(
            current,
            faults=current.faults + 1,
            finished=current.finished + int(finished),
            last_error=error,
            last_error_unexpected=unexpected,
        )
        return self.items[message_id]


RULES = RetryRules(max_fault_attempts=5, max_unexplained_receives=10, max_delay_seconds=43_200)


def deliver(
    policy: DeliveryPolicy, message_id: str, receives: int, exc: BaseException
) -> RetryLater | GiveUp:
    refused = policy.before_attempt(message_id, receives)
    return refused if refused is not None else policy.after_failure(message_id, receives, exc)


def test_given_a_spent_call_budget_when_an_event_bounces_200_times_then_it_is_never_parked() -> None:
    policy = DeliveryPolicy(InMemoryLedger(), RULES)

    outcomes = [deliver(policy, "m1", n, BudgetExhausted(55.0, "budget-minute")) for n in range(1, 201)]

    assert all(isinstance(o, RetryLater) and o.wait for o in outcomes)
    assert {o.delay_seconds for o in outcomes if isinstance(o, RetryLater)} == {56}


def test_given_rate_limits_from_xero_ignition_and_a_lock_then_each_is_a_wait_not_a_fault() -> None:
    ledger = InMemoryLedger()
    policy = DeliveryPolicy(ledger, RULES)

    for n, exc in enumerate(
        [XeroRateLimited(30, "minute"), IgnitionRateLimited(600), LockTimeout("token", 30.0)], start=1
    ):
        assert isinstance(deliver(policy, "m1", n, exc), RetryLater)

    history = ledger.history("m1")
    assert (history.waits, history.faults, history.unexplained()) == (3, 0, 0)


def test_given_five_5xx_faults_between_waits_then_the_fifth_parks_the_event_with_its_last_error() -> None:
    policy = DeliveryPolicy(InMemoryLedger(), RULES)
    receives = 0
    outcome: RetryLater | GiveUp | None = None
    for _ in range(5):
        for _ in range(7):  # waits in between are free
            receives += 1
            assert isinstance(
                deliver(policy, "m1", receives, BudgetExhausted(5.0, "budget-minute")), RetryLater
            )
        receives += 1
        outcome = deliver(policy, "m1", receives, XeroUnavailable("Xero answered 503 five times"))

    assert isinstance(outcome, GiveUp)
    assert outcome.category == "retries_exhausted"
    assert "5 failed tries" in outcome.reason and "XeroUnavailable: Xero answered 503" in outcome.reason


def test_given_an_unclassified_error_when_it_repeats_then_it_is_parked_as_unexpected_with_its_text() -> None:
    policy = DeliveryPolicy(InMemoryLedger(), RULES)

    outcomes = [deliver(policy, "m1", n, KeyError("LineItems")) for n in range(1, 6)]

    assert all(isinstance(o, RetryLater) and not o.wait for o in outcomes[:4])
    assert outcomes[4] == GiveUp(
        category="unexpected_error",
        reason="gave up after 5 failed tries (waits for rate limits not counted); "
        "last error: KeyError: 'LineItems'",
    )


def test_given_a_permanent_failure_then_it_is_parked_at_once_with_its_own_category() -> None:
    policy = DeliveryPolicy(InMemoryLedger(), RULES)

    outcome = deliver(policy, "m1", 1, PermanentSyncError("no tax type for 7%", category="tax_rate_unknown"))

    assert outcome == GiveUp(category="tax_rate_unknown", reason="no tax type for 7%")


def test_given_tries_of_this_message_that_died_midway_then_the_event_is_parked_saying_so() -> None:
    ledger = InMemoryLedger()
    policy = DeliveryPolicy(ledger, RULES)
    # The first try waited; then ten redelivered tries died while working on this very message.
    assert isinstance(deliver(policy, "m1", 1, BudgetExhausted(5.0, "budget-minute")), RetryLater)
    for receive in range(2, 12):
        assert policy.before_attempt("m1", receive) is None

    refused = policy.before_attempt("m1", 12)

    assert refused is not None and refused.category == "receives_exhausted"
    assert "stopped 10 times" in refused.reason


def test_given_deliveries_where_the_function_died_before_reaching_the_message_then_they_do_not_count() -> (
    None
):
    ledger = InMemoryLedger()
    policy = DeliveryPolicy(ledger, RULES)
    # 40 deliveries: each batch died on another record before this one was reached (no start),
    # or this one waited for the budget and said so.
    receive = 0
    for n in range(40):
        receive += 1
        if n % 2:
            assert isinstance(
                deliver(policy, "m1", receive, BudgetExhausted(5.0, "budget-minute")), RetryLater
            )

    assert policy.before_attempt("m1", receive + 1) is None
    assert ledger.history("m1").unexplained() == 0


def test_given_members_skipped_behind_their_groups_head_then_they_are_not_counted_against_themselves() -> (
    None
):
    ledger = InMemoryLedger()
    policy = DeliveryPolicy(ledger, RULES)

    for _ in range(30):
        policy.untried(["m2", "m3"])

    assert policy.before_attempt("m2", 31) is None
    assert ledger.history("m3") == AttemptHistory(waits=30)
    assert ledger.history("m2").unexplained() == 0


def test_given_a_day_limit_wait_then_the_delay_is_capped_by_the_rules() -> None:
    policy = DeliveryPolicy(InMemoryLedger(), RULES.model_copy(update={"max_delay_seconds": 2}))

    outcome = deliver(policy, "m1", 1, BudgetExhausted(20 * 3600.0, "budget-day"))

    assert isinstance(outcome, RetryLater)
    assert (outcome.delay_seconds, outcome.wait) == (2, True)
