"""A burst larger than what is left of today's Xero budget (shared/burst_order.py): the day's last
calls go to payments and the oldest changes, one client's events are never reordered, and what
waits for the day's reset comes back after it in that order."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aws_lambda_powertools.utilities.batch import SqsFifoPartialProcessor, process_partial_response

from shared import aws, burst_order
from shared.burst_order import (
    STAGGER_SECONDS,
    DayReset,
    in_rank_order,
    rank,
    records_in_rank_order,
)
from shared.collector import GatheredBatch
from shared.config import RecordType, RetryRules
from shared.delivery import BatchAttempt, DeliveryPolicy, QueuedMessage, SyncDelivery, VisibilityDelay
from shared.gather import CallGather, Kind
from shared.models.events import SyncEvent
from shared.store.queue import SqsEventQueue
from shared.xero.budget import BudgetExhausted
from shared.xero.errors import XeroRateLimited
from tests.sync_events import sync_event
from tests.unit.test_delivery_policy import InMemoryLedger
from tests.unit.test_gathered_batch import DeadLetters, Log, Queue

HOUR = 3600
RESET_IN = 2 * HOUR  # the day's budget returns two hours from now
MAX_DELAY = 12 * HOUR


class DayBudget:
    """Today's Xero calls left; a call beyond them waits for the reset, as
    shared/xero/budget.py's day window says (``BudgetExhausted``, problem ``budget-day``)."""

    def __init__(self, calls: int) -> None:
        self.left = calls
        self._mutex = threading.Lock()

    def take(self) -> None:
        with self._mutex:
            if self.left <= 0:
                raise BudgetExhausted(RESET_IN, "budget-day")
            self.left -= 1


def event(record_id: str, record_type: RecordType, hours_ago: float, group: str) -> SyncEvent:
    at = datetime.now(UTC) - timedelta(hours=hours_ago)
    return sync_event(record_id, record_type=record_type, event_id=f"evt_{record_id}", at=at, group_id=group)


TYPE_OF = {"cli": RecordType.CLIENT, "inv": RecordType.INVOICE, "pay": RecordType.PAYMENT}


def burst(**hours_ago: float) -> list[SyncEvent]:
    """Events in queue order, each named ``<cli|inv|pay>_<client>`` and changed ``hours_ago``:
    cli_a, inv_a and pay_a are client a's contact, invoice and payment, in one FIFO group."""
    events = []
    for name, hours in hours_ago.items():
        kind, client = name.split("_", 1)
        events.append(event(name, TYPE_OF[kind], hours, client))
    return events


def queued(events: Sequence[SyncEvent]) -> list[QueuedMessage]:
    return [
        QueuedMessage(f"m_{e.record_id}", e.model_dump_json(), f"r_{e.record_id}", 1, e.group_id)
        for e in events
    ]


def delivery(apply: Any, queue: VisibilityDelay) -> SyncDelivery:
    return SyncDelivery(
        policy=DeliveryPolicy(InMemoryLedger(), RetryRules()),
        apply=apply,
        dead_letters=DeadLetters(),
        queue=queue,
        count=lambda metric: None,
        log=Log(),
    )


def sqs_records(messages: Sequence[QueuedMessage]) -> list[dict[str, Any]]:
    return [
        {
            "messageId": m.message_id,
            "body": m.body,
            "receiptHandle": m.receipt_handle,
            "attributes": {"ApproximateReceiveCount": "1", "MessageGroupId": m.group_id},
        }
        for m in messages
    ]


def one_record_at_a_time(sync: SyncDelivery, messages: Sequence[QueuedMessage]) -> None:
    """The sync function's one-record path (functions/sync/handler.py): the batch in rank order
    through Powertools' FIFO processor, a failed record's group skipped."""
    attempt = BatchAttempt(sync)
    event = {"Records": records_in_rank_order(sqs_records(messages))}
    processor = SqsFifoPartialProcessor(skip_group_on_error=True)
    processor.raise_on_entire_batch_failure = False  # as the handler's
    response = process_partial_response(
        event=event,
        record_handler=lambda record: attempt.handle(
            QueuedMessage(
                record.message_id, record.body, record.receipt_handle, 1, record.attributes.message_group_id
            )
        ),
        processor=processor,
    )
    attempt.hand_back_untried(event, {str(i["itemIdentifier"]) for i in response["batchItemFailures"]})


def with_day_budget(calls: int, events: Sequence[SyncEvent]) -> tuple[list[str], Queue]:
    """``events`` as one batch of the one-record sync with ``calls`` left today, two a record (a
    lookup and a write): the record ids that landed, in order, and the queue of those kept."""
    budget, landed, queue = DayBudget(calls), [], Queue()

    def apply(e: SyncEvent) -> Mapping[str, object]:
        budget.take()
        budget.take()
        landed.append(e.record_id)
        return {"record_type": e.record_type, "action": "created"}

    one_record_at_a_time(delivery(apply, queue), queued(events))
    return landed, queue


