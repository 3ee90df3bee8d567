"""``connect xero`` / ``connect ignition`` / ``connect ignition-mcp``: authorise once, store the
token set in the stack's secret.

The secrets are the ones the functions read (``XERO_TOKEN_SECRET_ID``, ``IGNITION_API_SECRET_ID``,
``IGNITION_MCP_SECRET_ID``); ``SecretTokenStore.save`` merges, so the client credentials Ignition's
secrets also hold stay.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Required, TypedDict, Unpack

import httpx
from pydantic import ValidationError

from cli.errors import CliError, Exit
from cli.oauth_flow import (
    DEFAULT_REDIRECT_URI,
    Provider,
    authorise,
    choose_tenant,
    client_credentials_grant,
    ignition_mcp_provider,
    ignition_provider,
    xero_connections,
    xero_provider,
)
from cli.target import Target
from shared import aws
from shared.oauth import (
    IGNITION_MCP_TOKEN_LOCK,
    IGNITION_TOKEN_LOCK,
    XERO_TOKEN_LOCK,
    ClientCredentials,
    SecretTokenStore,
    TokenSet,
    TokenStoreError,
    read_client_credentials,
    save_under_lease,
)
from shared.store.locks import DynamoLeaseLock, LockTimeout

# Where a connection without a refresh token is explained (docs/runbook.md, its alarm's section).
RECONNECT_MCP_RUNBOOK = "docs/runbook.md#ignitionmcpauthorisationlost"


def load_credentials_file(path: Path) -> ClientCredentials:
    try:
        return ClientCredentials.model_validate_json(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise CliError(f"{path} does not exist", Exit.USAGE) from None
    except ValidationError:
        raise CliError(f'{path} must hold {{"client_id": ..., "client_secret": ...}}', Exit.USAGE) from None


def store_credentials(secret_id: str, credentials: ClientCredentials) -> None:
    """Write client credentials into a secret, keeping any other keys (Ignition's holds tokens too)."""
    sm = aws.client("secretsmanager")
    try:
        current = json.loads(sm.get_secret_value(SecretId=secret_id).get("SecretString") or "{}")
    except sm.exceptions.ResourceNotFoundException:
        current = {}
    except json.JSONDecodeError:
        current = {}
    if not isinstance(current, dict):
        current = {}
    current.update({"client_id": credentials.client_id, "client_secret": credentials.client_secret})
    sm.put_secret_value(SecretId=secret_id, SecretString=json.dumps(current))


def _credentials(secret_id: str, provider: str, file: Path | None) -> ClientCredentials:
    if file is not None:
        credentials = load_credentials_file(file)
        store_credentials(secret_id, credentials)
        return credentials
    try:
        return read_client_credentials(secret_id, provider=provider)
    except TokenStoreError as exc:
        raise CliError(
            str(exc),
            Exit.CONFIG,
            hint="fill it first (docs/deploy.md, step 6), or pass --credentials-file with the app's "
            "client_id and client_secret",
        ) from None


def _save(target: Target, store: SecretTokenStore, tokens: TokenSet, lock_name: str) -> None:
    """Under the functions' token lock: a refresh in flight finishes first, and one whose lease
    this takes over cannot save the old connection's tokens over the new ones."""
    try:
        save_under_lease(store, tokens, DynamoLeaseLock(target.settings.state_table, lock_name))
    except LockTimeout:
        raise CliError(
            "a token refresh held the lock for over a minute; nothing was saved",
            Exit.ERROR,
            hint="run connect again",
        ) from None


def _summary(provider: Provider, tokens: TokenSet, secret_id: str) -> dict[str, Any]:
    return {
        "provider": provider.name,
        "stored_in": secret_id,
        "tenant_id": tokens.tenant_id,
        "tenant_name": tokens.extra.get("tenant_name"),
        "scopes": tokens.scope.split(),
        "access_token_expires_at": tokens.expires_at,
        "refresh_token": "stored" if tokens.refresh_token else "none",
    }


def connect_xero(
    target: Target,
    *,
    redirect_uri: str = DEFAULT_REDIRECT_URI,
    tenant: str | None = None,
    credentials_file: Path | None = None,
    custom_connection: bool = False,
    opener: Callable[[str], None],
    announce: Callable[[str], None],
    ask: Callable[[list[dict[str, Any]]], int] | None,
    timeout: float = 300.0,
    check_first: bool = True,
    http: httpx.Client | None = None,
    paste: Callable[[], str] | None = None,
    paste_only: bool = False,
    tell: Callable[[str], None] = lambda text: None,
) -> dict[str, Any]:
    config, settings = target.config, target.settings
    mode = config.xero.auth_mode
    if custom_connection and mode != "client_credentials":
        raise CliError(
            f"{target.label} is configured for auth_mode {mode!r}; a Custom Connection needs "
            'runtime.xero.auth_mode "client_credentials"',
            Exit.CONFIG,
            hint="set it in clients/<name>.json and deploy, then connect again",
        )
    if not custom_connection and mode == "client_credentials":
        raise CliError(
            f"{target.label} uses a Xero Custom Connection (auth_mode client_credentials)",
            Exit.USAGE,
            hint="run `connect xero --custom-connection` instead",
        )
    provider = xero_provider(config)
    credentials = _credentials(settings.xero_client_secret_id, "xero", credentials_file)
    client = http or httpx.Client()
    try:
        if custom_connection:
            granted = client_credentials_grant(provider, credentials, client)
        else:
            granted = authorise(
                provider,
                credentials,
                redirect_uri=redirect_uri,
                opener=opener,
                announce=announce,
                timeout=timeout,
                http=client,
                check_first=check_first,
                paste=paste,
                paste_only=paste_only,
                tell=tell,
            )
        connections = xero_connections(config.xero.api_url, granted.access_token, client)
        chosen = choose_tenant(connections, tenant, ask)
    finally:
        if http is None:
            client.close()
    tokens = granted.model_copy(
        update={
            "tenant_id": str(chosen["tenantId"]),
            "extra": {
                "tenant_name": chosen.get("tenantName"),
                "connection_id": chosen.get("id"),
                "connected_at": datetime.now(UTC).isoformat(),
                "connected_by": "cli",
            },
        }
    )
    _save(target, SecretTokenStore(settings.xero_token_secret_id, provider="xero"), tokens, XERO_TOKEN_LOCK)
    return _summary(provider, tokens, settings.xero_token_secret_id)


class FlowOptions(TypedDict, total=False):
    """How the authorization-code flow runs (cli/oauth_flow.py ``authorise``): the browser side."""

    opener: Required[Callable[[str], None]]
    announce: Required[Callable[[str], None]]
    redirect_uri: str
    credentials_file: Path | None
    timeout: float
    check_first: bool
    http: httpx.Client | None
    paste: Callable[[], str] | None
    paste_only: bool
    tell: Callable[[str], None]


def connect_ignition(target: Target, **options: Unpack[FlowOptions]) -> dict[str, Any]:
    """The practice admin whose Reporting API access the sync reads with."""
    provider = ignition_provider(target.config)
    return _connect_by_code(
        target, provider, target.settings.ignition_api_secret_id, IGNITION_TOKEN_LOCK, options
    )


def connect_ignition_mcp(target: Target, **options: Unpack[FlowOptions]) -> dict[str, Any]:
    """The Ignition user whose MCP access writes the invoice drafts (Xero -> Ignition)."""
    secret_id = target.settings.ignition_mcp_secret_id
    if not secret_id:
        raise CliError(
            f"{target.label} has no Ignition MCP secret: Xero -> Ignition is not enabled there",
            Exit.CONFIG,
            hint="set runtime.xero_to_ignition.enabled to true in clients/<name>.json and deploy "
            "(the secret is created only then), then connect again",
        )
    provider = ignition_mcp_provider(target.config)
    summary = _connect_by_code(target, provider, secret_id, IGNITION_MCP_TOKEN_LOCK, options)
    if summary["refresh_token"] == "none":
        # Nothing can renew the access token: the feature stops when it expires, and the alarm
        # IgnitionMcpAuthorisationLost fires on the first draft after that.
        summary["warning"] = (
            "Ignition gave no refresh token: the connection ends when the access token expires "
            f"({summary['access_token_expires_at']:%Y-%m-%d %H:%M} UTC); connect again then "
            f"({RECONNECT_MCP_RUNBOOK})"
        )
    return summary


def _connect_by_code(
    target: Target, provider: Provider, secret_id: str, lock_name: str, options: FlowOptions
) -> dict[str, Any]:
    """The authorization-code flow for an app whose client credentials share the token secret."""
    credentials = _credentials(secret_id, provider.name, options.get("credentials_file"))
    http = options.get("http")
    client = http or httpx.Client()
    try:
        granted = authorise(
            provider,
            credentials,
            redirect_uri=options.get("redirect_uri", DEFAULT_REDIRECT_URI),
            opener=options["opener"],
            announce=options["announce"],
            timeout=options.get("timeout", 300.0),
            http=client,
            check_first=options.get("check_first", True),
            paste=options.get("paste"),
            paste_only=options.get("paste_only", False),
            tell=options.get("tell", lambda text: None),
        )
    finally:
        if http is None:
            client.close()
    tokens = granted.model_copy(
        update={"extra": {"connected_at": datetime.now(UTC).isoformat(), "connected_by": "cli"}}
    )
    _save(target, SecretTokenStore(secret_id, provider=provider.name), tokens, lock_name)
    return _summary(provider, tokens, secret_id)
