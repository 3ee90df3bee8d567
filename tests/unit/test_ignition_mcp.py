"""The Ignition MCP client (shared/ignition/mcp.py) against the MCP emulator (sandbox/ignition_mcp.py)
over a local port: the real protocol, the SDK on both sides."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import anyio
import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from sandbox.ignition_emulator import IgnitionEmulator
from sandbox.ignition_mcp import MCP_CLIENT_ID, MCP_CLIENT_SECRET, IgnitionMcpEmulator, McpLimits
from sandbox.server import RunningServer, serve_in_thread
from shared.config import IgnitionMcpConfig
from shared.errors import is_permanent
from shared.ignition.drafts import (
    DraftLine,
    IgnitionMcpAuthError,
    IgnitionMcpRateLimited,
    IgnitionMcpRefused,
    IgnitionMcpUnavailable,
    InvoiceDraftRequest,
)
from shared.ignition.mcp import IgnitionMcpBudget, IgnitionMcpClient, forget_cached_schemas
from shared.oauth import (
    ClientCredentials,
    InMemoryTokenStore,
    RefreshingTokenProvider,
    RefreshOutcome,
    TokenProviderOptions,
    TokenSet,
)
from tests.xero_double import ThreadLock

CLIENT = "cli_acme"
REFERENCE = "INV-0042 · Xero"


@dataclass
class World:
    ignition: IgnitionEmulator
    mcp: IgnitionMcpEmulator
    server: RunningServer

    @property
    def url(self) -> str:
        return self.server.url

    def config(self, **changes: Any) -> IgnitionMcpConfig:
        return IgnitionMcpConfig(
            url=f"{self.url}/mcp",
            authorize_url=f"{self.url}/mcp/oauth/authorize",
            token_url=f"{self.url}/mcp/oauth/token",
            **changes,
        )

    def connected(
        self, *, outcomes: list[RefreshOutcome] | None = None, **changes: Any
    ) -> tuple[IgnitionMcpClient, InMemoryTokenStore]:
        """A client of a user who has just connected (the CLI's connect stored this token set)."""
        granted = self.mcp.issue_token_set()
        store = InMemoryTokenStore(
            TokenSet(
                access_token=granted["access_token"],
                refresh_token=granted.get("refresh_token"),
                expires_at=self.ignition.clock.now() + timedelta(seconds=int(granted["expires_in"])),
            )
        )
        config = self.config(**changes)
        tokens = RefreshingTokenProvider(
            config.token_url,
            ClientCredentials(client_id=MCP_CLIENT_ID, client_secret=MCP_CLIENT_SECRET),
            store,
            ThreadLock(),
            TokenProviderOptions(
                clock=self.ignition.clock.time,
                http=httpx.Client(trust_env=False),
                provider="ignition-mcp",
                on_refresh=outcomes.append if outcomes is not None else None,
            ),
        )
        budget = IgnitionMcpBudget.in_memory(config, clock=self.ignition.clock.time)
        return IgnitionMcpClient(config, tokens, budget), store


@pytest.fixture(scope="module")
def world_module() -> Iterator[World]:
    ignition = IgnitionEmulator()
    mcp = IgnitionMcpEmulator(ignition)
    server = serve_in_thread("ignition-mcp-test", ignition.app)
    yield World(ignition, mcp, server)
    server.stop()
    mcp.close()


@pytest.fixture
def world(world_module: World) -> World:
    world_module.ignition.reset()
    world_module.mcp.limits = McpLimits()
    world_module.mcp.issue_refresh_tokens = True
    world_module.mcp.list_invoices_drafts = False
    forget_cached_schemas()
    answer = world_module.ignition.app.test_client().put(
        f"/_emulator/clients/{CLIENT}?deliver=false",
        json={
            "name": "Acme Pty Ltd",
            "created_at": "2026-01-05T00:00:00Z",
            "updated_at": "2026-01-05T00:00:00Z",
        },
    )
    assert answer.status_code == 201
    return world_module


def _request(reference: str = REFERENCE, *lines: DraftLine) -> InvoiceDraftRequest:
    return InvoiceDraftRequest(
        client_slug=CLIENT,
        currency="AUD",
        reference=reference,
        issue_date=date(2026, 11, 2),
        due_date=date(2026, 11, 30),
        lines=list(lines)
        or [
            DraftLine(
                description="Bookkeeping",
                quantity=Decimal("3"),
                unit_price=Decimal("120.50"),
                tax_rate_id="txr_gst",
            ),
            DraftLine(
                description="Lodgement",
                quantity=Decimal("1"),
                unit_price=Decimal("80"),
                tax_rate_id="txr_gst_free",
            ),
            DraftLine(
                description="Advice",
                quantity=Decimal("1.5"),
                unit_price=Decimal("99.99"),
                tax_rate_id="txr_gst",
                service_id="svc_advisory",
            ),
        ],
        expected_total=Decimal("642.64"),
    )


def _state(world: World) -> dict[str, Any]:
    return world.ignition.state_snapshot()


def _at_start_of_a_minute(world: World) -> None:
    """Limits count in fixed minutes: start a counting test at the start of one."""
    world.ignition.clock.advance(60 - world.ignition.clock.time() % 60 + 0.5)


def test_given_the_emulator_when_the_sdks_own_session_lists_tools_then_it_speaks_mcp_with_input_schemas(
    world: World,
) -> None:
    token = world.mcp.issue_token_set()["access_token"]

    async def listed() -> dict[str, dict[str, Any]]:
        import httpx2

        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, trust_env=False) as http,
            streamable_http_client(f"{world.url}/mcp", http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            initialized = await session.initialize()
            assert initialized.server_info is not None
            result = await session.list_tools()
            return {tool.name: tool.input_schema for tool in result.tools}

    tools = anyio.run(listed)

    assert set(tools) == {
        "create_invoice_draft",
        "get_client",
        "list_invoices",
        "list_tax_rates",
        "list_services",
    }
    assert tools["create_invoice_draft"]["required"] == ["client_id", "currency", "line_items"]


def test_given_no_token_when_the_endpoint_is_called_then_401_with_a_bearer_challenge(world: World) -> None:
    answer = httpx.post(
        f"{world.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, trust_env=False
    )

    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_given_three_lines_with_mixed_gst_when_a_draft_is_created_then_its_total_is_right_to_the_cent(
    world: World,
) -> None:
    client, _ = world.connected()

    created = client.create_invoice_draft(_request())

    (draft,) = _state(world)["invoice_drafts"]
    assert created.draft_id == draft["id"]
    assert created.app_path == f"/invoices/drafts/{draft['id']}"
    # 361.50 + 36.15 GST, 80.00 GST-free, 149.99 (149.985 rounded half up) + 15.00 GST
    assert created.total == Decimal("642.64")
    assert [line["amount"] for line in draft["lines"]] == ["361.50", "80.00", "149.99"]
    assert draft["reference"] == REFERENCE and draft["client_id"] == CLIENT


def test_given_a_bad_argument_when_a_draft_is_created_then_it_is_refused_before_anything_is_sent(
    world: World,
) -> None:
    client, _ = world.connected()
    bad = _request().model_copy(update={"currency": "aud"})  # the schema's pattern is ^[A-Z]{3}$
    client.list_tax_rates()  # the schemas are read (and cached) by an earlier call
    requests_before = _state(world)["mcp"]["requests"]

    with pytest.raises(IgnitionMcpRefused, match="currency") as refused:
        client.create_invoice_draft(bad)

    assert refused.value.category == "ignition_schema"
    state = _state(world)
    assert state["invoice_drafts"] == []
    assert "create_invoice_draft" not in state["mcp"]["tool_calls"]
    # With the schema known, not even a session was opened.
    assert state["mcp"]["requests"] == requests_before


def test_given_the_minute_is_spent_at_ignition_when_called_then_rate_limited_with_its_retry_after(
    world: World,
) -> None:
    world.mcp.limits = McpLimits(per_user_minute=5)
    client, _ = world.connected()
    _at_start_of_a_minute(world)
    client.list_tax_rates()  # 4 requests: initialize, initialized, tools/list, tools/call

    with pytest.raises(IgnitionMcpRateLimited) as limited:
        client.find_drafts(REFERENCE)

    assert 0 < limited.value.retry_after <= 60
    assert _state(world)["mcp"]["rate_limited"] >= 1


def test_given_rate_limited_as_a_tool_error_when_called_then_rate_limited_with_its_retry_after(
    world: World,
) -> None:
    world.mcp.limits = McpLimits(per_user_minute=6, style="tool")
    client, _ = world.connected()
    _at_start_of_a_minute(world)
    client.list_tax_rates()  # 4 requests; the next session's handshake takes the minute to 6

    with pytest.raises(IgnitionMcpRateLimited) as limited:
        client.list_services()

    assert 0 < limited.value.retry_after <= 60
    assert "RATE_LIMITED" in str(limited.value)


def test_given_our_own_budget_is_spent_when_called_then_no_request_is_made(world: World) -> None:
    client, _ = world.connected(requests_per_minute=3, budget_max_inline_wait_seconds=0)
    _at_start_of_a_minute(world)
    before = _state(world)["mcp"]["requests"]

    with pytest.raises(IgnitionMcpRateLimited) as limited:
        client.list_tax_rates()  # needs 4

    assert limited.value.retry_after > 0
    # The handshake and tools/list went out; the budget refused the tools/call.
    assert _state(world)["mcp"]["requests"] - before == 3


def test_given_calls_when_made_then_the_budget_counts_exactly_the_requests_ignition_counted(
    world: World,
) -> None:
    client, _ = world.connected()
    _at_start_of_a_minute(world)
    before = _state(world)["mcp"]["requests"]

    client.list_tax_rates()
    client.list_services()
    client.create_invoice_draft(_request())
    client.find_drafts(REFERENCE)

    assert client.budget.used() == _state(world)["mcp"]["requests"] - before == 4 + 3 + 3 + 3


def test_given_an_expired_access_token_when_called_then_it_rotates_and_the_old_refresh_token_is_spent(
    world: World,
) -> None:
    outcomes: list[RefreshOutcome] = []
    client, store = world.connected(outcomes=outcomes)
    first = store.load()
    assert first is not None and first.refresh_token
    world.ignition.clock.advance(2 * 3600)

    assert client.list_tax_rates()

    second = store.load()
    assert second is not None
    assert outcomes == ["refreshed"]
    assert second.refresh_token and second.refresh_token != first.refresh_token
    reused = httpx.post(
        f"{world.url}/mcp/oauth/token",
        data={"grant_type": "refresh_token", "refresh_token": first.refresh_token},
        auth=(MCP_CLIENT_ID, MCP_CLIENT_SECRET),
        trust_env=False,
    )
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"


def test_given_the_user_revoked_the_app_when_called_then_an_auth_error_says_how_to_reconnect(
    world: World,
) -> None:
    outcomes: list[RefreshOutcome] = []
    client, _ = world.connected(outcomes=outcomes)
    world.mcp.revoke_user()

    with pytest.raises(IgnitionMcpAuthError) as lost:
        client.list_services()

    assert "connect" in str(lost.value)
    assert outcomes == ["authorisation_lost"]


def test_given_a_server_that_gives_no_refresh_token_when_the_access_token_expires_then_authorisation_is_lost(
    world: World,
) -> None:
    world.mcp.issue_refresh_tokens = False
    outcomes: list[RefreshOutcome] = []
    client, store = world.connected(outcomes=outcomes)
    stored = store.load()
    assert stored is not None and stored.refresh_token is None
    world.ignition.clock.advance(3600)

    with pytest.raises(IgnitionMcpAuthError, match="no refresh token"):
        client.list_tax_rates()

    assert outcomes == ["authorisation_lost"]


def test_given_drafts_with_similar_references_when_found_by_reference_then_only_the_exact_one(
    world: World,
) -> None:
    world.mcp.list_invoices_drafts = True  # the lenient reading: list_invoices shows drafts
    client, _ = world.connected()
    wanted = client.create_invoice_draft(_request())
    client.create_invoice_draft(_request(f"{REFERENCE} (copy)"))

    found = client.find_drafts(REFERENCE)

    assert [(f.draft_id, f.state, f.client_slug, f.app_path) for f in found] == [
        (wanted.draft_id, "draft", CLIENT, wanted.app_path)
    ]
    assert client.find_drafts("INV-9999") == []


def test_given_the_stricter_reading_when_a_draft_is_looked_up_then_only_once_finished_is_it_found(
    world: World,
) -> None:
    client, _ = world.connected()
    created = client.create_invoice_draft(_request())

    unfinished = client.find_drafts(REFERENCE)
    listed = httpx.post(
        f"{world.url}/_emulator/mcp/readings", json={"list_invoices_drafts": True}, trust_env=False
    ).json()
    lenient = client.find_drafts(REFERENCE)
    world.mcp.list_invoices_drafts = False
    httpx.post(f"{world.url}/_emulator/invoice-drafts/{created.draft_id}/finalise", trust_env=False)
    finished = client.find_drafts(REFERENCE)

    assert unfinished == []
    assert listed == {"list_invoices_drafts": True}
    assert [f.draft_id for f in lenient] == [created.draft_id]
    assert [f.state for f in finished] == ["awaiting_payment"]


def test_given_a_draft_when_a_person_finishes_it_then_a_new_slug_invoice_is_in_the_reporting_api(
    world: World,
) -> None:
    client, _ = world.connected()
    created = client.create_invoice_draft(_request())

    finished = httpx.post(
        f"{world.url}/_emulator/invoice-drafts/{created.draft_id}/finalise", trust_env=False
    )

    assert finished.status_code == 200
    slug = finished.json()["invoice"]["slug"]
    assert slug != created.draft_id
    token = world.ignition.issue_token_set()["access_token"]
    listed = httpx.get(
        f"{world.url}/external/api/v1/reporting/invoices/{slug}",
        params={"date_from": "2026-01-01", "date_to": "2026-12-31"},
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
    ).json()
    assert listed["reference"] == REFERENCE
    assert listed["reference_number"].startswith("INV-")
    assert listed["amount"] == {"total": "642.64", "currency": "AUD"}
    assert [item["tax_rate"] for item in listed["items"]] == ["10", "0", "10"]
    (draft,) = _state(world)["invoice_drafts"]
    assert draft["state"] == "finalised" and draft["invoice_slug"] == slug
    assert [(f.draft_id, f.state) for f in client.find_drafts(REFERENCE)] == [(slug, "awaiting_payment")]
    again = httpx.post(f"{world.url}/_emulator/invoice-drafts/{created.draft_id}/finalise", trust_env=False)
    assert again.status_code == 409


def test_given_an_unknown_tax_rate_when_a_draft_is_created_then_ignitions_refusal_is_reported(
    world: World,
) -> None:
    client, _ = world.connected()
    line = DraftLine(description="Work", quantity=Decimal(1), unit_price=Decimal(10), tax_rate_id="txr_vat")

    with pytest.raises(IgnitionMcpRefused, match="txr_vat"):
        client.create_invoice_draft(_request(REFERENCE, line))

    assert _state(world)["invoice_drafts"] == []


def test_given_a_price_no_json_number_holds_exactly_when_encoded_then_refused_before_sending(
    world: World,
) -> None:
    client, _ = world.connected()
    line = DraftLine(
        description="Work",
        quantity=Decimal(1),
        unit_price=Decimal("0.10000000000000000001"),
        tax_rate_id=None,
    )

    with pytest.raises(IgnitionMcpRefused, match="exactly"):
        client.create_invoice_draft(_request(REFERENCE, line))

    assert _state(world)["mcp"]["tool_calls"].get("create_invoice_draft") is None


def test_given_a_config_naming_a_tool_the_user_cannot_see_when_called_then_refused_with_the_listed_ones(
    world: World,
) -> None:
    client, _ = world.connected(tools={"list_services": "list_service_items"})

    with pytest.raises(IgnitionMcpRefused, match="list_service_items") as refused:
        client.list_services()

    assert refused.value.category == "ignition_tool_missing"
    assert "list_tax_rates" in str(refused.value)


def test_given_tax_rates_when_listed_twice_then_the_second_comes_from_the_process_cache(world: World) -> None:
    client, _ = world.connected()

    first = client.list_tax_rates()
    second = client.list_tax_rates()

    assert first == second
    assert {(r.name, r.rate) for r in first} >= {("GST", Decimal(10)), ("GST Free", Decimal(0))}
    assert _state(world)["mcp"]["tool_calls"]["list_tax_rates"] == 1


def test_given_the_server_unreachable_when_called_then_unavailable_and_retried_later(world: World) -> None:
    client, _ = world.connected()
    down = IgnitionMcpClient(
        world.config(timeout_seconds=2).model_copy(update={"url": "http://127.0.0.1:9/mcp"}),
        client.tokens,
        client.budget,
    )

    with pytest.raises(IgnitionMcpUnavailable, match="unreachable") as failed:
        down.list_services()

    assert is_permanent(failed.value) is False
