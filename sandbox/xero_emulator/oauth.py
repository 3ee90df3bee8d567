"""Xero Identity's OAuth 2.0 rules: codes, access tokens, rotating refresh tokens.

Facts (developer.xero.com/faq/oauth2; integration-facts.md): access tokens live 30 minutes;
refresh tokens are single-use and rotate; the previous refresh token may be replayed for 30 minutes
(a lost response); an unused refresh token expires after 60 days; anything else is
``400 {"error":"invalid_grant"}``. Callers hold the emulator's lock; this class is not locked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlparse

ACCESS_TOKEN_SECONDS = 30 * 60
REFRESH_GRACE_SECONDS = 30 * 60
REFRESH_TOKEN_SECONDS = 60 * 24 * 3600
AUTH_CODE_SECONDS = 5 * 60

KNOWN_SCOPES = frozenset(
    {
        "openid",
        "profile",
        "email",
        "offline_access",
        "accounting.transactions",
        "accounting.transactions.read",
        "accounting.contacts",
        "accounting.contacts.read",
        "accounting.settings",
        "accounting.settings.read",
        "accounting.attachments",
        "accounting.attachments.read",
        "accounting.journals.read",
        "accounting.reports.read",
        "accounting.budgets.read",
        # Granular scopes, required for apps created from March 2026.
        "accounting.invoices",
        "accounting.invoices.read",
        "accounting.payments",
        "accounting.payments.read",
        "accounting.banktransactions",
        "accounting.banktransactions.read",
        "accounting.manualjournals",
        "accounting.manualjournals.read",
        "accounting.reports.aged.read",
        "accounting.reports.balancesheet.read",
        "accounting.reports.profitandloss.read",
        "accounting.reports.trialbalance.read",
    }
)
DEFAULT_SCOPE = (
    "openid profile email offline_access accounting.contacts accounting.transactions "
    "accounting.invoices accounting.payments accounting.settings accounting.settings.read"
)


class OAuthError(Exception):
    """An RFC 6749 error; ``status`` is what Xero answers with."""

    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


@dataclass
class AccessToken:
    expires_at: float
    scopes: frozenset[str]
    auth_event_id: str


@dataclass
class RefreshToken:
    issued_at: float
    scopes: frozenset[str]
    auth_event_id: str
    public_client: bool
    used_at: float | None = None
    successor: str | None = None
    revoked: bool = False


@dataclass
class AuthorizationCode:
    expires_at: float
    redirect_uri: str
    scopes: frozenset[str]
    code_challenge: str | None
    code_challenge_method: str | None


@dataclass
class TokenCounters:
    refreshes: int = 0
    invalid_grants: int = 0


@dataclass
class TokenService:
    client_id: str
    client_secret: str
    access: dict[str, AccessToken] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    counters: TokenCounters = field(default_factory=TokenCounters)

    # -- client authentication -------------------------------------------------------------
    def check_client(self, client_id: str | None, client_secret: str | None, *, public_ok: bool) -> None:
        if client_id != self.client_id:
            raise OAuthError("invalid_client")
        if client_secret is None and public_ok:
            return
        if client_secret is None or not hmac.compare_digest(client_secret, self.client_secret):
            raise OAuthError("invalid_client")

    # -- authorize -------------------------------------------------------------------------
    @staticmethod
    def parse_scopes(scope: str) -> frozenset[str]:
        scopes = frozenset(scope.split())
        if not scopes or not scopes <= KNOWN_SCOPES:
            raise OAuthError("invalid_scope")
        return scopes

    @staticmethod
    def valid_redirect_uri(redirect_uri: str) -> bool:
        parsed = urlparse(redirect_uri)
        return parsed.scheme in {"http", "https"} and bool(parsed.netloc) and not parsed.fragment

    def issue_code(
        self,
        now: float,
        redirect_uri: str,
        scopes: frozenset[str],
        code_challenge: str | None,
        code_challenge_method: str | None,
    ) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            now + AUTH_CODE_SECONDS, redirect_uri, scopes, code_challenge, code_challenge_method
        )
        return code

    # -- token endpoint --------------------------------------------------------------------
    def exchange_code(
        self, now: float, code: str, redirect_uri: str | None, code_verifier: str | None, client_secret: bool
    ) -> dict[str, object]:
        grant = self.codes.pop(code, None)  # single use, even when the exchange then fails
        if grant is None or grant.expires_at < now or grant.redirect_uri != redirect_uri:
            raise self._invalid_grant()
        if grant.code_challenge is not None:
            if code_verifier is None or not _pkce_matches(
                code_verifier, grant.code_challenge, grant.code_challenge_method
            ):
                raise self._invalid_grant()
        elif not client_secret:
            raise OAuthError("invalid_client")
        return self.issue(now, grant.scopes, str(uuid.uuid4()), public_client=not client_secret)

    def refresh_grant(self, now: float, token: str, client_secret: bool) -> dict[str, object]:
        record = self.refresh.get(token)
        if record is None or record.revoked:
            raise self._invalid_grant()
        if not client_secret and not record.public_client:
            raise OAuthError("invalid_client")
        if record.used_at is None:
            if now - record.issued_at > REFRESH_TOKEN_SECONDS:
                raise self._invalid_grant()
        elif now - record.used_at > REFRESH_GRACE_SECONDS:
            raise self._invalid_grant()
        if record.used_at is not None:
            successor = self.refresh.get(record.successor or "")
            if successor is None or successor.used_at is not None or successor.revoked:
                # The grace period is for a lost answer only: once the rotation it produced has
                # been used (or revoked), the old token cannot fork a second chain. Xero does not
                # document this case; the stricter reading (integration-facts.md, OAuth).
                raise self._invalid_grant()
            self.counters.refreshes += 1
            # Grace replay of a lost response: hand back the same next refresh token. The grace
            # runs from the first use and is not extended by replays.
            return self._token_set(now, str(record.successor), successor.scopes, successor.auth_event_id)
        self.counters.refreshes += 1
        record.used_at = now
        token_set = self.issue(now, record.scopes, record.auth_event_id, public_client=record.public_client)
        record.successor = str(token_set["refresh_token"])
        return token_set

    def client_credentials(self, now: float, scope: str | None) -> dict[str, object]:
        scopes = self.parse_scopes(scope) if scope else frozenset(DEFAULT_SCOPE.split()) - {"offline_access"}
        # Custom Connections never get a refresh token.
        return self.issue(now, scopes - {"offline_access"}, str(uuid.uuid4()), public_client=False)

    def issue(
        self, now: float, scopes: frozenset[str], auth_event_id: str, *, public_client: bool
    ) -> dict[str, object]:
        refresh_token: str | None = None
        if "offline_access" in scopes:
            refresh_token = secrets.token_urlsafe(32)
            self.refresh[refresh_token] = RefreshToken(now, scopes, auth_event_id, public_client)
        return self._token_set(now, refresh_token, scopes, auth_event_id)

    def _token_set(
        self, now: float, refresh_token: str | None, scopes: frozenset[str], auth_event_id: str
    ) -> dict[str, object]:
        access_token = self._jwt(now, scopes, auth_event_id)
        self.access[access_token] = AccessToken(now + ACCESS_TOKEN_SECONDS, scopes, auth_event_id)
        body: dict[str, object] = {
            "access_token": access_token,
            "expires_in": ACCESS_TOKEN_SECONDS,
            "token_type": "Bearer",
            "scope": " ".join(sorted(scopes)),
        }
        if refresh_token is not None:
            body["refresh_token"] = refresh_token
        return body

    def _jwt(self, now: float, scopes: frozenset[str], auth_event_id: str) -> str:
        # JWT-shaped like Xero's, so clients that read `exp` from the token work; signed with the
        # client secret only to make it opaque, never to be verified by anyone.
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {
            "nbf": int(now),
            "exp": int(now) + ACCESS_TOKEN_SECONDS,
            "iss": "https://identity.xero.com",
            "aud": "https://identity.xero.com/resources",
            "client_id": self.client_id,
            "authentication_event_id": auth_event_id,
            "scope": sorted(scopes),
            "jti": uuid.uuid4().hex,
        }
        payload = _b64(json.dumps(claims).encode())
        signature = hmac.new(self.client_secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
        return f"{header}.{payload}.{_b64(signature.digest())}"

    def revoke(self, token: str) -> None:
        record = self.refresh.get(token)
        if record is not None:
            record.revoked = True
        self.access.pop(token, None)

    def _invalid_grant(self) -> OAuthError:
        self.counters.invalid_grants += 1
        return OAuthError("invalid_grant")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _pkce_matches(verifier: str, challenge: str, method: str | None) -> bool:
    expected = _b64(hashlib.sha256(verifier.encode()).digest()) if method == "S256" else verifier
    return hmac.compare_digest(expected, challenge)
