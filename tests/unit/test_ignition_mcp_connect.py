"""``python -m cli connect ignition-mcp`` (cli/connect.py) against the MCP emulator's OAuth: the
token set joins the client credentials in the MCP secret, and a server that gives no refresh
token is connected with a warning that says when and how to reconnect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from cli.connect import RECONNECT_MCP_RUNBOOK, connect_ignition_mcp
from cli.errors import CliError, Exit
from cli.target import Target
from sandbox.ignition_emulator import IgnitionEmulator
from sandbox.ignition_mcp import MCP_CLIENT_ID, MCP_CLIENT_SECRET, IgnitionMcpEmulator, runtime_config
from sandbox.server import RunningServer, serve_in_thread
from shared import aws
from shared.config import DeploymentSettings, IntegrationConfig
from tests.markdown_links import REPO, github_anchors

SECRET = "ignition-xero-sync/test/ignition-mcp"
REDIRECT = "http://127.0.0.1:0/callback"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[IgnitionMcpEmulator, RunningServer]]:
    ignition = IgnitionEmulator()
    mcp = IgnitionMcpEmulator(ignition)
    server = serve_in_thread("ignition-mcp-connect", ignition.app)
    yield mcp, server
    server.stop()
    mcp.close()


def _target(url: str, state_table: str, secret_id: str | None) -> Target:
    environment = {
        "CLIENT_NAME": "test",
        "STATE_TABLE_NAME": state_table,
        "IDEMPOTENCY_TABLE_NAME": "idempotency",
        "ARCHIVE_BUCKET_NAME": "archive",
        "SYNC_QUEUE_URL": "https://sqs.example/sync",
        "DLQ_URL": "https://sqs.example/dlq",
        "XERO_CLIENT_SECRET_ID": "xero-client",
        "XERO_TOKEN_SECRET_ID": "xero-token",
        "IGNITION_API_SECRET_ID": "ignition-api",
        "IGNITION_WEBHOOK_SECRET_ID": "ignition-webhook",
        **({"IGNITION_MCP_SECRET_ID": secret_id} if secret_id else {}),
    }
    config = IntegrationConfig.model_validate({"ignition": {"mcp": runtime_config(url)}})
    return Target(
        "stack", "test", DeploymentSettings.from_env(environment), config, environment, "ap-southeast-2"
    )


def _browser(url: str) -> None:
    """A user who consents: the authorisation URL redirects to the CLI's listener."""
    with httpx.Client(timeout=10, trust_env=False) as http:
        http.get(url, follow_redirects=True).raise_for_status()


def _connect(target: Target) -> dict[str, Any]:
    return connect_ignition_mcp(
        target, redirect_uri=REDIRECT, opener=_browser, announce=lambda url: None, timeout=20
    )


@pytest.fixture
def secret(state_table: str) -> str:
    """The MCP secret as the installer leaves it: the OAuth client's credentials only."""
    sm = aws.client("secretsmanager")
    value = json.dumps({"client_id": MCP_CLIENT_ID, "client_secret": MCP_CLIENT_SECRET})
    try:
        sm.create_secret(Name=SECRET, SecretString=value)
    except sm.exceptions.ResourceExistsException:
        sm.put_secret_value(SecretId=SECRET, SecretString=value)
    return SECRET


def _stored() -> dict[str, Any]:
    value: dict[str, Any] = json.loads(
        aws.client("secretsmanager").get_secret_value(SecretId=SECRET)["SecretString"]
    )
    return value


def test_given_a_consenting_user_when_connect_ignition_mcp_then_the_token_set_joins_the_credentials(
    served: tuple[IgnitionMcpEmulator, RunningServer], state_table: str, secret: str
) -> None:
    mcp, server = served
    mcp.issue_refresh_tokens = True

    summary = _connect(_target(server.url, state_table, secret))

    stored = _stored()
    assert (stored["client_id"], stored["client_secret"]) == (MCP_CLIENT_ID, MCP_CLIENT_SECRET)
    assert stored["refresh_token"] and summary["refresh_token"] == "stored" and "warning" not in summary
    answer = httpx.post(
        f"{server.url}/mcp",
        json={
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        headers={
            "Authorization": f"Bearer {stored['access_token']}",
            "Accept": "application/json, text/event-stream",
        },
        trust_env=False,
    )
    assert answer.status_code == 200


def test_given_a_server_without_refresh_tokens_when_connected_then_a_warning_names_the_expiry_and_runbook(
    served: tuple[IgnitionMcpEmulator, RunningServer], state_table: str, secret: str
) -> None:
    mcp, server = served
    mcp.issue_refresh_tokens = False
    try:
        summary = _connect(_target(server.url, state_table, secret))
    finally:
        mcp.issue_refresh_tokens = True

    assert summary["refresh_token"] == "none"
    assert _stored().get("refresh_token") is None
    assert f"{summary['access_token_expires_at']:%Y-%m-%d %H:%M}" in summary["warning"]
    assert RECONNECT_MCP_RUNBOOK in summary["warning"]
    anchor = RECONNECT_MCP_RUNBOOK.split("#", 1)[1]
    assert anchor in github_anchors((REPO / "docs" / "runbook.md").read_text(encoding="utf-8"))


def test_given_the_feature_off_when_connect_ignition_mcp_then_exit_config_saying_how_to_turn_it_on(
    served: tuple[IgnitionMcpEmulator, RunningServer], state_table: str
) -> None:
    _, server = served

    with pytest.raises(CliError) as refused:
        _connect(_target(server.url, state_table, None))

    assert refused.value.code == Exit.CONFIG
    assert "xero_to_ignition" in str(refused.value.hint)
