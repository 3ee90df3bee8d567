"""Token handling against a fake Xero token endpoint (rotating single-use refresh tokens), with
Secrets Manager and the DynamoDB lease lock from moto."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from shared import aws
from shared.oauth import (
    AuthorisationLost,
    ClientCredentials,
    ClientCredentialsTokenProvider,
    InMemoryTokenStore,
    RefreshingTokenProvider,
    RefreshOutcome,
    SecretTokenStore,
    TokenSet,
    TokenStoreError,
    read_client_credentials,
)
from shared.store.locks import DynamoLeaseLock
from tests.unit.xero_fakes import (
    CLIENT_ID,
    CLIENT_SECRET,
    STATE_TABLE,
    TOKEN_URL,
    FakeClock,
    FakeXero,
    fresh_state_table,
    moto_aws,
)

TOKEN_SECRET = "xero/token-set"
CLIENT_SECRET_ID = "xero/client"
CREDENTIALS = ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)


@pytest.fixture(scope="module")
def aws_module() -> Iterator[None]:
    with moto_aws():
        yield


@pytest.fixture
def aws_mock(aws_module: None) -> None:
    fresh_state_table()
    sm = aws.client("secretsmanager")
    for name in (TOKEN_SECRET, CLIENT_SECRET_ID):
        with contextlib.suppress(sm.exceptions.ResourceNotFoundException):
            sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    sm.create_secret(Name=TOKEN_SECRET)
    sm.create_secret(
        Name=CLIENT_SECRET_ID,
        SecretString=f'{{"client_id":"{CLIENT_ID}","client_secret":"{CLIENT_SECRET}"}}',
    )


def _seed(
    fake: FakeXero, clock: FakeClock, store: SecretTokenStore | InMemoryTokenStore, expires_in: float
) -> TokenSet:
    issued = fake.issue()
    tokens = TokenSet(
        access_token=issued["access_token"],
        refresh_token=issued["refresh_token"],
        expires_at=datetime.fromtimestamp(clock.time(), tz=UTC) + timedelta(seconds=expires_in),
        scope=issued["scope"],
        tenant_id="tenant-1",
        extra={"tenant_name": "Demo"},
    )
    store.save(tokens)
    return tokens


def _provider(
    fake: FakeXero,
    clock: FakeClock,
    store: SecretTokenStore | InMemoryTokenStore,
    outcomes: list[RefreshOutcome] | None = None,
    ddb: Any | None = None,
) -> RefreshingTokenProvider:
    return RefreshingTokenProvider(
        TOKEN_URL,
        CREDENTIALS,
        store,
        DynamoLeaseLock(
            STATE_TABLE, "xero-token", lease_seconds=20, poll_seconds=0.01, max_poll_seconds=0.05, client=ddb
        ),
        clock=clock.time,
        http=httpx.Client(transport=fake.transport()),
        sleep=clock.sleep,
        on_refresh=outcomes.append if outcomes is not None else None,
    )


def test_given_ten_workers_sharing_an_expiring_token_set_when_all_need_a_token_then_exactly_one_refresh(
    aws_mock: None,
) -> None:
    clock = FakeClock()
    # No grace period: a second refresh with the same token would be an invalid_grant.
    fake = FakeXero(clock, grace_seconds=0, token_latency=0.05)
    _seed(fake, clock, SecretTokenStore(TOKEN_SECRET), expires_in=60)  # inside the 2-minute margin
    start = threading.Barrier(10)
    tokens: list[str] = []
    errors: list[BaseException] = []

    # boto3 clients are thread-safe and slow to create: share one of each (made by shared.aws).
    sm, ddb = aws.client("secretsmanager"), aws.client("dynamodb")

    def worker() -> None:
        # Each thread is a separate "Lambda": its own provider (cache), store and lock instance
        # with its own owner id; they meet only in Secrets Manager and DynamoDB.
        provider = _provider(fake, clock, SecretTokenStore(TOKEN_SECRET, client=sm), ddb=ddb)
        start.wait()
        try:
            tokens.append(provider.access_token())
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert fake.refresh_calls == 1
    assert fake.invalid_grants == 0
    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None
    assert set(tokens) == {stored.access_token}


def test_given_fresh_token_when_called_repeatedly_then_store_is_read_once_and_no_refresh(
    aws_mock: None,
) -> None:
    clock = FakeClock()
    fake = FakeXero(clock)
    seeded = _seed(fake, clock, SecretTokenStore(TOKEN_SECRET), expires_in=1_800)
    reads = {"n": 0}

    class CountingStore(SecretTokenStore):
        def load(self) -> TokenSet | None:
            reads["n"] += 1
            return super().load()

    provider = _provider(fake, clock, CountingStore(TOKEN_SECRET))

    got = [provider.access_token() for _ in range(5)]

    assert got == [seeded.access_token] * 5
    assert reads["n"] == 1
    assert fake.refresh_calls == 0


def test_given_refresh_when_new_token_reaches_the_api_then_it_was_already_persisted(aws_mock: None) -> None:
    clock = FakeClock()
    fake = FakeXero(clock)
    seeded = _seed(fake, clock, SecretTokenStore(TOKEN_SECRET), expires_in=30)
    provider = _provider(fake, clock, SecretTokenStore(TOKEN_SECRET))

    token = provider.access_token()
    # "Crash" here: the process dies before using the token. A new worker must find it stored.
    stored = SecretTokenStore(TOKEN_SECRET).load()

    assert stored is not None
    assert stored.access_token == token != seeded.access_token
    assert stored.refresh_token != seeded.refresh_token  # the rotated one
    assert stored.tenant_id == "tenant-1" and stored.extra == {"tenant_name": "Demo"}
    successor = _provider(fake, clock, SecretTokenStore(TOKEN_SECRET))
    assert successor.access_token() == token
    assert fake.refresh_calls == 1


def test_given_store_write_fails_when_refreshing_then_token_is_not_used_and_next_worker_recovers(
    aws_mock: None,
) -> None:
    clock = FakeClock()
    fake = FakeXero(clock)  # Xero's 30-minute grace for the previous refresh token
    _seed(fake, clock, SecretTokenStore(TOKEN_SECRET), expires_in=30)

    class BrokenStore(SecretTokenStore):
        def save(self, tokens: TokenSet) -> None:
            raise RuntimeError("Secrets Manager unavailable")

    with pytest.raises(RuntimeError):
        _provider(fake, clock, BrokenStore(TOKEN_SECRET)).access_token()

    clock.advance(60)
    recovered = _provider(fake, clock, SecretTokenStore(TOKEN_SECRET)).access_token()
    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None and stored.access_token == recovered
    assert fake.invalid_grants == 0
    assert fake.refresh_calls == 2


def test_given_lost_refresh_response_when_retrying_then_same_refresh_token_works_within_grace(
    aws_mock: None,
) -> None:
    clock = FakeClock()
    fake = FakeXero(clock)
    seeded = _seed(fake, clock, SecretTokenStore(TOKEN_SECRET), expires_in=30)
    fake.token_faults = ["lost"]
    seen: list[str] = []
    original = fake.handle

    def spy(request: httpx.Request) -> httpx.Response:
        seen.append(request.content.decode())
        return original(request)

    fake.handle = spy  # type: ignore[method-assign]
    outcomes: list[RefreshOutcome] = []

    token = _provider(fake, clock, SecretTokenStore(TOKEN_SECRET), outcomes).access_token()

    assert fake.refresh_calls == 2
    assert all(f"refresh_token={seeded.refresh_token}" in body for body in seen)
    assert fake.invalid_grants == 0
    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None and stored.access_token == token
    assert outcomes == ["refreshed"]


def test_given_revoked_refresh_token_when_refreshing_then_authorisation_lost_without_secrets_in_message(
    aws_mock: None, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    fake = FakeXero(clock)
    seeded = _seed(fake, clock, SecretTokenStore(TOKEN_SECRET), expires_in=30)
    fake.refresh_tokens.clear()  # e.g. unused for 60 days, or the user disconnected the app
    outcomes: list[RefreshOutcome] = []

    with caplog.at_level(logging.DEBUG, logger="shared"), pytest.raises(AuthorisationLost) as caught:
        _provider(fake, clock, SecretTokenStore(TOKEN_SECRET), outcomes).access_token()

    error = caught.value
    assert error.transient is False
    assert error.error_code == "invalid_grant"
    assert "connect xero" in str(error)
    for secret in (seeded.access_token, seeded.refresh_token or "", CLIENT_SECRET):
        assert secret not in str(error)
        assert secret not in caplog.text
    assert outcomes == ["authorisation_lost"]
    # The lock was released despite the failure.
    assert aws.client("dynamodb").scan(TableName=STATE_TABLE)["Count"] == 0


def test_given_api_rejected_token_when_force_refresh_then_a_different_token_is_returned(
    aws_mock: None,
) -> None:
    clock = FakeClock()
    fake = FakeXero(clock)
    seeded = _seed(fake, clock, SecretTokenStore(TOKEN_SECRET), expires_in=1_800)
    provider = _provider(fake, clock, SecretTokenStore(TOKEN_SECRET))
    assert provider.access_token() == seeded.access_token

    renewed = provider.force_refresh(seeded.access_token)

    assert renewed != seeded.access_token
    assert fake.refresh_calls == 1
    # A second worker holding the same stale token reuses the first one's refresh.
    other = _provider(fake, clock, SecretTokenStore(TOKEN_SECRET))
    assert other.force_refresh(seeded.access_token) == renewed
    assert fake.refresh_calls == 1


def test_given_nothing_stored_when_token_needed_then_authorisation_lost(aws_mock: None) -> None:
    clock = FakeClock()
    provider = _provider(FakeXero(clock), clock, SecretTokenStore(TOKEN_SECRET))

    with pytest.raises(AuthorisationLost, match="no token set stored"):
        provider.access_token()


def test_given_token_endpoint_down_when_refreshing_then_transient_failure_after_bounded_retries(
    aws_mock: None,
) -> None:
    from shared.oauth import TokenRefreshFailed

    clock = FakeClock()
    fake = FakeXero(clock)
    _seed(fake, clock, SecretTokenStore(TOKEN_SECRET), expires_in=30)
    fake.token_faults = ["503", "timeout", "503"]

    with pytest.raises(TokenRefreshFailed) as caught:
        _provider(fake, clock, SecretTokenStore(TOKEN_SECRET)).access_token()

    assert caught.value.transient is True
    assert len(clock.sleeps) == 2 and all(0 <= s <= 4 for s in clock.sleeps)


def test_given_corrupt_secret_when_loading_then_error_names_fields_not_values(aws_mock: None) -> None:
    aws.client("secretsmanager").put_secret_value(
        SecretId=TOKEN_SECRET, SecretString='{"access_token": "leaky-token-value", "expires_at": "soon"}'
    )

    with pytest.raises(TokenStoreError) as caught:
        SecretTokenStore(TOKEN_SECRET).load()

    assert "expires_at" in str(caught.value)
    assert "leaky-token-value" not in str(caught.value)
    assert "leaky-token-value" not in repr(
        TokenSet(access_token="leaky-token-value", expires_at=datetime.now(UTC))
    )


def test_given_credentials_secret_when_read_then_client_id_and_secret_are_parsed(aws_mock: None) -> None:
    creds = read_client_credentials(CLIENT_SECRET_ID)

    assert creds == CREDENTIALS
    assert CLIENT_SECRET not in repr(creds)


def test_given_custom_connection_when_tokens_needed_then_grant_is_cached_until_expiry() -> None:
    clock = FakeClock()
    fake = FakeXero(clock)
    cache = InMemoryTokenStore()
    provider = ClientCredentialsTokenProvider(
        TOKEN_URL,
        CREDENTIALS,
        cache,
        clock=clock.time,
        scopes=["accounting.contacts"],
        tenant_id="tenant-cc",
        http=httpx.Client(transport=fake.transport()),
        sleep=clock.sleep,
    )

    first = provider.access_token()
    again = provider.access_token()
    clock.advance(1_800 - 60)  # inside the refresh margin
    later = provider.access_token()

    assert first == again != later
    assert fake.client_credentials_calls == 2
    stored = cache.load()
    assert stored is not None and stored.refresh_token is None and stored.tenant_id == "tenant-cc"
    assert provider.force_refresh(later) != later
    assert fake.client_credentials_calls == 3


def test_given_wrong_client_secret_when_client_credentials_grant_then_authorisation_lost() -> None:
    clock = FakeClock()
    fake = FakeXero(clock)
    provider = ClientCredentialsTokenProvider(
        TOKEN_URL,
        ClientCredentials(client_id=CLIENT_ID, client_secret="wrong"),
        clock=clock.time,
        http=httpx.Client(transport=fake.transport()),
    )

    with pytest.raises(AuthorisationLost) as caught:
        provider.access_token()

    assert caught.value.error_code == "invalid_client"
    assert "wrong" not in str(caught.value)


def test_given_secret_with_credentials_only_when_loaded_then_not_connected_and_save_keeps_them(
    aws_mock: None,
) -> None:
    # Ignition's secret holds the client credentials and, once connected, the rotating token set.
    sm = aws.client("secretsmanager")
    sm.put_secret_value(SecretId=TOKEN_SECRET, SecretString=CREDENTIALS.model_dump_json())
    store = SecretTokenStore(TOKEN_SECRET, provider="ignition")

    assert store.load() is None
    store.save(TokenSet(access_token="a1", refresh_token="r1", expires_at=datetime.now(UTC)))

    assert read_client_credentials(TOKEN_SECRET) == CREDENTIALS
    loaded = store.load()
    assert loaded is not None and (loaded.access_token, loaded.refresh_token) == ("a1", "r1")
