"""Token handling against the Xero emulator's token endpoint in-process (tests/xero_double.py:
rotating single-use refresh tokens, 30-minute grace), with Secrets Manager and the DynamoDB lease
lock from moto."""

from __future__ import annotations

import contextlib
import logging
import threading
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import pytest

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
    TokenProviderOptions,
    TokenSet,
    TokenStoreError,
    read_client_credentials,
    save_under_lease,
)
from shared.store.locks import DynamoLeaseLock, LeaseLost
from tests.fakes import ManualClock
from tests.unit.moto_env import STATE_TABLE, lease_lock
from tests.xero_double import CLIENT_ID, CLIENT_SECRET, CREDENTIALS, TOKEN_URL, WireFault, XeroDouble

TOKEN_SECRET = "xero/token-set"
CLIENT_SECRET_ID = "xero/client"


@pytest.fixture
def aws_mock(state_table: str) -> None:
    sm = aws.client("secretsmanager")
    for name in (TOKEN_SECRET, CLIENT_SECRET_ID):
        with contextlib.suppress(sm.exceptions.ResourceNotFoundException):
            sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    sm.create_secret(Name=TOKEN_SECRET)
    sm.create_secret(
        Name=CLIENT_SECRET_ID,
        SecretString=f'{{"client_id":"{CLIENT_ID}","client_secret":"{CLIENT_SECRET}"}}',
    )


@pytest.fixture
def xero() -> XeroDouble:
    return XeroDouble()


def _seed(xero: XeroDouble, store: SecretTokenStore, expires_in: float) -> TokenSet:
    """A connected organisation's token set, whose access token the store says lasts ``expires_in``."""
    tokens = xero.token_set(
        expires_at=xero.clock.now() + timedelta(seconds=expires_in),
        tenant_id="tenant-1",
        extra={"tenant_name": "Demo"},
    )
    store.save(tokens)
    return tokens


def _provider(
    xero: XeroDouble,
    store: SecretTokenStore,
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
        xero.token_options(on_refresh=outcomes.append if outcomes is not None else None),
    )


def _grants(xero: XeroDouble, grant_type: str) -> list[dict[str, str]]:
    forms = [{k: v[0] for k, v in parse_qs(r.content.decode()).items()} for r in xero.token_requests()]
    return [form for form in forms if form.get("grant_type") == grant_type]


def test_given_ten_workers_sharing_an_expiring_token_set_when_all_need_a_token_then_exactly_one_refresh(
    aws_mock: None,
    xero: XeroDouble,
) -> None:
    xero.token_latency = 0.05  # a slow token endpoint widens the race
    _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=60)  # inside the 2-minute margin
    start = threading.Barrier(10)
    tokens: list[str] = []
    errors: list[BaseException] = []

    # boto3 clients are thread-safe and slow to create: share one of each (made by shared.aws).
    sm, ddb = aws.client("secretsmanager"), aws.client("dynamodb")

    def worker() -> None:
        # Each thread is a separate "Lambda": its own provider (cache), store and lock instance
        # with its own owner id; they meet only in Secrets Manager and DynamoDB.
        provider = _provider(xero, SecretTokenStore(TOKEN_SECRET, client=sm), ddb=ddb)
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
    # A second refresh with the same token would be a grace replay at Xero: counted, so caught.
    assert xero.refreshes == 1
    assert xero.invalid_grants == 0
    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None
    assert set(tokens) == {stored.access_token}


def test_given_fresh_token_when_called_repeatedly_then_store_is_read_once_and_no_refresh(
    aws_mock: None,
    xero: XeroDouble,
) -> None:
    seeded = _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=1_800)
    reads = {"n": 0}

    class CountingStore(SecretTokenStore):
        def load(self) -> TokenSet | None:
            reads["n"] += 1
            return super().load()

    provider = _provider(xero, CountingStore(TOKEN_SECRET))

    got = [provider.access_token() for _ in range(5)]

    assert got == [seeded.access_token] * 5
    assert reads["n"] == 1
    assert xero.refreshes == 0


def test_given_refresh_when_new_token_reaches_the_api_then_it_was_already_persisted(
    aws_mock: None, xero: XeroDouble
) -> None:
    seeded = _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=30)
    provider = _provider(xero, SecretTokenStore(TOKEN_SECRET))

    token = provider.access_token()
    # "Crash" here: the process dies before using the token. A new worker must find it stored.
    stored = SecretTokenStore(TOKEN_SECRET).load()

    assert stored is not None
    assert stored.access_token == token != seeded.access_token
    assert stored.refresh_token != seeded.refresh_token  # the rotated one
    assert stored.tenant_id == "tenant-1" and stored.extra == {"tenant_name": "Demo"}
    successor = _provider(xero, SecretTokenStore(TOKEN_SECRET))
    assert successor.access_token() == token
    assert xero.refreshes == 1


