"""Token handling against a fake Xero token endpoint (rotating single-use refresh tokens), with
Secrets Manager and the DynamoDB lease lock from moto."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from sandbox.xero_emulator.oauth import OAuthError as EmulatorOAuthError
from sandbox.xero_emulator.oauth import TokenService
from shared import aws
from shared.oauth import (
    REFRESH_GRACE_SECONDS,
    XERO_TOKEN_LOCK,
    AuthorisationLost,
    ClientCredentials,
    ClientCredentialsTokenProvider,
    DynamoRefreshJournal,
    InMemoryTokenStore,
    RefreshingTokenProvider,
    RefreshOutcome,
    SecretTokenStore,
    TokenSet,
    TokenStoreError,
    read_client_credentials,
    save_under_lease,
)
from shared.store.locks import DynamoLeaseLock, LeaseLost
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
            STATE_TABLE, "xero-token", lease_seconds=30, poll_seconds=0.01, max_poll_seconds=0.05, client=ddb
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


# --- the fenced lease, against the Xero emulator's rotation rules --------------------------------


class EmulatedTokenEndpoint:
    """Xero's token endpoint as the sandbox emulator models it (``sandbox/xero_emulator/oauth.py``:
    single-use refresh tokens; a replay within 30 minutes hands back the same rotation; a token whose
    rotation was already used is refused). ``before_answer`` runs once, after Xero has rotated and
    before the answer reaches the caller: a slow network or a paused Lambda."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.service = TokenService(CLIENT_ID, CLIENT_SECRET)
        self.before_answer: Callable[[], None] | None = None

    def seed(self, store: SecretTokenStore, expires_in: float) -> TokenSet:
        issued = self.service.issue(
            self.clock.time(),
            frozenset({"offline_access", "accounting.contacts"}),
            "auth-1",
            public_client=False,
        )
        tokens = TokenSet(
            access_token=str(issued["access_token"]),
            refresh_token=str(issued["refresh_token"]),
            expires_at=datetime.fromtimestamp(self.clock.time(), tz=UTC) + timedelta(seconds=expires_in),
            scope=str(issued["scope"]),
            tenant_id="tenant-1",
        )
        store.save(tokens)
        return tokens

    def handle(self, request: httpx.Request) -> httpx.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        try:
            body = self.service.refresh_grant(self.clock.time(), form["refresh_token"], client_secret=True)
        except EmulatorOAuthError as exc:
            return httpx.Response(exc.status, json={"error": exc.error})
        hook, self.before_answer = self.before_answer, None
        if hook is not None:
            hook()
        return httpx.Response(200, json=body)

    def provider(self, store: SecretTokenStore, *, lease_seconds: float = 30) -> RefreshingTokenProvider:
        return RefreshingTokenProvider(
            TOKEN_URL,
            CREDENTIALS,
            store,
            DynamoLeaseLock(
                STATE_TABLE,
                XERO_TOKEN_LOCK,
                lease_seconds=lease_seconds,
                clock=self.clock.time,
                sleep=self.clock.sleep,
            ),
            clock=self.clock.time,
            journal=DynamoRefreshJournal(STATE_TABLE, XERO_TOKEN_LOCK),
            http=httpx.Client(transport=httpx.MockTransport(self.handle)),
            sleep=self.clock.sleep,
        )


def test_given_lease_expires_mid_refresh_when_late_answer_arrives_then_save_refused_and_winners_tokens_used(
    aws_mock: None,
) -> None:
    clock = FakeClock()
    xero = EmulatedTokenEndpoint(clock)
    xero.seed(SecretTokenStore(TOKEN_SECRET), expires_in=60)
    winner: dict[str, str] = {}

    def meanwhile() -> None:
        # The slow worker's lease runs out; another takes the lock over and refreshes from the
        # stored (old) refresh token (a grace replay), then a third rotates once more on a 401.
        clock.advance(120)
        first = xero.provider(SecretTokenStore(TOKEN_SECRET)).access_token()
        winner["access"] = xero.provider(SecretTokenStore(TOKEN_SECRET)).force_refresh(first)
        stored = SecretTokenStore(TOKEN_SECRET).load()
        assert stored is not None and stored.refresh_token
        winner["refresh"] = stored.refresh_token

    xero.before_answer = meanwhile
    late = xero.provider(SecretTokenStore(TOKEN_SECRET)).access_token()

    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None
    assert stored.refresh_token == winner["refresh"]  # the late save did not put back a spent token
    assert late == winner["access"]
    # A quiet night, then the next caller refreshes from what is stored: no invalid_grant.
    clock.advance(8 * 3600)
    assert xero.provider(SecretTokenStore(TOKEN_SECRET)).access_token()
    assert xero.service.counters.invalid_grants == 0


