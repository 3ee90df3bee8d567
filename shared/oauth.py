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

import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import httpx
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from shared import aws

logger = logging.getLogger(__name__)

RefreshOutcome = Literal["refreshed", "failed", "authorisation_lost"]


# --- errors -------------------------------------------------------------------------------------


class OAuthError(Exception):
    """Base for token problems. ``transient`` says whether a later retry can succeed."""

    transient: bool = True

    def __init__(self, message: str, *, provider: str, error_code: str | None = None) -> None:
        super().__init__(message)
        self.provider = provider
        self.error_code = error_code


class TokenRefreshFailed(OAuthError):
    """The token endpoint was unreachable, slow or failing (timeouts, 5xx, 429) through every
    retry. Transient: the stored refresh token is still good (or within Xero's 30-minute grace)."""

    transient = True


class AuthorisationLost(OAuthError):
    """The connection is gone: ``invalid_grant`` (refresh token expired, revoked or already used
    beyond the grace period), client credentials rejected, or no token set stored. Permanent and
    alarmable: a person must re-authorise (e.g. the CLI's ``connect xero``)."""

    transient = False

    def __init__(self, provider: str, reason: str, *, hint: str, error_code: str | None = None) -> None:
        super().__init__(
            f"{provider} authorisation lost ({reason}); a person must re-authorise: {hint}",
            provider=provider,
            error_code=error_code,
        )
        self.reason = reason


class TokenStoreError(OAuthError):
    """The stored token set or credentials secret is unreadable. Permanent (fix the secret)."""

    transient = False


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
    """A cross-process lock (:class:`shared.store.locks.DynamoLeaseLock`)."""

    def acquire(self, timeout: float | None = None) -> None: ...

    def release(self) -> None: ...


class _TokenEndpoint:
    """POSTs a grant to the token URL with HTTP Basic client authentication, with retries."""

    def __init__(
        self,
        token_url: str,
        credentials: ClientCredentials,
        *,
        http: httpx.Client | None,
        timeout_seconds: float,
        max_attempts: int,
        sleep: Callable[[float], None],
        provider: str,
        hint: str,
    ) -> None:
        self.token_url = token_url
        self._credentials = credentials
        self._http = http or httpx.Client()
        self._timeout = timeout_seconds
        self._max_attempts = max_attempts
        self._sleep = sleep
        self._provider = provider
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
        return OAuthError(
            f"{self._provider} token endpoint refused the request: HTTP {response.status_code} {code or ''}",
            provider=self._provider,
            error_code=code,
        )


