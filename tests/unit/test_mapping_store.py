"""The mapping table against moto's DynamoDB: the one-at-a-time store, the batched reader and the
backfill's bulk writes read and write the same items."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared import aws
from shared.config import RecordType
from shared.store.bulk import put_new_mapping, write_audit_entries
from shared.store.mappings import (
    AuditEntry,
    BatchMappingReader,
    DynamoMappingStore,
    MappingConflict,
    RecordMapping,
    until_processed,
)
from tests.unit.moto_env import STATE_TABLE, fresh_state_table

AT = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)


def mapping(slug: str, xero_id: str, *, created: datetime | None = None) -> RecordMapping:
    source = {"ignition_created_at": created, "ignition_updated_at": AT, "last_event_id": "evt_1"}
    return RecordMapping.model_validate(
        {"record_type": "client", "ignition_id": slug, "xero_id": xero_id, "synced_at": AT, "version": 1}
        | {"match_method": "created", **source}
    )


def test_given_more_mappings_than_one_batch_get_when_read_forward_then_each_mapped_id_is_found_once(
    state_table: None,
) -> None:
    store = DynamoMappingStore(STATE_TABLE)
    for i in range(130):
        store.save(mapping(f"cli_{i}", f"x{i}", created=AT if i % 2 else None), previous=None)
    wanted = [f"cli_{i}" for i in range(130)] + ["cli_0", "cli_unmapped"]

    found = BatchMappingReader(STATE_TABLE).forward(RecordType.CLIENT, wanted)

    assert len(found) == 130 and "cli_unmapped" not in found
    assert found["cli_7"] == store.get(RecordType.CLIENT, "cli_7") == mapping("cli_7", "x7", created=AT)
    assert found["cli_8"] == mapping("cli_8", "x8")


def test_given_mapped_xero_ids_when_read_reverse_then_each_names_its_ignition_record(
    state_table: None,
) -> None:
    put_new_mapping(STATE_TABLE, mapping("cli_a", "xa"))
    put_new_mapping(STATE_TABLE, mapping("cli_b", "xb"))

    owners = BatchMappingReader(STATE_TABLE).reverse(RecordType.CLIENT, ["xa", "xb", "xc"])

    assert owners == {"xa": "cli_a", "xb": "cli_b"}
    assert DynamoMappingStore(STATE_TABLE).owner_of(RecordType.CLIENT, "xb") == "cli_b"


def test_given_a_xero_record_mapped_to_another_client_when_put_new_mapping_then_conflict_and_claim_kept(
    state_table: None,
) -> None:
    DynamoMappingStore(STATE_TABLE).save(mapping("cli_a", "xa"), previous=None)

    with pytest.raises(MappingConflict):
        put_new_mapping(STATE_TABLE, mapping("cli_b", "xa"))

    reader = BatchMappingReader(STATE_TABLE)
    assert reader.reverse(RecordType.CLIENT, ["xa"]) == {"xa": "cli_a"}
    assert reader.forward(RecordType.CLIENT, ["cli_b"]) == {}


def test_given_a_client_mapped_elsewhere_when_put_new_mapping_then_conflict_and_its_new_claim_given_back(
    state_table: None,
) -> None:
    put_new_mapping(STATE_TABLE, mapping("cli_a", "xa"))

    with pytest.raises(MappingConflict):
        put_new_mapping(STATE_TABLE, mapping("cli_a", "xz"))

    reader = BatchMappingReader(STATE_TABLE)
    assert reader.reverse(RecordType.CLIENT, ["xa", "xz"]) == {"xa": "cli_a"}
    assert reader.forward(RecordType.CLIENT, ["cli_a"])["cli_a"].xero_id == "xa"


def test_given_audit_entries_when_written_in_bulk_then_items_equal_the_one_at_a_time_write(
    state_table: None,
) -> None:
    entry = AuditEntry(
        record_type=RecordType.CLIENT, ignition_id="cli_a", event_id="evt_1", action="created", at=AT
    )
    DynamoMappingStore(STATE_TABLE).audit(entry)
    single = aws.client("dynamodb").scan(TableName=STATE_TABLE)["Items"]
    fresh_state_table()

    write_audit_entries(STATE_TABLE, [entry.model_copy(update={"event_id": f"evt_{i}"}) for i in range(30)])

    bulk = aws.client("dynamodb").scan(TableName=STATE_TABLE)["Items"]
    assert len(bulk) == 30
    same = next(item for item in bulk if item["sk"] == single[0]["sk"])
    assert {k: v for k, v in same.items() if k != "expires_at"} == {
        k: v for k, v in single[0].items() if k != "expires_at"
    }


def test_given_dynamodb_leaves_keys_unprocessed_when_batch_sent_then_the_rest_is_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.store.mappings.time.sleep", lambda seconds: None)
    sent: list[dict[str, Any]] = []
    replies: list[dict[str, Any]] = [{"Responses": 1, "UnprocessedKeys": {"t": ["k2"]}}, {"Responses": 2}]
    answers = iter(replies)

    def send(**kwargs: Any) -> dict[str, Any]:
        sent.append(kwargs["RequestItems"])
        return next(answers)

    got = until_processed(send, {"t": ["k1", "k2"]}, leftover="UnprocessedKeys", what="keys unprocessed")

    assert sent == [{"t": ["k1", "k2"]}, {"t": ["k2"]}]
    assert [a["Responses"] for a in got] == [1, 2]


def test_given_dynamodb_keeps_leaving_keys_unprocessed_when_batch_sent_then_it_gives_up_loudly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("shared.store.mappings.time.sleep", lambda seconds: None)

    with pytest.raises(RuntimeError, match="keys unprocessed"):
        until_processed(
            lambda **kwargs: {"UnprocessedKeys": kwargs["RequestItems"]},
            {"t": ["k1"]},
            leftover="UnprocessedKeys",
            what="keys unprocessed",
        )
