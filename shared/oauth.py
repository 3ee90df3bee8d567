"""OAuth 2.0 access tokens for Xero now and Ignition's Reporting API later.

Two grants:

* :class:`RefreshingTokenProvider`: authorization-code connections whose refresh token is single-use
  and rotates on every refresh (Xero; Ignition, 2nd-hand). Two workers refreshing the same token set
  is the classic cause of ``invalid_grant``, so a refresh happens only under a cross-process lease
  lock, re-reads the store after taking it, and persists the new token set *before* anyone uses it.
* :class:`ClientCredentialsTokenProvider`: Xero Custom Connections, no refresh token.

Token sets live as JSON in Secrets Manager (:class:`SecretTokenStore`), written by the CLI's
``connect`` command and rotated here. Decision: Xero's tenant id is a first-class optional field of
:class:`TokenSet` (every Xero call needs it and it belongs to the connection that was authorised);
other provider data (tenant name, id_token claims) goes in ``extra``.

Nothing here logs or raises with a token, a secret or an Authorization header in it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared import aws
from shared.errors import PermanentError, TransientSyncError
from shared.store.locks import LeaseLost

logger = logging.getLogger(__name__)

RefreshOutcome = Literal["refreshed", "failed", "authorisation_lost"]


# --- errors -------------------------------------------------------------------------------------


class OAuthError(Exception):
    """Base for token problems; each one raised is also transient or permanent
    (``shared/errors.py``), which says whether a later retry can succeed."""

    def __init__(self, message: str, *, provider: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.error_code = error_code


class TokenRefreshFailed(OAuthError, TransientSyncError):
    """The token endpoint was unreachable, slow or failing (timeouts, 5xx, 429) through every
    retry. Transient: the stored refresh token is still good (or within Xero's 30-minute grace)."""


class AuthorisationLost(OAuthError, PermanentError):
    """The connection is gone: ``invalid_grant`` (refresh token expired, revoked or already used
    beyond the grace period), client credentials rejected, or no token set stored. Permanent and
    alarmable: a person must re-authorise (e.g. the CLI's ``connect xero``)."""

    def __init__(self, provider: str, reason: str, *, hint: str, error_code: str | None = None) -> None:
        super().__init__(
            f"{provider} authorisation lost ({reason}); a person must re-authorise: {hint}",
            provider=provider,
            error_code=error_code,
        )
        self.reason = reason


class TokenRequestRefused(OAuthError, TransientSyncError):
    """The token endpoint refused a request for a reason other than a lost authorisation (an
    unexpected 4xx). Transient: the stored tokens are untouched, a later refresh may succeed."""


class TokenStoreError(OAuthError, PermanentError):
    """The stored token set or credentials secret is unreadable. Permanent (fix the secret)."""


# --- models -------------------------------------------------------------------------------------


class TokenSet(BaseModel):
    """One connection's tokens, as stored in Secrets Manager (JSON)."""

    # Unknown keys are ignored so an older function can read a secret written by a newer CLI.
    model_config = ConfigDict(frozen=True, extra="ignore")

    access_token: str = Field(min_length=1, repr=False)
    refresh_token: str | None = Field(default=None, repr=False)
    expires_at: AwareDatetime
    scope: str = ""
    token_type: str = "Bearer"
    tenant_id: str | None = Field(default=None, description="Xero organisation (xero-tenant-id)")
    extra: dict[str, Any] = Field(default_factory=dict, description="Provider data, e.g. tenant name")

    def due(self, now: float, margin_seconds: float) -> bool:
        """True when the access token expires within ``margin_seconds`` of ``now`` (epoch)."""
        return self.expires_at.timestamp() - margin_seconds <= now


class ClientCredentials(BaseModel):
    """The OAuth app's credentials secret: ``{"client_id": ..., "client_secret": ...}``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1, repr=False)


class _TokenResponse(BaseModel):
    model_config = ConfigDict(extra="ignore")

    access_token: str = Field(min_length=1)
    expires_in: int = Field(gt=0)
    refresh_token: str | None = None
    scope: str | None = None
    token_type: str = "Bearer"


def _safe_validation_message(exc: ValidationError) -> str:
    # pydantic's default message repeats the input, which would put tokens in logs.
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_input=False, include_url=False)
    )


# --- stores -------------------------------------------------------------------------------------


class TokenStore(Protocol):
    def load(self) -> TokenSet | None: ...

    def save(self, tokens: TokenSet) -> None: ...


class SecretTokenStore:
    """A token set as the ``SecretString`` of one Secrets Manager secret.

    ``put_secret_value`` makes a new version labelled AWSCURRENT and moves AWSPREVIOUS to the last
    one, so the previous token set stays recoverable by hand.
    """

    def __init__(self, secret_id: str, *, provider: str = "xero", client: Any | None = None) -> None:
        self.secret_id = secret_id
        self.provider = provider
        # None: the calling thread's client from shared.aws (the usual case).
        self._client = client

    def _sm(self) -> Any:
        return self._client if self._client is not None else aws.client("secretsmanager")

    def load(self) -> TokenSet | None:
        sm = self._sm()
        try:
            raw = sm.get_secret_value(SecretId=self.secret_id)
        except sm.exceptions.ResourceNotFoundException:
            # The secret, or any value in it, does not exist yet: nobody has connected.
            return None
        text = raw.get("SecretString")
        if not text or not text.strip() or "access_token" not in _json_object(text):
            # Empty, "{}", or only client credentials (a combined secret before connecting).
            return None
        try:
            return TokenSet.model_validate_json(text)
        except ValidationError as exc:
            raise TokenStoreError(
                f"stored token set in {self.secret_id} is invalid: {_safe_validation_message(exc)}",
                provider=self.provider,
            ) from None

    def save(self, tokens: TokenSet) -> None:
        # A secret may also hold the client credentials (Ignition's does): keep every other key.
        sm = self._sm()
        try:
            current = _json_object(sm.get_secret_value(SecretId=self.secret_id).get("SecretString") or "")
        except sm.exceptions.ResourceNotFoundException:
            current = {}
        merged = {**current, **tokens.model_dump(mode="json")}
        sm.put_secret_value(SecretId=self.secret_id, SecretString=json.dumps(merged))


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


class InMemoryTokenStore:
    """A process-local store: unit tests, the sandbox, and the client-credentials token cache."""

    def __init__(self, tokens: TokenSet | None = None) -> None:
        self._tokens = tokens
        self._mutex = threading.Lock()

    def load(self) -> TokenSet | None:
        with self._mutex:
            return self._tokens

    def save(self, tokens: TokenSet) -> None:
        with self._mutex:
            self._tokens = tokens


def read_client_credentials(secret_id: str, *, provider: str = "xero") -> ClientCredentials:
    """Read ``{"client_id", "client_secret"}`` from Secrets Manager."""
    sm = aws.client("secretsmanager")
    try:
        text = sm.get_secret_value(SecretId=secret_id).get("SecretString") or ""
        return ClientCredentials.model_validate_json(text)
    except sm.exceptions.ResourceNotFoundException:
        raise TokenStoreError(
            f"client credentials secret {secret_id} has no value", provider=provider
        ) from None
    except ValidationError as exc:
        raise TokenStoreError(
            f"client credentials secret {secret_id} is invalid: {_safe_validation_message(exc)}",
            provider=provider,
        ) from None


# --- providers ----------------------------------------------------------------------------------


class TokenProvider(Protocol):
    """What an API client needs: a valid access token, and a way to replace one the API refused."""

    def access_token(self) -> str: ...

    def force_refresh(self, stale_token: str) -> str: ...


class Lock(Protocol):
    """A cross-process lease lock (:class:`shared.store.locks.DynamoLeaseLock`)."""

    def acquire(self, timeout: float | None = None) -> None: ...

    def extend(self, seconds: float | None = None) -> None:
        """Raise (``LeaseLost``) unless this acquisition still holds the lease; else renew it for
        ``seconds``. The fence before every token-set save."""
        ...

    def release(self) -> None: ...


# Lock names in the state table: the functions' refreshes and the CLI's connect share them.
XERO_TOKEN_LOCK = "xero-token"
IGNITION_TOKEN_LOCK = "ignition-token"
# The Ignition MCP user's token set (shared/ignition/mcp.py, Xero -> Ignition).
IGNITION_MCP_TOKEN_LOCK = "ignition-mcp-token"

# Xero accepts the previous refresh token again for this long when a refresh answer was lost
# (developer.xero.com/faq/oauth2, integration-facts.md).
REFRESH_GRACE_SECONDS = 30 * 60

# Worst case of one Secrets Manager read-merge-write with shared.aws's client (standard retries,
# 4 attempts of 5 s connect + 20 s read, plus backoff): the lease held over a save covers it.
SAVE_LEASE_SECONDS = 120.0


def refresh_token_fingerprint(refresh_token: str) -> str:
    """A short hash naming a refresh token in the state table without storing the token."""
    return hashlib.sha256(refresh_token.encode()).hexdigest()[:16]


class PendingRefresh(BaseModel):
    """A refresh that was sent to the token endpoint and whose result is not saved yet."""

    model_config = ConfigDict(frozen=True)

    previous: str = Field(description="fingerprint of the refresh token sent")
    started_at: float = Field(description="epoch seconds, before the call")


class RefreshJournal(Protocol):
    """Where a refresh is noted before its call and cleared after its save."""

    def begin(self, pending: PendingRefresh) -> None: ...

    def load(self) -> PendingRefresh | None: ...

    def clear(self, pending: PendingRefresh) -> None: ...


class DynamoRefreshJournal:
    """The pending-refresh record, one item beside the lock in the state table::

        pk="lock#<name>"  sk="pending"  previous=<fingerprint>  started_at=<N>

    Written before the refresh call and deleted once the new token set is saved, so a record that
    outlives its refresh means the rotated tokens may never have been saved. It holds a fingerprint,
    never a token: the tokens stay in Secrets Manager only.
    """

    def __init__(self, table_name: str, name: str, *, client: Any | None = None) -> None:
        self.table_name = table_name
        self._key = {"pk": {"S": f"lock#{name}"}, "sk": {"S": "pending"}}
        self._client = client

    def _ddb(self) -> Any:
        return self._client if self._client is not None else aws.client("dynamodb")

    def begin(self, pending: PendingRefresh) -> None:
        self._ddb().put_item(
            TableName=self.table_name,
            Item={
                **self._key,
                "previous": {"S": pending.previous},
                "started_at": {"N": repr(pending.started_at)},
            },
        )

    def load(self) -> PendingRefresh | None:
        item = self._ddb().get_item(TableName=self.table_name, Key=self._key, ConsistentRead=True).get("Item")
        if not item:
            return None
        return PendingRefresh(previous=item["previous"]["S"], started_at=float(item["started_at"]["N"]))

    def clear(self, pending: PendingRefresh) -> None:
        ddb = self._ddb()
        # Only our own record: a newer refresh's record must stay until it is saved.
        with contextlib.suppress(ddb.exceptions.ConditionalCheckFailedException):
            ddb.delete_item(
                TableName=self.table_name,
                Key=self._key,
                ConditionExpression="previous = :previous AND started_at = :started",
                ExpressionAttributeValues={
                    ":previous": {"S": pending.previous},
                    ":started": {"N": repr(pending.started_at)},
                },
            )


class InMemoryRefreshJournal:
    """A process-local journal: unit tests and the in-process sandbox wiring."""

    def __init__(self) -> None:
        self._pending: PendingRefresh | None = None

    def begin(self, pending: PendingRefresh) -> None:
        self._pending = pending

    def load(self) -> PendingRefresh | None:
        return self._pending

    def clear(self, pending: PendingRefresh) -> None:
        if self._pending == pending:
            self._pending = None


def save_under_lease(store: TokenStore, tokens: TokenSet, lock: Lock, *, timeout: float = 60.0) -> None:
    """Save a token set obtained outside any refresh (the CLI's ``connect``) under the same lease
    lock as the refreshes: it waits for a refresh in flight to finish, and a refresh whose lease
    this takes over can no longer save over the new connection."""
    lock.acquire(timeout=timeout)
    try:
        lock.extend(SAVE_LEASE_SECONDS)
        store.save(tokens)
    finally:
        lock.release()


@dataclass(frozen=True)
class TokenProviderOptions:
    """How a provider of either grant calls the token endpoint, keeps time and reports.

    One object so both providers (and their callers) name these once; the defaults serve in
    production, tests swap the clock, sleep and HTTP client for an emulator's.
    """

    clock: Callable[[], float] = time.time
    sleep: Callable[[float], None] = time.sleep
    http: httpx.Client | None = None
    refresh_margin_seconds: float = 120.0
    timeout_seconds: float = 5.0
    max_attempts: int = 3
    provider: str = "xero"
    # None: the grant's own advice (connect again, or check the Custom Connection).
    reauthorise_hint: str | None = None
    on_refresh: Callable[[RefreshOutcome], None] | None = None


DEFAULT_OPTIONS = TokenProviderOptions()


class _TokenEndpoint:
    """POSTs a grant to the token URL with HTTP Basic client authentication, with retries."""

    def __init__(
        self,
        token_url: str,
        credentials: ClientCredentials,
        options: TokenProviderOptions,
        hint: str,
    ) -> None:
        self.token_url = token_url
        self._credentials = credentials
        self._http = options.http or httpx.Client()
        self._timeout = options.timeout_seconds
        self._max_attempts = options.max_attempts
        self._sleep = options.sleep
        self._provider = options.provider
        self._hint = hint

    def grant(self, form: dict[str, str]) -> _TokenResponse:
        problem = "no attempt made"
        for attempt in range(1, self._max_attempts + 1):
            try:
                response = self._http.post(
                    self.token_url,
                    data=form,
                    auth=(self._credentials.client_id, self._credentials.client_secret),
                    headers={"Accept": "application/json"},
                    timeout=self._timeout,
                )
            except httpx.TransportError as exc:
                # A lost response may mean the grant was used; retrying the *same* refresh token is
                # what Xero's 30-minute grace period is for.
                problem = type(exc).__name__
            else:
                if response.status_code == 200:
                    try:
                        return _TokenResponse.model_validate_json(response.content)
                    except ValidationError as exc:
                        raise TokenRefreshFailed(
                            f"{self._provider} token endpoint returned an unusable body: "
                            f"{_safe_validation_message(exc)}",
                            provider=self._provider,
                        ) from None
                if response.status_code == 429 or response.status_code >= 500:
                    problem = f"HTTP {response.status_code}"
                else:
                    raise self._refused(response)
            logger.warning(
                "token endpoint attempt failed",
                extra={"provider": self._provider, "attempt": attempt, "problem": problem},
            )
            if attempt < self._max_attempts:
                self._sleep(random.uniform(0, min(4.0, 0.5 * 2.0 ** (attempt - 1))))  # noqa: S311
        raise TokenRefreshFailed(
            f"{self._provider} token endpoint failed after {self._max_attempts} attempts ({problem})",
            provider=self._provider,
        )

    def _refused(self, response: httpx.Response) -> OAuthError:
        code: str | None = None
        try:
            body = response.json()
            if isinstance(body, dict) and isinstance(body.get("error"), str):
                code = body["error"]
        except ValueError:
            code = None
        if code in {"invalid_grant", "invalid_client", "unauthorized_client"} or response.status_code == 401:
            reason = {
                "invalid_grant": "refresh token expired, revoked or already used",
                "invalid_client": "client credentials rejected",
                "unauthorized_client": "client not allowed this grant",
            }.get(code or "", f"token endpoint answered {response.status_code}")
            return AuthorisationLost(self._provider, reason, hint=self._hint, error_code=code)
        return TokenRequestRefused(
            f"{self._provider} token endpoint refused the request: HTTP {response.status_code} {code or ''}",
            provider=self._provider,
            error_code=code,
        )


class _CachingProvider(ABC):
    """Shared pieces: in-process cache (warm Lambdas skip Secrets Manager), expiry margin, the
    token endpoint; a subclass says how a token is renewed once the cache is stale."""

    def __init__(
        self,
        store: TokenStore,
        token_url: str,
        credentials: ClientCredentials,
        options: TokenProviderOptions,
        default_hint: str,
    ) -> None:
        self._store = store
        self._clock = options.clock
        self._margin = options.refresh_margin_seconds
        self._provider = options.provider
        self._hint = options.reauthorise_hint or default_hint
        self._on_refresh = options.on_refresh
        self._cached: TokenSet | None = None
        self._mutex = threading.Lock()
        self._endpoint = _TokenEndpoint(token_url, credentials, options, self._hint)

    def access_token(self) -> str:
        cached = self._cached
        if cached is not None and self._fresh(cached):
            return cached.access_token
        with self._mutex:
            if self._cached is not None and self._fresh(self._cached):
                return self._cached.access_token
            return self._renew(stale_token=None)

    def force_refresh(self, stale_token: str) -> str:
        """The API refused ``stale_token`` (401): get a different, valid one."""
        with self._mutex:
            if self._cached is not None and self._fresh(self._cached, stale_token):
                return self._cached.access_token
            return self._renew(stale_token)

    @abstractmethod
    def _renew(self, stale_token: str | None) -> str:
        """Under the mutex, the in-process cache being stale: a token from the store or the grant."""

    @property
    def token_set(self) -> TokenSet | None:
        """The cached token set (e.g. for its ``tenant_id``); None until first use."""
        return self._cached

    def _fresh(self, tokens: TokenSet | None, stale_token: str | None = None) -> bool:
        return (
            tokens is not None
            and tokens.access_token != stale_token
            and not tokens.due(self._clock(), self._margin)
        )

    def _expires_at(self, expires_in: int) -> datetime:
        return datetime.fromtimestamp(self._clock(), tz=UTC) + timedelta(seconds=expires_in)

    def _notify(self, outcome: RefreshOutcome) -> None:
        if self._on_refresh is not None:
            self._on_refresh(outcome)


class RefreshingTokenProvider(_CachingProvider):
    """Access tokens from a rotating refresh token, safe across concurrent Lambdas.

    Create one per process (module scope in the handler) so the cache survives warm invocations.

    A refresh runs under the lease lock, and its save is *fenced*: Secrets Manager has no
    conditional put (and the functions' roles may only ``PutSecretValue``), so the condition lives
    on the lease in DynamoDB instead. Right before the put, :meth:`Lock.extend` checks, in one
    conditional write, that this acquisition still holds an unexpired lease and renews it for
    :data:`SAVE_LEASE_SECONDS`, the worst case of the put with shared.aws's timeouts and retries. A
    worker whose lease ran out mid-refresh (a slow token endpoint, a paused Lambda) gets
    ``LeaseLost`` there and saves nothing: whoever took the lease over refreshed from the stored
    token set, and their tokens win. A late save would otherwise put back a refresh token that the
    winner's chain has already spent, and the next refresh after Xero's 30-minute grace would be an
    ``invalid_grant``. The residual window is a put that takes longer than the renewed lease.

    The lease also outlives the work under it: it is renewed before the token call for the worst
    case of the call (``timeout_seconds`` x ``max_attempts`` plus backoff), and a lock whose lease is
    too short for the configured timeouts is refused at construction.

    A refresh whose save failed (or whose worker died after the call) is recovered by the next
    caller within Xero's grace period: the refresh is noted in the journal before the call (a
    fingerprint of the refresh token sent, and when); the journal entry is cleared only after the
    save. A caller that finds an entry for the refresh token still stored knows that token was
    already sent, refreshes with it at once (Xero hands back the same rotation within 30 minutes)
    even if the stored access token still looks valid, and past the grace period says so.
    """

    def __init__(
        self,
        token_url: str,
        credentials: ClientCredentials,
        store: TokenStore,
        lock: Lock,
        options: TokenProviderOptions = DEFAULT_OPTIONS,
        *,
        journal: RefreshJournal | None = None,
        lock_timeout_seconds: float = 30.0,
    ) -> None:
        super().__init__(store, token_url, credentials, options, "run the CLI's `connect xero`")
        self._lock = lock
        self._lock_timeout = lock_timeout_seconds
        self._journal = journal or InMemoryRefreshJournal()
        # Every attempt's timeout, the backoff between attempts, and a few seconds for the store
        # read and the lease renewal themselves.
        self._grant_lease = (
            options.timeout_seconds * options.max_attempts
            + sum(min(4.0, 0.5 * 2.0 ** (n - 1)) for n in range(1, options.max_attempts))
            + 5.0
        )
        lease = getattr(lock, "lease_seconds", None)
        if isinstance(lease, int | float) and lease < self._grant_lease:
            raise ValueError(
                f"lock lease {lease}s is shorter than the worst-case token call ({self._grant_lease:.1f}s)"
            )

    def _renew(self, stale_token: str | None) -> str:
        if stale_token is None:
            # Another worker may have refreshed: its stored set serves, unless a refresh of it
            # went unsaved. A refused token goes straight to the lock, which reads the store anew.
            stored = self._load()
            if self._fresh(stored) and not self._unsaved_refresh(stored):
                self._cached = stored
                return stored.access_token
        return self._refresh_locked(stale_token=stale_token)

    def _load(self) -> TokenSet:
        stored = self._store.load()
        if stored is None:
            self._notify("authorisation_lost")
            raise AuthorisationLost(self._provider, "no token set stored", hint=self._hint)
        return stored

    def _unsaved_refresh(self, stored: TokenSet) -> PendingRefresh | None:
        """The journal entry of a refresh already sent with the stored refresh token, if any."""
        if not stored.refresh_token:
            return None
        pending = self._journal.load()
        if pending is not None and pending.previous == refresh_token_fingerprint(stored.refresh_token):
            return pending
        return None

    def _refresh_locked(self, stale_token: str | None) -> str:
        self._lock.acquire(timeout=self._lock_timeout)
        try:
            # Another worker may have refreshed while we waited for the lock: use its result.
            current = self._load()
            unsaved = self._unsaved_refresh(current)
            if unsaved is None and self._fresh(current, stale_token):
                self._cached = current
                return current.access_token
            if not current.refresh_token:
                self._notify("authorisation_lost")
                raise AuthorisationLost(self._provider, "no refresh token stored", hint=self._hint)
            if unsaved is not None:
                logger.warning(
                    "recovering a refresh whose tokens were never saved",
                    extra={
                        "provider": self._provider,
                        "seconds_since": round(self._clock() - unsaved.started_at, 1),
                        "grace_seconds": REFRESH_GRACE_SECONDS,
                    },
                )
            # A full lease for the call, then note it: from here the stored refresh token may be spent.
            self._lock.extend(self._grant_lease)
            pending = PendingRefresh(
                previous=refresh_token_fingerprint(current.refresh_token),
                # The first, unsaved attempt started Xero's grace clock; a retry does not restart it.
                started_at=unsaved.started_at if unsaved is not None else self._clock(),
            )
            self._journal.begin(pending)
            try:
                granted = self._endpoint.grant(
                    {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
                )
            except AuthorisationLost as exc:
                self._notify("authorisation_lost")
                logger.error("token refresh refused: authorisation lost", extra={"provider": self._provider})
                if self._clock() - pending.started_at > REFRESH_GRACE_SECONDS and unsaved is not None:
                    started = datetime.fromtimestamp(pending.started_at, tz=UTC).isoformat()
                    raise AuthorisationLost(
                        self._provider,
                        f"a refresh at {started} was never saved and the "
                        f"{REFRESH_GRACE_SECONDS // 60}-minute grace for its refresh token has passed",
                        hint=self._hint,
                        error_code=exc.error_code,
                    ) from None
                raise
            except OAuthError:
                self._notify("failed")
                raise
            renewed = TokenSet(
                access_token=granted.access_token,
                # Some servers only rotate sometimes; keep the old refresh token when none is sent.
                refresh_token=granted.refresh_token or current.refresh_token,
                expires_at=self._expires_at(granted.expires_in),
                scope=granted.scope if granted.scope is not None else current.scope,
                token_type=granted.token_type,
                tenant_id=current.tenant_id,
                extra=current.extra,
            )
            try:
                # The fence (see the class docstring): no save once the lease is someone else's.
                self._lock.extend(SAVE_LEASE_SECONDS)
            except LeaseLost:
                return self._after_lost_lease(stale_token)
            # Persist before use: if we crashed after using an unsaved token, the stored refresh
            # token would be the spent one and the connection would die after the grace period.
            # If this save fails we raise and nobody uses the new token; the journal entry stays,
            # and the next caller retries the stored (previous) refresh token within the grace.
            self._store.save(renewed)
            self._journal.clear(pending)
            self._cached = renewed
            self._notify("refreshed")
            logger.info(
                "access token refreshed",
                extra={"provider": self._provider, "expires_at": renewed.expires_at.isoformat()},
            )
            return renewed.access_token
        finally:
            self._lock.release()

    def _after_lost_lease(self, stale_token: str | None) -> str:
        """Our lease ran out during the call, so our tokens are not saved: use the winner's."""
        winner = self._store.load()
        if winner is not None and self._fresh(winner, stale_token) and self._unsaved_refresh(winner) is None:
            self._cached = winner
            self._notify("refreshed")
            return winner.access_token
        self._notify("failed")
        raise TokenRefreshFailed(
            f"{self._provider} token refresh outlived its lease; its tokens were not saved",
            provider=self._provider,
        )


class ClientCredentialsTokenProvider(_CachingProvider):
    """Access tokens for a Xero Custom Connection (``grant_type=client_credentials``, Basic auth).

    No refresh token, so no lock: two workers fetching a token at once each get a valid one. The
    store (Secrets Manager or :class:`InMemoryTokenStore`) only saves token calls across workers.
    """

    def __init__(
        self,
        token_url: str,
        credentials: ClientCredentials,
        store_or_cache: TokenStore | None = None,
        options: TokenProviderOptions = DEFAULT_OPTIONS,
        *,
        scopes: Sequence[str] = (),
        tenant_id: str | None = None,
    ) -> None:
        super().__init__(
            store_or_cache or InMemoryTokenStore(),
            token_url,
            credentials,
            options,
            "check the Custom Connection and the client credentials secret",
        )
        self._scopes = " ".join(scopes)
        self._tenant_id = tenant_id

    def _renew(self, stale_token: str | None) -> str:
        stored = self._store.load()
        if stored is not None and self._fresh(stored, stale_token):
            self._cached = stored
            return stored.access_token
        return self._fetch(stored)

    def _fetch(self, previous: TokenSet | None) -> str:
        form = {"grant_type": "client_credentials"}
        if self._scopes:
            form["scope"] = self._scopes
        try:
            granted = self._endpoint.grant(form)
        except AuthorisationLost:
            self._notify("authorisation_lost")
            raise
        except OAuthError:
            self._notify("failed")
            raise
        tokens = TokenSet(
            access_token=granted.access_token,
            expires_at=self._expires_at(granted.expires_in),
            scope=granted.scope or self._scopes,
            token_type=granted.token_type,
            tenant_id=self._tenant_id or (previous.tenant_id if previous else None),
            extra=previous.extra if previous else {},
        )
        self._store.save(tokens)
        self._cached = tokens
        self._notify("refreshed")
        return tokens.access_token
