"""The OAuth 2.0 authorization-code flow, run from a terminal.

1. A listener on the redirect URI's host and port (loopback) waits for the browser's redirect.
2. The CLI prints the authorisation URL (and opens it with ``--open``); a person signs in and
   consents. PKCE (S256) is sent where the provider supports it (Xero), with a random ``state``.
3. The redirect brings ``code`` (or ``error=access_denied``); the code is exchanged at the token
   endpoint with the app's client credentials (HTTP Basic) and the PKCE verifier.
4. The granted scopes are checked against the ones the sync needs.

Nothing here prints or logs a token, a code or a client secret.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import httpx

from cli.errors import CliError, Exit
from shared.config import IntegrationConfig
from shared.oauth import ClientCredentials, TokenSet

# Granular scopes (required for Xero apps created from March 2026) + a refresh token.
XERO_SCOPES = (
    "offline_access",
    "accounting.contacts",
    "accounting.invoices",
    "accounting.payments",
    "accounting.settings.read",
)
IGNITION_SCOPES = ("reporting",)
DEFAULT_REDIRECT_URI = "http://localhost:8765/callback"

_PAGE = (
    "<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
    "<body style='font-family:sans-serif'><h2>{title}</h2><p>{text}</p></body></html>"
)


@dataclass(frozen=True)
class Provider:
    name: str
    label: str
    authorize_url: str
    token_url: str
    scopes: tuple[str, ...]
    pkce: bool


def xero_provider(config: IntegrationConfig, scopes: tuple[str, ...] = XERO_SCOPES) -> Provider:
    return Provider(
        name="xero",
        label="Xero",
        authorize_url=f"{config.xero.login_url.rstrip('/')}/identity/connect/authorize",
        token_url=f"{config.xero.identity_url.rstrip('/')}/connect/token",
        scopes=scopes,
        pkce=True,
    )


def ignition_provider(config: IntegrationConfig) -> Provider:
    token_url = config.ignition.token_url
    base = token_url[: -len("/token")] if token_url.endswith("/token") else token_url.rsplit("/", 1)[0]
    return Provider(
        name="ignition",
        label="Ignition",
        authorize_url=f"{base}/authorize",
        token_url=token_url,
        scopes=IGNITION_SCOPES,
        pkce=False,  # not documented for Ignition's API: not sent
    )


def ignition_mcp_provider(config: IntegrationConfig) -> Provider:
    """Ignition's MCP server: browser OAuth per user (integration-facts, "MCP server"), a
    different grant from the Reporting API's. PKCE (S256) is sent, as MCP's authorization asks."""
    mcp = config.ignition.mcp
    return Provider(
        name="ignition-mcp",
        label="Ignition MCP",
        authorize_url=mcp.authorize_url,
        token_url=mcp.token_url,
        scopes=tuple(mcp.scopes),
        pkce=True,
    )


# --- the redirect listener ---------------------------------------------------------------------


class CallbackListener:
    """Serves the redirect URI on loopback until one callback arrives. Port 0 picks a free port
    (tests); a real app needs the exact registered URI, port included."""

    def __init__(self, redirect_uri: str) -> None:
        parsed = urlparse(redirect_uri)
        if parsed.scheme != "http" or parsed.hostname not in ("localhost", "127.0.0.1", "::1"):
            raise CliError(
                f"the redirect URI must be http://localhost:<port>/<path> for the CLI to receive it, "
                f"got {redirect_uri!r}",
                Exit.USAGE,
            )
        self._path = parsed.path or "/"
        self._results: queue.Queue[dict[str, str]] = queue.Queue()
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != listener._path:
                    self.send_error(404)
                    return
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                ok = "code" in params
                page = _PAGE.format(
                    title="Connected" if ok else "Not connected",
                    text="You can close this window and return to the terminal."
                    if ok
                    else "The authorisation did not complete; the terminal says why.",
                )
                body = page.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                listener._results.put(params)

            def log_message(self, format: str, *args: Any) -> None:
                return  # the query carries the code: never log it

        host = "127.0.0.1" if parsed.hostname in ("localhost", "127.0.0.1") else "::1"
        try:
            self._server = ThreadingHTTPServer((host, 80 if parsed.port is None else parsed.port), Handler)
        except OSError as exc:
            raise CliError(
                f"cannot listen on {parsed.hostname}:{parsed.port} for the redirect: {exc.strerror}",
                Exit.CONFIG,
                hint="another program uses that port: free it, or register and pass another --redirect-uri",
            ) from None
        port = self._server.server_address[1]
        netloc = f"{parsed.hostname}:{port}"
        self.redirect_uri = urlunparse((parsed.scheme, netloc, self._path, "", "", ""))
        self._thread = threading.Thread(target=self._server.serve_forever, name="oauth-callback", daemon=True)

    def __enter__(self) -> CallbackListener:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait(self, timeout: float) -> dict[str, str] | None:
        try:
            return self._results.get(timeout=timeout)
        except queue.Empty:
            return None


# --- the flow ----------------------------------------------------------------------------------


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(64)[:96]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def authorization_url(
    provider: Provider, client_id: str, redirect_uri: str, state: str, challenge: str | None
) -> str:
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(provider.scopes),
        "state": state,
    }
    if challenge is not None:
        params["code_challenge"] = challenge
        params["code_challenge_method"] = "S256"
    return f"{provider.authorize_url}?{urlencode(params)}"


def preflight(provider: Provider, url: str, redirect_uri: str, http: httpx.Client) -> None:
    """Ask the authorisation endpoint once without a browser: a wrong client id or an unregistered
    redirect URI is refused right there (no redirect), and says so before anyone waits."""
    try:
        response = http.get(url, follow_redirects=False, timeout=10)
    except httpx.TransportError as exc:
        raise CliError(
            f"cannot reach {provider.label}'s authorisation page {provider.authorize_url}: "
            f"{type(exc).__name__}",
            Exit.CONFIG,
        ) from None
    if 400 <= response.status_code < 500:
        text = response.text[:300].lower()
        if "redirect" in text:
            raise CliError(
                f"{provider.label} refused the redirect URI {redirect_uri}: "
                "it is not registered for this app",
                Exit.AUTH,
                hint=f"add exactly {redirect_uri} to the app's redirect URIs "
                "(developer.xero.com/app/manage > Configuration), "
                "or pass the registered one with --redirect-uri",
            )
        if "client" in text:
            raise CliError(
                f"{provider.label} does not know the app's client id",
                Exit.AUTH,
                hint="check client_id in the app credentials secret (docs/deploy.md, step 6)",
            )
        raise CliError(
            f"{provider.label} refused the authorisation request: HTTP {response.status_code}", Exit.AUTH
        )


def authorise(
    provider: Provider,
    credentials: ClientCredentials,
    *,
    redirect_uri: str,
    opener: Callable[[str], None],
    announce: Callable[[str], None],
    timeout: float,
    http: httpx.Client,
    check_first: bool = True,
    paste: Callable[[], str] | None = None,
    paste_only: bool = False,
    tell: Callable[[str], None] = lambda text: None,
) -> TokenSet:
    """Run the flow; the token set (no tenant yet) once the scopes are checked.

    With ``paste_only`` (the admin consents on another computer), or when no listener can be
    started here and ``paste`` can read, nothing listens: the admin's browser is redirected to the
    registered URI (an error page, on their machine), and the address it ends on, which carries
    ``code`` and ``state``, is pasted back (``paste``)."""
    state = secrets.token_urlsafe(24)
    verifier, challenge = pkce_pair() if provider.pkce else (None, None)
    listener: CallbackListener | None = None
    if not paste_only:
        try:
            listener = CallbackListener(redirect_uri)
        except CliError as exc:
            if paste is None or exc.code != Exit.CONFIG:
                raise
            tell(f"{exc}; the address the browser ends on is read from here instead.")
    if listener is None:
        if paste is None:
            raise CliError("--paste needs a terminal (or the address on standard input)", Exit.USAGE)
        url = authorization_url(provider, credentials.client_id, redirect_uri, state, challenge)
        if check_first:
            preflight(provider, url, redirect_uri, http)
        announce(url)
        opener(url)
        params: dict[str, str] | None = pasted_params(paste(), redirect_uri)
        used_uri = redirect_uri
    else:
        with listener:
            url = authorization_url(provider, credentials.client_id, listener.redirect_uri, state, challenge)
            if check_first:
                preflight(provider, url, listener.redirect_uri, http)
            announce(url)
            opener(url)
            params = listener.wait(timeout)
        used_uri = listener.redirect_uri
    if params is None:
        raise CliError(
            f"no answer from the browser within {timeout:.0f} s",
            Exit.AUTH,
            hint=f"open the URL above and consent; if {provider.label} showed an error about the "
            f"redirect URI, register exactly {used_uri} for the app; if the admin consents on another "
            "computer, run again with --paste",
        )
    if params.get("state") != state:
        raise CliError(
            "the redirect carried another state: ignored (possible CSRF or a stale tab)", Exit.AUTH
        )
    if "error" in params:
        raise _callback_error(provider, params)
    code = params.get("code")
    if not code:
        raise CliError(f"{provider.label} redirected without a code", Exit.AUTH)
    granted = exchange_code(provider, credentials, code, used_uri, verifier, http)
    check_scopes(provider, granted.scope)
    return granted


def pasted_params(text: str, redirect_uri: str) -> dict[str, str]:
    """The query of the address the admin's browser ended on, once it is checked to be a redirect
    to ``redirect_uri`` (the same scheme, host, port and path) that carries a ``state``."""
    address = text.strip().strip("'\"<>")
    got, wanted = urlparse(address), urlparse(redirect_uri)
    params = {k: v[0] for k, v in parse_qs(got.query).items()}

    def place(url: Any) -> tuple[str, str, int | None, str]:
        return (url.scheme, (url.hostname or "").lower(), url.port, url.path.rstrip("/") or "/")

    if not address or "state" not in params or not ({"code", "error"} & params.keys()):
        raise CliError(
            "that is not the address the browser was sent to after consent (it has no code and state)",
            Exit.AUTH,
            hint=f"copy the whole address bar of the page the browser shows after consent: it starts with "
            f"{redirect_uri}?code=",
        )
    if place(got) != place(wanted):
        raise CliError(
            f"that address is a redirect to {got.scheme}://{got.netloc}{got.path}, not to {redirect_uri}",
            Exit.AUTH,
            hint="paste the address from the consent you started with this command",
        )
    return params


def _callback_error(provider: Provider, params: dict[str, str]) -> CliError:
    error = params["error"]
    if error == "access_denied":
        return CliError(
            f"consent was denied in {provider.label}: nothing was stored",
            Exit.AUTH,
            hint="run the command again and choose Allow access "
            "(a Xero admin of the organisation must do it)",
        )
    if error == "invalid_scope":
        return CliError(
            f"{provider.label} refused the scopes {' '.join(provider.scopes)}",
            Exit.AUTH,
            hint="give the app these scopes in its configuration; apps created after March 2026 need the "
            "granular accounting.* scopes",
        )
    detail = params.get("error_description", "")
    return CliError(f"{provider.label} answered {error}{': ' + detail if detail else ''}", Exit.AUTH)


def exchange_code(
    provider: Provider,
    credentials: ClientCredentials,
    code: str,
    redirect_uri: str,
    verifier: str | None,
    http: httpx.Client,
) -> TokenSet:
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    return _token_request(provider, credentials, form, http)


def client_credentials_grant(
    provider: Provider, credentials: ClientCredentials, http: httpx.Client
) -> TokenSet:
    scopes = " ".join(s for s in provider.scopes if s != "offline_access")
    granted = _token_request(
        provider, credentials, {"grant_type": "client_credentials", "scope": scopes}, http
    )
    check_scopes(provider, granted.scope, ignore=("offline_access",))
    return granted


def _token_request(
    provider: Provider, credentials: ClientCredentials, form: dict[str, str], http: httpx.Client
) -> TokenSet:
    try:
        response = http.post(
            provider.token_url,
            data=form,
            auth=(credentials.client_id, credentials.client_secret),
            headers={"Accept": "application/json"},
            timeout=15,
        )
    except httpx.TransportError as exc:
        raise CliError(
            f"cannot reach {provider.label}'s token endpoint: {type(exc).__name__}", Exit.CONFIG
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.status_code != 200:
        error = body.get("error") if isinstance(body, dict) else None
        if error == "invalid_client" or response.status_code == 401:
            raise CliError(
                f"{provider.label} rejected the app's client credentials",
                Exit.AUTH,
                hint="check client_id/client_secret in the credentials secret",
            )
        if error == "invalid_grant":
            raise CliError(
                f"{provider.label} refused the authorisation code (expired, already used, or the "
                "redirect URI differs from the one the code was issued for)",
                Exit.AUTH,
                hint="run the command again and finish within a few minutes",
            )
        raise CliError(
            f"{provider.label}'s token endpoint answered {response.status_code} {error or ''}", Exit.AUTH
        )
    if not isinstance(body, dict) or not body.get("access_token") or not body.get("expires_in"):
        raise CliError(f"{provider.label}'s token endpoint answered without a usable token", Exit.AUTH)
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=body.get("refresh_token"),
        expires_at=datetime.now(UTC) + timedelta(seconds=int(body["expires_in"])),
        scope=str(body.get("scope") or " ".join(provider.scopes)),
        token_type=str(body.get("token_type") or "Bearer"),
    )


def check_scopes(provider: Provider, granted: str, ignore: tuple[str, ...] = ()) -> None:
    missing = [s for s in provider.scopes if s not in set(granted.split()) and s not in ignore]
    if missing:
        raise CliError(
            f"{provider.label} granted the connection without the scopes {' '.join(missing)}; "
            "nothing was stored",
            Exit.AUTH,
            hint="give the app those scopes (Xero: developer.xero.com/app/manage) and connect again",
        )


# --- Xero tenants ------------------------------------------------------------------------------


def xero_connections(api_url: str, access_token: str, http: httpx.Client) -> list[dict[str, Any]]:
    response = http.get(
        f"{api_url.rstrip('/')}/connections",
        headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
        timeout=15,
    )
    if response.status_code != 200:
        raise CliError(f"Xero's /connections answered {response.status_code}", Exit.AUTH)
    body = response.json()
    return [c for c in body if isinstance(c, dict) and c.get("tenantType", "ORGANISATION") == "ORGANISATION"]


def choose_tenant(
    connections: list[dict[str, Any]], wanted: str | None, ask: Callable[[list[dict[str, Any]]], int] | None
) -> dict[str, Any]:
    if not connections:
        raise CliError(
            "the consent did not include any Xero organisation",
            Exit.AUTH,
            hint="connect again and tick the organisation to connect",
        )
    if wanted:
        needle = wanted.strip().casefold()
        found = [
            c
            for c in connections
            if str(c.get("tenantId", "")).casefold() == needle
            or str(c.get("tenantName", "")).casefold() == needle
        ]
        if len(found) != 1:
            raise CliError(
                f"--tenant {wanted!r} matches {len(found)} of the connected organisations",
                Exit.USAGE,
                hint="one of: "
                + "; ".join(f"{c.get('tenantName')} ({c.get('tenantId')})" for c in connections),
            )
        return found[0]
    if len(connections) == 1:
        return connections[0]
    if ask is None:
        raise CliError(
            f"{len(connections)} Xero organisations were connected; say which with --tenant",
            Exit.USAGE,
            hint="one of: " + "; ".join(f"{c.get('tenantName')} ({c.get('tenantId')})" for c in connections),
        )
    return connections[ask(connections)]