def test_given_a_lease_held_by_nobody_any_more_when_extended_then_lease_lost(aws_mock: None) -> None:
    clock = FakeClock()
    slow = DynamoLeaseLock(
        STATE_TABLE, "x", lease_seconds=10, owner="slow", clock=clock.time, sleep=clock.sleep
    )
    other = DynamoLeaseLock(
        STATE_TABLE, "x", lease_seconds=10, owner="other", clock=clock.time, sleep=clock.sleep
    )
    slow.acquire()
    slow.extend(10)  # still ours
    clock.advance(11)

    with pytest.raises(LeaseLost):
        slow.extend(10)  # expired, even before anyone took it over
    other.acquire()
    with pytest.raises(LeaseLost):
        slow.extend(10)
    other.release()
    slow.release()


def test_given_a_lock_lease_shorter_than_the_worst_case_token_call_when_built_then_refused(
    aws_mock: None,
) -> None:
    clock = FakeClock()
    # 5 s x 3 attempts + backoff + store time is over 20 s: a 10 s lease would run out mid-refresh.
    with pytest.raises(ValueError, match="shorter than the worst-case token call"):
        EmulatedTokenEndpoint(clock).provider(SecretTokenStore(TOKEN_SECRET), lease_seconds=10)


class _FailingSaveStore(SecretTokenStore):
    def save(self, tokens: TokenSet) -> None:
        raise RuntimeError("Secrets Manager unavailable")


def test_given_refresh_whose_save_failed_when_next_caller_comes_within_grace_then_it_recovers_that_rotation(
    aws_mock: None,
) -> None:
    clock = FakeClock()
    xero = EmulatedTokenEndpoint(clock)
    # A 401 forced the refresh although the stored access token still looks valid for 25 minutes.
    seeded = xero.seed(SecretTokenStore(TOKEN_SECRET), expires_in=25 * 60)
    with pytest.raises(RuntimeError):
        xero.provider(_FailingSaveStore(TOKEN_SECRET)).force_refresh(seeded.access_token)
    issued = next(r.successor for r in xero.service.refresh.values() if r.successor)

    clock.advance(10 * 60)
    token = xero.provider(SecretTokenStore(TOKEN_SECRET)).access_token()

    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None and stored.access_token == token != seeded.access_token
    assert stored.refresh_token == issued  # Xero's rotation from the failed refresh, not a fork
    assert DynamoRefreshJournal(STATE_TABLE, XERO_TOKEN_LOCK).load() is None
    assert xero.service.counters.invalid_grants == 0


def test_given_a_refresh_whose_save_failed_when_the_next_caller_comes_after_grace_then_the_error_says_so(
    aws_mock: None,
) -> None:
    clock = FakeClock()
    xero = EmulatedTokenEndpoint(clock)
    xero.seed(SecretTokenStore(TOKEN_SECRET), expires_in=60)
    with pytest.raises(RuntimeError):
        xero.provider(_FailingSaveStore(TOKEN_SECRET)).access_token()
    # Its rotation gets used by nobody; after the grace the stored refresh token is dead.
    clock.advance(REFRESH_GRACE_SECONDS + 60)

    with pytest.raises(AuthorisationLost, match="was never saved and the 30-minute grace"):
        xero.provider(SecretTokenStore(TOKEN_SECRET)).access_token()


def test_given_refresh_holding_the_lease_when_connect_saves_then_it_waits_and_the_refresh_cannot_save(
    aws_mock: None,
) -> None:
    clock = FakeClock()
    refresher = DynamoLeaseLock(
        STATE_TABLE, XERO_TOKEN_LOCK, lease_seconds=30, clock=clock.time, sleep=clock.sleep
    )
    connect = DynamoLeaseLock(
        STATE_TABLE, XERO_TOKEN_LOCK, lease_seconds=30, clock=clock.time, sleep=clock.sleep
    )
    refresher.acquire()
    started = clock.time()
    connected = TokenSet(access_token="a-new", refresh_token="r-new", expires_at=datetime.now(UTC))

    save_under_lease(SecretTokenStore(TOKEN_SECRET), connected, connect)

    assert clock.time() - started >= 30  # it waited out the refresher's lease
    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None and stored.refresh_token == "r-new"
    with pytest.raises(LeaseLost):
        refresher.extend()  # so the refresher's save would be refused
    refresher.release()
