"""JSON documents in one state-table item each, against moto: what the backfill's checkpoint, the
poller's cursor and the reconciliation's run items read back, and the item layout deployed tables
already hold (``body`` + the owner's attributes)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from shared import aws
from shared.models.poll import PollState
from shared.reconcile import runs
from shared.reconcile.adapters import DynamoRunStore
from shared.store.checkpoints import Checkpoint, CheckpointStore
from shared.store.poll_state import DynamoPollStateStore

AT = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def item(table: str, pk: str, sk: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = (
        aws.client("dynamodb").get_item(TableName=table, Key={"pk": {"S": pk}, "sk": {"S": sk}}).get("Item")
    )
    return found


def test_given_a_backfill_checkpoint_when_saved_then_it_reads_back_and_clears(state_table: str) -> None:
    store = CheckpointStore(state_table)
    assert store.load() is None

    store.save(Checkpoint(run_id="r1", started_at=AT, updated_at=AT, phases_done=["contacts"]))

    loaded = store.load()
    assert loaded is not None and (loaded.run_id, loaded.phases_done) == ("r1", ["contacts"])
    stored = item(state_table, "backfill#checkpoint", "run")
    assert stored is not None and stored["updated_at"]["S"] == loaded.updated_at.isoformat() != AT.isoformat()
    store.clear()
    assert store.load() is None


def test_given_the_poll_cursor_when_saved_then_it_reads_back_under_the_poll_prefix(state_table: str) -> None:
    store = DynamoPollStateStore(state_table)

    store.save(PollState(runs=3, last_queued=7))

    assert store.load() == PollState(runs=3, last_queued=7)
    stored = item(state_table, "poll#state", "cursor")
    assert stored is not None and set(stored) == {"pk", "sk", "body", "updated_at"}


def test_given_reconcile_checkpoints_and_a_latest_run_when_saved_then_each_reads_back_alone(
    state_table: str,
) -> None:
    store = DynamoRunStore(state_table)
    latest = {
        "run_id": "r1",
        "status": "complete",
        "mode": "full",
        "started_at": AT.isoformat(),
        "finished_at": AT.isoformat(),
        "summary": {"field_drift": 2},
        "report": {"html": "reports/r1.html"},
        "healed": 1,
        "needs_person": 2,
    }

    store.save_checkpoint("full", {"run_id": "r1"})
    store.save_checkpoint("incremental", {"watermark": "w"})
    store.save_latest(latest)
    store.clear_checkpoint("full")

    assert store.load_checkpoint("full") is None
    assert store.load_checkpoint("incremental") == {"watermark": "w"}
    assert store.latest() == latest
    stored = item(state_table, "reconcile#latest", "run")
    assert (
        stored is not None and stored["needs_person"] == {"N": "2"} and stored["status"] == {"S": "complete"}
    )


def test_given_an_on_demand_outcome_when_saved_then_its_ticket_reads_it_and_it_expires(
    state_table: str,
) -> None:
    runs.save_outcome(state_table, "t1", {"status": "complete", "at": AT})

    assert runs.outcome(state_table, "t1") == {"status": "complete", "at": str(AT)}
    assert runs.outcome(state_table, "t2") is None
    stored = item(state_table, "reconcile#ticket", "t1")
    assert stored is not None and int(stored["expires_at"]["N"]) > AT.timestamp()
