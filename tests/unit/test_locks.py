"""DynamoLeaseLock against moto's DynamoDB: mutual exclusion, lease expiry, owner-only release."""

from __future__ import annotations

import logging
import threading

import pytest

from shared import aws
from shared.store.locks import DynamoLeaseLock, LockTimeout
from tests.fakes import ManualClock
from tests.unit.moto_env import STATE_TABLE, lease_lock


def _item(name: str) -> dict[str, dict[str, str]] | None:
    got = aws.client("dynamodb").get_item(
        TableName=STATE_TABLE, Key={"pk": {"S": f"lock#{name}"}, "sk": {"S": "lock"}}
    )
    item: dict[str, dict[str, str]] | None = got.get("Item")
    return item


def test_given_free_lock_when_acquired_then_item_records_owner_lease_and_ttl(state_table: str) -> None:
    clock = ManualClock()
    lock = DynamoLeaseLock(STATE_TABLE, "xero-token", lease_seconds=30, owner="worker-a", clock=clock.time)

    lock.acquire(timeout=1)

    item = _item("xero-token")
    assert item is not None
    assert item["owner"] == {"S": "worker-a"}
    assert float(item["lease_until"]["N"]) == pytest.approx(clock.time() + 30)
    assert int(item["expires_at"]["N"]) >= clock.time() + 30
    lock.release()
    assert _item("xero-token") is None


def test_given_held_lock_when_another_worker_acquires_then_it_times_out(state_table: str) -> None:
    clock = ManualClock()
    holder, other = lease_lock("x", clock, owner="a"), lease_lock("x", clock, owner="b")
    holder.acquire()

    with pytest.raises(LockTimeout) as caught:
        other.acquire(timeout=5)

    assert caught.value.transient is True
    assert _item("x") is not None and _item("x")["owner"]["S"] == "a"  # type: ignore[index]
    assert sum(clock.sleeps) <= 5.0 + 1e-6  # waited no longer than asked


def test_given_expired_lease_when_another_worker_acquires_then_it_takes_over_and_old_release_is_harmless(
    state_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock()
    crashed = DynamoLeaseLock(STATE_TABLE, "x", lease_seconds=10, owner="a", clock=clock.time)
    successor = DynamoLeaseLock(STATE_TABLE, "x", lease_seconds=10, owner="b", clock=clock.time)
    crashed.acquire()
    clock.advance(11)

    successor.acquire(timeout=0)
    # Listen on the lock's own logger: a handler module imported earlier in this process
    # (Powertools' copy_config_to_registered_loggers) stops shared.* loggers propagating to root.
    lock_logger = logging.getLogger("shared.store.locks")
    lock_logger.addHandler(caplog.handler)
    try:
        with caplog.at_level(logging.WARNING, logger="shared.store.locks"):
            crashed.release()  # late release must not free the successor's lock
    finally:
        lock_logger.removeHandler(caplog.handler)

    item = _item("x")
    assert item is not None and item["owner"]["S"] == "b"
    assert "lease lock lost" in caplog.text
    successor.release()


def test_given_context_manager_when_block_raises_then_lock_is_released(state_table: str) -> None:
    lock = DynamoLeaseLock(STATE_TABLE, "ctx", lease_seconds=30)

    with pytest.raises(RuntimeError), lock:
        raise RuntimeError("work failed")

    assert _item("ctx") is None


def test_given_threads_sharing_one_lock_instance_when_they_increment_then_no_update_is_lost(
    state_table: str,
) -> None:
    ddb = aws.client("dynamodb")  # thread-safe; creating one per thread is slow
    lock = DynamoLeaseLock(STATE_TABLE, "shared", lease_seconds=30, poll_seconds=0.005, client=ddb)
    other = DynamoLeaseLock(STATE_TABLE, "shared", lease_seconds=30, poll_seconds=0.005, client=ddb)
    counter = {"value": 0}

    def work(instance: DynamoLeaseLock) -> None:
        for _ in range(5):
            with instance:
                current = counter["value"]
                threading.Event().wait(0.001)  # give another thread a chance to interleave
                counter["value"] = current + 1

    threads = [threading.Thread(target=work, args=(lock if i % 2 else other,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert counter["value"] == 20