def test_given_store_write_fails_when_refreshing_then_token_is_not_used_and_next_worker_recovers(
    aws_mock: None,
    xero: XeroDouble,
) -> None:
    _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=30)  # Xero's 30-minute grace applies

    class BrokenStore(SecretTokenStore):
        def save(self, tokens: TokenSet) -> None:
            raise RuntimeError("Secrets Manager unavailable")

    with pytest.raises(RuntimeError):
        _provider(xero, BrokenStore(TOKEN_SECRET)).access_token()

    xero.clock.advance(60)
    recovered = _provider(xero, SecretTokenStore(TOKEN_SECRET)).access_token()
    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None and stored.access_token == recovered
    assert xero.invalid_grants == 0
    assert xero.refreshes == 2


def test_given_lost_refresh_response_when_retrying_then_same_refresh_token_works_within_grace(
    aws_mock: None,
    xero: XeroDouble,
) -> None:
    seeded = _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=30)
    xero.wire_faults.append(WireFault("lost", token_endpoint=True))
    outcomes: list[RefreshOutcome] = []

    token = _provider(xero, SecretTokenStore(TOKEN_SECRET), outcomes).access_token()

    assert xero.refreshes == 2
    assert [g["refresh_token"] for g in _grants(xero, "refresh_token")] == [seeded.refresh_token] * 2
    assert xero.invalid_grants == 0
    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None and stored.access_token == token
    assert outcomes == ["refreshed"]


def test_given_revoked_refresh_token_when_refreshing_then_authorisation_lost_without_secrets_in_message(
    aws_mock: None, xero: XeroDouble, caplog: pytest.LogCaptureFixture
) -> None:
    seeded = _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=30)
    assert seeded.refresh_token
    xero.revoke(seeded.refresh_token)  # e.g. the user disconnected the app
    outcomes: list[RefreshOutcome] = []

    with caplog.at_level(logging.DEBUG, logger="shared"), pytest.raises(AuthorisationLost) as caught:
        _provider(xero, SecretTokenStore(TOKEN_SECRET), outcomes).access_token()

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
    xero: XeroDouble,
) -> None:
    seeded = _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=1_800)
    provider = _provider(xero, SecretTokenStore(TOKEN_SECRET))
    assert provider.access_token() == seeded.access_token

    renewed = provider.force_refresh(seeded.access_token)

    assert renewed != seeded.access_token
    assert xero.refreshes == 1
    # A second worker holding the same stale token reuses the first one's refresh.
    other = _provider(xero, SecretTokenStore(TOKEN_SECRET))
    assert other.force_refresh(seeded.access_token) == renewed
    assert xero.refreshes == 1


def test_given_nothing_stored_when_token_needed_then_authorisation_lost(
    aws_mock: None, xero: XeroDouble
) -> None:
    provider = _provider(xero, SecretTokenStore(TOKEN_SECRET))

    with pytest.raises(AuthorisationLost, match="no token set stored"):
        provider.access_token()


def test_given_token_endpoint_down_when_refreshing_then_transient_failure_after_bounded_retries(
    aws_mock: None,
    xero: XeroDouble,
) -> None:
    from shared.oauth import TokenRefreshFailed

    _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=30)
    down = WireFault("answer", token_endpoint=True, status=503, body=b"Service Unavailable")
    xero.wire_faults += [down, WireFault("timeout", token_endpoint=True), down]

    with pytest.raises(TokenRefreshFailed) as caught:
        _provider(xero, SecretTokenStore(TOKEN_SECRET)).access_token()

    assert caught.value.transient is True
    assert len(xero.clock.sleeps) == 2 and all(0 <= s <= 4 for s in xero.clock.sleeps)
    assert xero.refreshes == 0


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


def test_given_custom_connection_when_tokens_needed_then_grant_is_cached_until_expiry(
    xero: XeroDouble,
) -> None:
    clock = xero.clock
    cache = InMemoryTokenStore()
    provider = ClientCredentialsTokenProvider(
        TOKEN_URL,
        CREDENTIALS,
        cache,
        xero.token_options(),
        scopes=["accounting.contacts"],
        tenant_id="tenant-cc",
    )

    first = provider.access_token()
    again = provider.access_token()
    clock.advance(1_800 - 60)  # inside the refresh margin
    later = provider.access_token()

    assert first == again != later
    assert len(_grants(xero, "client_credentials")) == 2
    stored = cache.load()
    assert stored is not None and stored.refresh_token is None and stored.tenant_id == "tenant-cc"
    assert provider.force_refresh(later) != later
    assert len(_grants(xero, "client_credentials")) == 3