class _CachingProvider:
    """Shared pieces: in-process cache (warm Lambdas skip Secrets Manager), expiry margin."""

    def __init__(
        self,
        store: TokenStore,
        *,
        clock: Callable[[], float],
        refresh_margin_seconds: float,
        provider: str,
        hint: str,
        on_refresh: Callable[[RefreshOutcome], None] | None,
    ) -> None:
        self._store = store
        self._clock = clock
        self._margin = refresh_margin_seconds
        self._provider = provider
        self._hint = hint
        self._on_refresh = on_refresh
        self._cached: TokenSet | None = None
        self._mutex = threading.Lock()

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
    Keep ``timeout_seconds * max_attempts`` (+ ~2 s of backoff) well under the lock's lease: with the
    defaults (5 s x 3) a refresh takes at most ~17 s against the lock's default 30 s lease.
    """

    def __init__(
        self,
        token_url: str,
        credentials: ClientCredentials,
        store: TokenStore,
        lock: Lock,
        clock: Callable[[], float] = time.time,
        *,
        http: httpx.Client | None = None,
        refresh_margin_seconds: float = 120.0,
        timeout_seconds: float = 5.0,
        max_attempts: int = 3,
        lock_timeout_seconds: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        provider: str = "xero",
        reauthorise_hint: str = "run the CLI's `connect xero`",
        on_refresh: Callable[[RefreshOutcome], None] | None = None,
    ) -> None:
        super().__init__(
            store,
            clock=clock,
            refresh_margin_seconds=refresh_margin_seconds,
            provider=provider,
            hint=reauthorise_hint,
            on_refresh=on_refresh,
        )
        self._lock = lock
        self._lock_timeout = lock_timeout_seconds
        self._endpoint = _TokenEndpoint(
            token_url,
            credentials,
            http=http,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            sleep=sleep,
            provider=provider,
            hint=reauthorise_hint,
        )

    def access_token(self) -> str:
        cached = self._cached
        if cached is not None and self._fresh(cached):
            return cached.access_token
        with self._mutex:
            if self._cached is not None and self._fresh(self._cached):
                return self._cached.access_token
            stored = self._load()
            if self._fresh(stored):
                self._cached = stored
                return stored.access_token
            return self._refresh_locked(stale_token=None)

    def force_refresh(self, stale_token: str) -> str:
        """The API refused ``stale_token`` (401): get a different, valid one."""
        with self._mutex:
            if self._cached is not None and self._fresh(self._cached, stale_token):
                return self._cached.access_token
            return self._refresh_locked(stale_token=stale_token)

    def _load(self) -> TokenSet:
        stored = self._store.load()
        if stored is None:
            self._notify("authorisation_lost")
            raise AuthorisationLost(self._provider, "no token set stored", hint=self._hint)
        return stored

    def _refresh_locked(self, stale_token: str | None) -> str:
        self._lock.acquire(timeout=self._lock_timeout)
        try:
            # Another worker may have refreshed while we waited for the lock: use its result.
            current = self._load()
            if self._fresh(current, stale_token):
                self._cached = current
                return current.access_token
            if not current.refresh_token:
                self._notify("authorisation_lost")
                raise AuthorisationLost(self._provider, "no refresh token stored", hint=self._hint)
            try:
                granted = self._endpoint.grant(
                    {"grant_type": "refresh_token", "refresh_token": current.refresh_token}
                )
            except AuthorisationLost:
                self._notify("authorisation_lost")
                logger.error("token refresh refused: authorisation lost", extra={"provider": self._provider})
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
            # Persist before use: if we crashed after using an unsaved token, the stored refresh
            # token would be the spent one and the connection would die after the grace period.
            # If this save fails we raise and nobody uses the new token; the stored (previous)
            # refresh token still works within Xero's grace period.
            self._store.save(renewed)
            self._cached = renewed
            self._notify("refreshed")
            logger.info(
                "access token refreshed",
                extra={"provider": self._provider, "expires_at": renewed.expires_at.isoformat()},
            )
            return renewed.access_token
        finally:
            self._lock.release()


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
        clock: Callable[[], float] = time.time,
        *,
        scopes: Sequence[str] = (),
        tenant_id: str | None = None,
        http: httpx.Client | None = None,
        refresh_margin_seconds: float = 120.0,
        timeout_seconds: float = 5.0,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
        provider: str = "xero",
        reauthorise_hint: str = "check the Custom Connection and the client credentials secret",
        on_refresh: Callable[[RefreshOutcome], None] | None = None,
    ) -> None:
        super().__init__(
            store_or_cache or InMemoryTokenStore(),
            clock=clock,
            refresh_margin_seconds=refresh_margin_seconds,
            provider=provider,
            hint=reauthorise_hint,
            on_refresh=on_refresh,
        )
        self._scopes = " ".join(scopes)
        self._tenant_id = tenant_id
        self._endpoint = _TokenEndpoint(
            token_url,
            credentials,
            http=http,
            timeout_seconds=timeout_seconds,
            max_attempts=max_attempts,
            sleep=sleep,
            provider=provider,
            hint=reauthorise_hint,
        )

    def access_token(self) -> str:
        cached = self._cached
        if cached is not None and self._fresh(cached):
            return cached.access_token
        with self._mutex:
            if self._cached is not None and self._fresh(self._cached):
                return self._cached.access_token
            stored = self._store.load()
            if stored is not None and self._fresh(stored):
                self._cached = stored
                return stored.access_token
            return self._fetch(stored)

    def force_refresh(self, stale_token: str) -> str:
        with self._mutex:
            if self._cached is not None and self._fresh(self._cached, stale_token):
                return self._cached.access_token
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