def return_order(queue: Queue) -> list[str]:
    """Record ids of the kept messages, by when they come back (their delay), each at its own time."""
    assert len(set(queue.delayed.values())) == len(queue.delayed), f"returned together: {queue.delayed}"
    return [handle.removeprefix("r_") for handle, _ in sorted(queue.delayed.items(), key=lambda kv: kv[1])]


# -- (1) the day's last calls ------------------------------------------------------------------


def test_given_budget_for_3_of_7_records_when_one_at_a_time_then_the_payment_and_2_oldest_land() -> None:
    # Given: seven clients' events in queue order (newest first: a poll, a replay or retries
    # scramble arrival), a payment among them; today's budget is 6 calls, 2 a record.
    events = burst(cli_new=1, inv_5h=5, cli_2h=2, pay_1h=1, inv_9h=9, cli_3h=3, inv_7h=7)

    # When: the sync handles the batch.
    landed, queue = with_day_budget(6, events)

    # Then: the payment and the two oldest changes landed; the rest wait for the reset and come
    # back after it oldest first.
    assert landed == ["pay_1h", "inv_9h", "inv_7h"]
    assert return_order(queue) == ["inv_5h", "cli_3h", "cli_2h", "cli_new"]
    assert min(queue.delayed.values()) > RESET_IN


KINDS: dict[str, Kind] = {
    "pay_newest": "create_payments",
    "cli_new": "save_contacts",
    "inv_6h": "create_invoices",
    "upd_2h": "save_invoices",
    "look_4h": "lookup",
}
HOURS_AGO = {"pay_newest": 0.1, "cli_new": 0.5, "inv_6h": 6, "upd_2h": 2, "look_4h": 4}


def test_given_budget_for_3_of_5_gathered_calls_when_flushed_then_payments_and_the_oldest_go() -> None:
    # Given: a gathered batch whose five groups each want one kind of call, and three calls left.
    budget, sent, queue = DayBudget(3), [], Queue()
    gather = CallGather(max_wait_seconds=10)

    def send(kind: Kind, items: list[Any], key: str | None, option: bool) -> list[Any]:
        budget.take()
        sent.append(kind)
        return items

    def apply(e: SyncEvent) -> Mapping[str, object]:
        element = SimpleNamespace(ContactID=None, Name=e.record_id)  # as a new contact would be
        gather.call(KINDS[e.record_id], [element], None, send=send)
        return {"record_type": e.record_type, "action": "created"}

    kind_of = {"pay_newest": RecordType.PAYMENT, "cli_new": RecordType.CLIENT}
    events = [event(r, kind_of.get(r, RecordType.INVOICE), HOURS_AGO[r], r) for r in KINDS]

    # When: they are handled as one gathered batch.
    GatheredBatch(delivery(apply, queue), gather, queue).handle({"Records": sqs_records(queued(events))})

    # Then: the payment's call and the two oldest changes' calls went; the others wait, oldest first.
    assert sent == ["create_payments", "create_invoices", "lookup"]
    assert return_order(queue) == ["upd_2h", "cli_new"]
    assert min(queue.delayed.values()) > RESET_IN


def test_given_a_minute_limit_when_records_wait_then_they_are_not_staggered() -> None:
    queue = Queue()

    def apply(e: SyncEvent) -> Mapping[str, object]:
        raise XeroRateLimited(20, "minute")

    one_record_at_a_time(delivery(apply, queue), queued([event("cli_1", RecordType.CLIENT, 1, "a")]))

    assert queue.delayed == {"r_cli_1": 21}


# -- (2) one client's own events ---------------------------------------------------------------


def test_given_a_client_whose_later_events_outrank_its_first_when_ordered_then_its_own_order_is_kept() -> (
    None
):
    # Given: client a's contact change (newest), then its invoice, then a payment on it; client b's
    # older change; client c's payment.
    events = burst(cli_a=1, inv_a=0.5, pay_a=0.1, cli_b=8, pay_c=3)

    ordered = [e.record_id for e in in_rank_order(events, lambda e: e.group_id, rank)]

    # Then: across clients by rank of each client's next event; client a's in its queue order.
    assert ordered == ["pay_c", "cli_b", "cli_a", "inv_a", "pay_a"]


def test_given_a_clients_3_events_when_the_budget_ends_on_its_first_then_its_payment_waits_too() -> None:
    # Given: client a's contact, invoice and payment (the payment outranks everything), client b's
    # older change, and budget for one record.
    events = burst(cli_a=1, inv_a=0.5, pay_a=0.1, cli_b=8)

    landed, queue = with_day_budget(2, events)

    # Then: the older change landed; client a's payment did not jump its contact and invoice: all
    # three wait and come back together, behind their group's head.
    assert landed == ["cli_b"]
    assert len({queue.delayed[f"r_{r}"] for r in ("cli_a", "inv_a", "pay_a")}) == 1


# -- (3) after the reset -----------------------------------------------------------------------

RESET = datetime(2026, 11, 28, tzinfo=UTC).timestamp()


