"""``connect xero`` / ``connect ignition`` through the emulators' authorize and token endpoints."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse, urlunparse

import httpx
import pytest

from cli.errors import Exit
from sandbox.environment import Sandbox
from shared.oauth import XERO_TOKEN_LOCK
from shared.store.locks import DynamoLeaseLock
from tests.integration.test_cli_support import (
    CliRun,
    browser,
    put_secret,
    run_cli,
    secret_value,
    write_sandbox_file,
)

pytestmark = pytest.mark.integration

REDIRECT = "http://127.0.0.1:0/callback"


@pytest.fixture
def sandbox_file(sandbox: Sandbox, tmp_path: Path) -> Path:
    return write_sandbox_file(sandbox, tmp_path / "sandbox.json")


@pytest.fixture
def secrets_restored(sandbox: Sandbox) -> Iterator[dict[str, str]]:
    """The live sync shares these secrets: put them back as they were after each test."""
    assert sandbox.resources is not None
    ids = {
        "xero_token": sandbox.resources.xero_token_secret,
        "xero_client": sandbox.resources.xero_client_secret,
        "ignition_api": sandbox.resources.ignition_api_secret,
    }
    saved = {name: secret_value(secret_id) for name, secret_id in ids.items()}
    yield ids
    for name, secret_id in ids.items():
        put_secret(secret_id, saved[name])


def _connections(xero_url: str, access_token: str) -> list[dict[str, str]]:
    response = httpx.get(f"{xero_url}/connections", headers={"Authorization": f"Bearer {access_token}"})
    response.raise_for_status()
    body: list[dict[str, str]] = response.json()
    return body


def test_given_a_consenting_admin_when_connect_xero_then_the_token_set_and_tenant_are_stored(
    sandbox: Sandbox, sandbox_file: Path, secrets_restored: dict[str, str]
) -> None:
    before = secret_value(secrets_restored["xero_token"])
    seen: list[str] = []

    def consent(url: str) -> None:
        seen.append(url)
        browser(url)

    run = run_cli(
        "connect", "xero", "--redirect-uri", REDIRECT, "--json", sandbox_file=sandbox_file, opener=consent
    )

    assert run.code == Exit.OK, run.stderr
    stored = secret_value(secrets_restored["xero_token"])
    assert stored["tenant_id"] == sandbox.xero.tenant_id
    assert stored["extra"]["tenant_name"] == sandbox.xero.tenant_name
    assert stored["refresh_token"] and stored["refresh_token"] != before["refresh_token"]
    assert {"offline_access", "accounting.contacts", "accounting.invoices", "accounting.payments"} <= set(
        stored["scope"].split()
    )
    # The stored access token works, and nothing secret was printed.
    assert _connections(sandbox.xero_url, stored["access_token"])[0]["tenantId"] == sandbox.xero.tenant_id
    for secret in (stored["access_token"], stored["refresh_token"], "sandbox-client-secret"):
        assert secret not in run.stdout + run.stderr
    query = parse_qs(urlparse(seen[0]).query)
    assert query["code_challenge_method"] == ["S256"] and query["state"][0]
    assert run.json()["tenant_id"] == sandbox.xero.tenant_id


def test_given_a_token_refresh_holding_the_lock_when_connect_xero_then_it_saves_only_after_the_lock_is_free(
    sandbox: Sandbox, sandbox_file: Path, secrets_restored: dict[str, str]
) -> None:
    assert sandbox.resources is not None
    refresh = DynamoLeaseLock(sandbox.resources.state_table, XERO_TOKEN_LOCK, lease_seconds=30)
    refresh.acquire()  # a sync worker mid-refresh
    released_at: list[float] = []

    def finish_refresh() -> None:
        time.sleep(2.0)
        released_at.append(time.monotonic())
        refresh.release()

    finisher = threading.Thread(target=finish_refresh)
    finisher.start()
    try:
        run = run_cli(
            "connect", "xero", "--redirect-uri", REDIRECT, "--json", sandbox_file=sandbox_file, opener=browser
        )
        finished_at = time.monotonic()
    finally:
        finisher.join()

    assert run.code == Exit.OK, run.stderr
    assert released_at and finished_at >= released_at[0]  # it waited for the refresh's lease
    assert secret_value(secrets_restored["xero_token"])["tenant_id"] == sandbox.xero.tenant_id


def test_given_consent_denied_when_connect_xero_then_exit_auth_and_the_secret_is_unchanged(
    sandbox_file: Path, secrets_restored: dict[str, str]
) -> None:
    before = secret_value(secrets_restored["xero_token"])

    def deny(url: str) -> None:
        # Xero sends the person back with error=access_denied and the same state.
        query = parse_qs(urlparse(url).query)
        redirect = query["redirect_uri"][0]
        httpx.get(f"{redirect}?{urlencode({'error': 'access_denied', 'state': query['state'][0]})}")

    run = run_cli("connect", "xero", "--redirect-uri", REDIRECT, sandbox_file=sandbox_file, opener=deny)

    assert run.code == Exit.AUTH
    assert "consent was denied" in run.stderr
    assert secret_value(secrets_restored["xero_token"]) == before


def test_given_the_app_lacks_a_scope_when_connect_xero_then_exit_auth_naming_it(
    sandbox_file: Path, secrets_restored: dict[str, str]
) -> None:
    before = secret_value(secrets_restored["xero_token"])

    def consent_without_payments(url: str) -> None:
        parts = urlparse(url)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["scope"] = query["scope"].replace("accounting.payments", "").strip()
        browser(urlunparse(parts._replace(query=urlencode(query))))

    run = run_cli(
        "connect",
        "xero",
        "--redirect-uri",
        REDIRECT,
        sandbox_file=sandbox_file,
        opener=consent_without_payments,
    )

    assert run.code == Exit.AUTH
    assert "without the scopes accounting.payments" in run.stderr
    assert secret_value(secrets_restored["xero_token"]) == before


def test_given_an_unregistered_redirect_uri_when_connect_xero_then_exit_auth_before_waiting(
    sandbox: Sandbox, sandbox_file: Path, secrets_restored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sandbox.xero, "_redirect_uris", frozenset({"http://localhost:8765/callback"}))
    opened: list[str] = []

    run = run_cli(
        "connect",
        "xero",
        "--redirect-uri",
        REDIRECT,
        "--timeout",
        "5",
        sandbox_file=sandbox_file,
        opener=opened.append,
    )

    assert run.code == Exit.AUTH
    assert "not registered" in run.stderr and "hint: add exactly http://127.0.0.1:" in run.stderr
    assert opened == []  # nobody was sent to a page that cannot work


def test_given_a_practice_admin_when_connect_ignition_then_tokens_join_the_client_credentials(
    sandbox: Sandbox, sandbox_file: Path, secrets_restored: dict[str, str]
) -> None:
    before = secret_value(secrets_restored["ignition_api"])

    run = run_cli(
        "connect", "ignition", "--redirect-uri", REDIRECT, sandbox_file=sandbox_file, opener=browser
    )

    assert run.code == Exit.OK, run.stderr
    stored = secret_value(secrets_restored["ignition_api"])
    assert stored["client_id"] == before["client_id"] and stored["client_secret"] == before["client_secret"]
    assert stored["access_token"] != before["access_token"] and stored["refresh_token"]
    response = httpx.get(
        f"{sandbox.ignition_url}/external/api/v1/reporting/clients",
        headers={"Authorization": f"Bearer {stored['access_token']}"},
    )
    assert response.status_code == 200


def test_given_a_custom_connection_when_connect_xero_then_client_credentials_and_tenant_are_stored(
    sandbox: Sandbox, tmp_path: Path, secrets_restored: dict[str, str]
) -> None:
    sandbox_file = write_sandbox_file(
        sandbox, tmp_path / "sandbox.json", xero={"auth_mode": "client_credentials"}
    )
    credentials = tmp_path / "xero-client.json"
    credentials.write_text('{"client_id": "sandbox-client-id", "client_secret": "sandbox-client-secret"}')

    run = run_cli(
        "connect",
        "xero",
        "--custom-connection",
        "--credentials-file",
        str(credentials),
        sandbox_file=sandbox_file,
    )

    assert run.code == Exit.OK, run.stderr
    stored = secret_value(secrets_restored["xero_token"])
    assert stored["tenant_id"] == sandbox.xero.tenant_id
    assert not stored.get("refresh_token")
    assert secret_value(secrets_restored["xero_client"])["client_id"] == "sandbox-client-id"


def test_given_an_oauth_stack_when_connect_xero_custom_connection_then_exit_config(
    sandbox_file: Path,
) -> None:
    run = run_cli("connect", "xero", "--custom-connection", sandbox_file=sandbox_file)

    assert run.code == Exit.CONFIG
    assert "client_credentials" in run.stderr


class _AdminElsewhere:
    """The Xero admin on another computer: opens the URL the operator sent, consents, and sends
    back the address their browser ended on (nothing listens there on their machine)."""

    def __init__(self, redirect_prefix: str, tamper: dict[str, str] | None = None) -> None:
        self.redirect_prefix = redirect_prefix
        self.tamper = tamper or {}
        self.address = ""

    def consent(self, url: str) -> None:
        with httpx.Client(timeout=10) as http:
            response = http.get(url)
            while response.is_redirect:
                location = response.headers["location"]
                if location.startswith(self.redirect_prefix):
                    break
                response = http.get(location)
            assert response.is_redirect, response.text
        parsed = urlparse(location)
        query = {k: v[0] for k, v in parse_qs(parsed.query).items()} | self.tamper
        self.address = urlunparse(parsed._replace(query=urlencode(query)))

    # What the CLI reads the pasted address from (standard input, not a terminal here).
    def readline(self) -> str:
        return self.address + "\n"

    def isatty(self) -> bool:
        return False


# The registered redirect URI of the paste tests; nothing listens on it here.
PASTED_REDIRECT = "http://localhost:8765/callback"


def _connect_xero_pasting(
    admin: _AdminElsewhere,
    sandbox_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    opener: Callable[[str], None] | None = None,
) -> CliRun:
    """``connect xero --paste``: the admin elsewhere consents (``opener``, by default as asked)
    and the operator pastes the address the admin sent back."""
    monkeypatch.setattr("sys.stdin", admin)
    return run_cli(
        "connect",
        "xero",
        "--paste",
        "--redirect-uri",
        admin.redirect_prefix,
        sandbox_file=sandbox_file,
        opener=opener or admin.consent,
    )


def test_given_an_admin_on_another_computer_when_connect_xero_paste_then_the_pasted_redirect_connects(
    sandbox: Sandbox, sandbox_file: Path, secrets_restored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    redirect = PASTED_REDIRECT
    admin = _AdminElsewhere(redirect)

    run = _connect_xero_pasting(admin, sandbox_file, monkeypatch)

    assert run.code == Exit.OK, run.stderr
    assert "Send this URL to the admin" in run.stderr and "whole address" in run.stderr
    assert admin.address.startswith(f"{redirect}?") and "code=" in admin.address
    stored = secret_value(secrets_restored["xero_token"])
    assert stored["tenant_id"] == sandbox.xero.tenant_id
    assert _connections(sandbox.xero_url, stored["access_token"])[0]["tenantId"] == sandbox.xero.tenant_id


@pytest.mark.parametrize(
    ("tamper", "said"),
    [
        ({"state": "forged"}, "the redirect carried another state"),
        ({"code": ""}, "it has no code and state"),
    ],
)
def test_given_a_pasted_redirect_with_a_wrong_state_or_no_code_when_connect_then_exit_auth_nothing_stored(
    tamper: dict[str, str],
    said: str,
    sandbox: Sandbox,
    sandbox_file: Path,
    secrets_restored: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = secret_value(secrets_restored["xero_token"])
    admin = _AdminElsewhere(PASTED_REDIRECT, tamper)

    run = _connect_xero_pasting(admin, sandbox_file, monkeypatch)

    assert run.code == Exit.AUTH
    assert said in run.stderr
    assert secret_value(secrets_restored["xero_token"]) == before


def test_given_a_pasted_address_for_another_redirect_when_connect_xero_then_exit_auth_naming_both(
    sandbox_file: Path, secrets_restored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = _AdminElsewhere(PASTED_REDIRECT)

    def consent_elsewhere(url: str) -> None:
        admin.consent(url)
        admin.address = admin.address.replace("localhost:8765", "evil.test")

    run = _connect_xero_pasting(admin, sandbox_file, monkeypatch, opener=consent_elsewhere)

    assert run.code == Exit.AUTH
    assert "a redirect to http://evil.test/callback, not to http://localhost:8765/callback" in run.stderr


def test_given_the_redirect_port_is_taken_when_connect_xero_then_it_falls_back_to_the_pasted_address(
    sandbox: Sandbox, sandbox_file: Path, secrets_restored: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:  # another program holds the registered redirect's port
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        redirect = f"http://127.0.0.1:{taken.getsockname()[1]}/callback"
        admin = _AdminElsewhere(redirect)
        monkeypatch.setattr("sys.stdin", admin)

        run = run_cli(
            "connect", "xero", "--redirect-uri", redirect, sandbox_file=sandbox_file, opener=admin.consent
        )

    assert run.code == Exit.OK, run.stderr
    assert "cannot listen on 127.0.0.1" in run.stderr and "read from here instead" in run.stderr
    assert secret_value(secrets_restored["xero_token"])["tenant_id"] == sandbox.xero.tenant_id
