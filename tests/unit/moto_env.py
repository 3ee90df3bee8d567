"""moto's in-process AWS for the unit tests, and the state table as the stack defines it. The
fixtures over these are in tests/unit/conftest.py."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber

from shared import aws
from shared.store.locks import DynamoLeaseLock
from tests.fakes import ManualClock

STATE_TABLE = "state-table"


@contextmanager
def moto_aws() -> Iterator[None]:
    """moto's AWS with fake credentials in a fixed region; boto3 clients (slow to create) are made
    once per thread and reused until it ends."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "ap-southeast-2",
            "AWS_REGION": "ap-southeast-2",
        }.items():
            mp.setenv(name, value)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        # In-process moto does not serialise requests, so two threads' conditional writes can
        # both pass their condition. Real DynamoDB applies each write atomically: one request at
        # a time restores that, so the concurrency tests test our code, not moto's race.
        serial = threading.RLock()
        dispatch = BotocoreStubber.__call__

        def atomic(self: BotocoreStubber, *args: Any, **kwargs: Any) -> Any:
            with serial:
                return dispatch(self, *args, **kwargs)

        mp.setattr(BotocoreStubber, "__call__", atomic)
        with mock_aws():
            aws.reset_clients()
            try:
                yield
            finally:
                aws.reset_clients()


def fresh_state_table(name: str = STATE_TABLE) -> None:
    """The state table as the stack defines it (pk S + sk S, TTL on expires_at), emptied; ``name``
    lets a test give each firm a table of its own."""
    ddb = aws.client("dynamodb")
    if name in ddb.list_tables()["TableNames"]:
        ddb.delete_table(TableName=name)
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    ddb.update_time_to_live(
        TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"}
    )


def lease_lock(
    name: str, clock: ManualClock, *, owner: str | None = None, lease_seconds: float = 30
) -> DynamoLeaseLock:
    """A lease lock on the state table that waits and expires on ``clock``."""
    return DynamoLeaseLock(
        STATE_TABLE, name, lease_seconds=lease_seconds, owner=owner, clock=clock.time, sleep=clock.sleep
    )