def test_given_wrong_client_secret_when_client_credentials_grant_then_authorisation_lost(
    xero: XeroDouble,
) -> None:
    provider = ClientCredentialsTokenProvider(
        TOKEN_URL,
        ClientCredentials(client_id=CLIENT_ID, client_secret="wrong"),
        options=TokenProviderOptions(clock=xero.clock.time, http=xero.http()),
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


def _fenced(
    xero: XeroDouble, store: SecretTokenStore, *, lease_seconds: float = 30
) -> RefreshingTokenProvider:
    """A provider under the fenced lease, with the refresh journal, on the double's clock."""
    clock = xero.clock
    return RefreshingTokenProvider(
        TOKEN_URL,
        CREDENTIALS,
        store,
        lease_lock(XERO_TOKEN_LOCK, clock, lease_seconds=lease_seconds),
        xero.token_options(),
        journal=DynamoRefreshJournal(STATE_TABLE, XERO_TOKEN_LOCK),
    )


def test_given_lease_expires_mid_refresh_when_late_answer_arrives_then_save_refused_and_winners_tokens_used(
    aws_mock: None, xero: XeroDouble
) -> None:
    clock = xero.clock
    _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=60)
    winner: dict[str, str] = {}

    def meanwhile() -> None:
        # The slow worker's lease runs out; another takes the lock over and refreshes from the
        # stored (old) refresh token (a grace replay), then a third rotates once more on a 401.
        clock.advance(120)
        first = _fenced(xero, SecretTokenStore(TOKEN_SECRET)).access_token()
        winner["access"] = _fenced(xero, SecretTokenStore(TOKEN_SECRET)).force_refresh(first)
        stored = SecretTokenStore(TOKEN_SECRET).load()
        assert stored is not None and stored.refresh_token
        winner["refresh"] = stored.refresh_token

    xero.before_token_answer = lambda _answer: meanwhile()  # after Xero rotated, before the answer
    late = _fenced(xero, SecretTokenStore(TOKEN_SECRET)).access_token()

    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None
    assert stored.refresh_token == winner["refresh"]  # the late save did not put back a spent token
    assert late == winner["access"]
    # A quiet night, then the next caller refreshes from what is stored: no invalid_grant.
    clock.advance(8 * 3600)
    assert _fenced(xero, SecretTokenStore(TOKEN_SECRET)).access_token()
    assert xero.invalid_grants == 0


def test_given_a_lease_held_by_nobody_any_more_when_extended_then_lease_lost(aws_mock: None) -> None:
    clock = ManualClock()
    slow = lease_lock("x", clock, owner="slow", lease_seconds=10)
    other = lease_lock("x", clock, owner="other", lease_seconds=10)
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
    aws_mock: None, xero: XeroDouble
) -> None:
    # 5 s x 3 attempts + backoff + store time is over 20 s: a 10 s lease would run out mid-refresh.
    with pytest.raises(ValueError, match="shorter than the worst-case token call"):
        _fenced(xero, SecretTokenStore(TOKEN_SECRET), lease_seconds=10)


class _FailingSaveStore(SecretTokenStore):
    def save(self, tokens: TokenSet) -> None:
        raise RuntimeError("Secrets Manager unavailable")


def test_given_refresh_whose_save_failed_when_next_caller_comes_within_grace_then_it_recovers_that_rotation(
    aws_mock: None, xero: XeroDouble
) -> None:
    # A 401 forced the refresh although the stored access token still looks valid for 25 minutes.
    seeded = _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=25 * 60)
    answers: list[dict[str, Any]] = []
    xero.before_token_answer = lambda answer: answers.append(answer.json())
    with pytest.raises(RuntimeError):
        _fenced(xero, _FailingSaveStore(TOKEN_SECRET)).force_refresh(seeded.access_token)
    issued = answers[0]["refresh_token"]

    xero.clock.advance(10 * 60)
    token = _fenced(xero, SecretTokenStore(TOKEN_SECRET)).access_token()

    stored = SecretTokenStore(TOKEN_SECRET).load()
    assert stored is not None and stored.access_token == token != seeded.access_token
    assert stored.refresh_token == issued  # Xero's rotation from the failed refresh, not a fork
    assert DynamoRefreshJournal(STATE_TABLE, XERO_TOKEN_LOCK).load() is None
    assert xero.invalid_grants == 0


def test_given_a_refresh_whose_save_failed_when_the_next_caller_comes_after_grace_then_the_error_says_so(
    aws_mock: None, xero: XeroDouble
) -> None:
    _seed(xero, SecretTokenStore(TOKEN_SECRET), expires_in=60)
    with pytest.raises(RuntimeError):
        _fenced(xero, _FailingSaveStore(TOKEN_SECRET)).access_token()
    # Its rotation gets used by nobody; after the grace the stored refresh token is dead.
    xero.clock.advance(REFRESH_GRACE_SECONDS + 60)

    with pytest.raises(AuthorisationLost, match="was never saved and the 30-minute grace"):
        _fenced(xero, SecretTokenStore(TOKEN_SECRET)).access_token()


def test_given_refresh_holding_the_lease_when_connect_saves_then_it_waits_and_the_refresh_cannot_save(
    aws_mock: None,
) -> None:
    clock = ManualClock()
    refresher, connect = lease_lock(XERO_TOKEN_LOCK, clock), lease_lock(XERO_TOKEN_LOCK, clock)
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