def test_given_records_kept_at_any_time_when_the_day_resets_then_payments_then_oldest_come_back() -> None:
    # Given: records waiting for the reset, each told so at a different time of the day (one 15 h
    # before it, beyond SQS's 12-hour cap), their changes from two days to minutes before the reset.
    def changed(hours_before_reset: float) -> float:
        return RESET - hours_before_reset * HOUR

    waiting = {
        "pay_late": ((0, changed(0.2)), 9 * HOUR),
        "pay_early": ((0, changed(20)), 1 * HOUR),
        "chg_2d": ((1, changed(48)), 15 * HOUR),
        "chg_30h": ((1, changed(30)), 0.1 * HOUR),
        "chg_20h": ((1, changed(20)), 3 * HOUR),
        "chg_20h2m": ((1, changed(20 - 2 / 60)), 11 * HOUR),
        "chg_5m": ((1, changed(5 / 60)), 60.0),
    }
    reset = DayReset(RESET)

    # When: each is kept for its delay, and kept again whenever it comes back before the reset.
    back: dict[str, float] = {}
    for name, (value, told_before_reset) in waiting.items():
        now = RESET - told_before_reset
        while now < RESET:
            now += reset.delay_for(value, now, MAX_DELAY)
        back[name] = now

    # Then: after the reset, payments first, then the changes oldest first, all within the stagger
    # window; the two over a day old together at its start.
    assert sorted(back, key=lambda n: back[n]) == [
        "pay_early", "pay_late", "chg_2d", "chg_30h", "chg_20h", "chg_20h2m", "chg_5m"
    ]  # fmt: skip
    assert back["chg_2d"] == back["chg_30h"] and back["chg_20h2m"] - back["chg_20h"] == 1
    assert all(RESET < t <= RESET + STAGGER_SECONDS + 2 for t in back.values())


def test_given_a_turn_beyond_the_max_delay_when_kept_then_it_comes_back_before_the_reset() -> None:
    reset = DayReset(RESET)
    newest = (1, RESET - 60.0)

    assert reset.delay_for(newest, RESET - 5 * HOUR, 8) == 8  # the sandbox's short waits, unchanged
    assert reset.delay_for(newest, RESET - 100, MAX_DELAY) == 101 + STAGGER_SECONDS - 1
    assert reset.delay_for(newest, RESET - 100, 300) == 99  # cannot reach its turn: back before the reset


def test_given_a_xero_day_429_when_classified_then_it_waits_for_the_day_reset_and_a_minute_one_does_not() -> (
    None
):
    now = time.time()

    assert DayReset.of(XeroRateLimited(600, "Day"), now) == DayReset(now + 600)
    assert DayReset.of(BudgetExhausted(600, "budget-day"), now) == DayReset(now + 600)
    assert DayReset.of(BudgetExhausted(30, "budget-minute"), now) is None
    assert DayReset.of(XeroRateLimited(30, "minute"), now) is None


def test_given_records_kept_in_a_fifo_queue_for_the_reset_when_it_comes_then_they_land_payments_then_oldest(
    aws_each: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given: the stagger compressed to one second per two hours of change time (a payment band of
    # 2 s), a FIFO queue (moto's) holding five clients' events sent in no order of age, and today's
    # budget spent until two seconds from now. (One client's events are left to the tests above:
    # moto hands out a group's second message before its first when both become visible in the
    # same instant, which SQS does not.)
    monkeypatch.setattr(burst_order, "CHANGE_SECONDS_PER_SECOND", 7_200)
    monkeypatch.setattr(burst_order, "PAYMENT_BAND_SECONDS", 2)
    url = aws.client("sqs").create_queue(QueueName="sync.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    events = burst(inv_a=10, cli_c=14, pay_d=6, inv_e=18, cli_b=22)
    for e in events:
        aws.client("sqs").send_message(
            QueueUrl=url,
            MessageBody=e.model_dump_json(),
            MessageGroupId=e.group_id,
            MessageDeduplicationId=e.event_id,
        )
    reset_at, landed = time.time() + 2, []

    def apply(e: SyncEvent) -> Mapping[str, object]:
        if time.time() < reset_at:
            raise BudgetExhausted(reset_at - time.time(), "budget-day")
        landed.append(e.record_id)
        return {"record_type": e.record_type, "action": "created"}

    sync = delivery(apply, SqsEventQueue(url))

    # When: the sync receives what is ready, one message a batch (so they are told to wait in queue
    # order, not in rank order), over and over, until everything has landed.
    deadline = time.monotonic() + 40
    while len(landed) < len(events) and time.monotonic() < deadline:
        got = (
            aws.client("sqs")
            .receive_message(
                QueueUrl=url, MaxNumberOfMessages=1, MessageSystemAttributeNames=["MessageGroupId"]
            )
            .get("Messages", [])
        )
        messages = [
            QueuedMessage(m["MessageId"], m["Body"], m["ReceiptHandle"], 1, m["Attributes"]["MessageGroupId"])
            for m in got
        ]
        if not messages:
            time.sleep(0.2)
            continue
        before = set(landed)
        one_record_at_a_time(sync, messages)
        for m in messages:
            if SyncEvent.model_validate_json(m.body).record_id in set(landed) - before:
                aws.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=m.receipt_handle)
        time.sleep(0.2)

    # Then: after the reset the payment first, then the changes oldest first.
    assert landed == ["pay_d", "cli_b", "inv_e", "cli_c", "inv_a"]
