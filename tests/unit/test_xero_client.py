"""XeroClient against the Xero emulator in-process (tests/xero_double.py): 401 on expired tokens,
429 with Retry-After, 503 plain text, Idempotency-Key replay, summarizeErrors."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest

from shared.errors import is_permanent
from shared.models.xero import Contact
from shared.oauth import InMemoryTokenStore
from shared.xero.budget import BudgetExhausted
from shared.xero.client import XeroCall, format_if_modified_since
from shared.xero.errors import (
    XeroAuthError,
    XeroRateLimited,
    XeroRequestError,
    XeroTokenRejected,
    XeroUnavailable,
    XeroValidationError,
)
from shared.xero.where import where_all, where_any, where_eq, where_eq_ignore_case, where_safe
from tests.xero_double import CLIENT_SECRET, TENANT_ID, WireFault, XeroDouble


class World:
    def __init__(self, **config: Any) -> None:
        self.xero = XeroDouble()
        self.clock = self.xero.clock
        self.store = InMemoryTokenStore(self.xero.token_set())
        self.calls: list[XeroCall] = []
        self.tokens = self.xero.refreshing_tokens(self.store)
        self.client = self.xero.client(self.tokens, on_call=self.calls.append, **config)

    def statuses(self) -> list[int | None]:
        return [c.status for c in self.calls]

    def contact_names(self) -> list[str]:
        return [c["Name"] for c in self.xero.records("Contacts")]


@pytest.fixture
def world() -> World:
    return World()


def test_given_a_call_then_bearer_token_tenant_and_accept_headers_are_sent(world: World) -> None:
    world.client.find_contacts()

    request = world.xero.api_requests()[0]
    stored = world.store.load()
    assert stored is not None
    assert request.headers["Authorization"] == f"Bearer {stored.access_token}"
    assert request.headers["xero-tenant-id"] == TENANT_ID
    assert request.headers["Accept"] == "application/json"
    assert "Idempotency-Key" not in request.headers  # reads need none
    assert world.calls[0].endpoint == "/Contacts" and world.calls[0].min_remaining == 59


def test_given_xero_expired_the_token_early_when_called_then_one_refresh_and_the_new_token_is_used(
    world: World,
) -> None:
    world.xero.seed("Contacts", {"Name": "Ada"})
    # A minute on, Xero expires every token at least a second old: the one in hand, not its successor.
    world.clock.advance(60)
    world.xero.fault_profile(expire_tokens=True, expire_rate=1.0, min_token_age_seconds=1)

    contacts = world.client.find_contacts()

    assert [c.Name for c in contacts] == ["Ada"]
    assert world.xero.refreshes == 1
    first, second = world.xero.api_requests()
    assert first.headers["Authorization"] != second.headers["Authorization"]
    stored = world.store.load()
    assert stored is not None and second.headers["Authorization"] == f"Bearer {stored.access_token}"
    assert world.statuses() == [401, 200]


def test_given_token_expired_even_after_a_successful_refresh_then_a_transient_error_after_exactly_one_refresh(
    world: World,
) -> None:
    # A withdrawn connection fails the refresh itself (invalid_grant); a TokenExpired right after a
    # successful refresh is a token replaced or expired in between: a fault to retry, not a verdict.
    world.xero.fault_profile(expire_tokens=True, expire_rate=1.0, min_token_age_seconds=0)

    with pytest.raises(XeroTokenRejected) as caught:
        world.client.find_contacts()

    assert caught.value.transient is True
    assert is_permanent(caught.value) is False
    assert world.xero.refreshes == 1
    assert world.statuses() == [401, 401]


def test_given_429_with_short_retry_after_then_client_waits_that_long_and_succeeds(world: World) -> None:
    world.xero.fail_next(429, retry_after=7, problem="minute")

    world.client.find_contacts()

    assert world.clock.sleeps == [7.0]
    assert world.statuses() == [429, 200]
    assert world.calls[0].rate_limit_problem == "minute"


def test_given_429_with_retry_after_beyond_inline_wait_then_rate_limited_without_sleeping(
    world: World,
) -> None:
    world.xero.fail_next(429, retry_after=45, problem="minute")

    with pytest.raises(XeroRateLimited) as caught:
        world.client.find_contacts()

    assert caught.value.retry_after == 45 and caught.value.problem == "minute" and caught.value.transient
    assert world.clock.sleeps == []


def test_given_day_limit_429_then_never_sleeps_even_for_a_short_retry_after(world: World) -> None:
    world.xero.fail_next(429, retry_after=3, problem="day")

    with pytest.raises(XeroRateLimited) as caught:
        world.client.find_contacts()

    assert caught.value.problem == "day"
    assert world.clock.sleeps == []
    assert len(world.xero.api_requests()) == 1


def test_given_503_plain_text_then_retried_and_succeeds(world: World) -> None:
    world.xero.fail_next(503)  # Xero's plain-text maintenance page

    world.client.find_contacts()

    assert world.statuses() == [503, 200]
    assert world.clock.sleeps == [0.5]


def test_given_persistent_5xx_then_unavailable_after_max_attempts_with_bounded_backoff() -> None:
    world = World(max_attempts=6, max_inline_wait_seconds=300)
    world.xero.fail_next(500, count=10)

    with pytest.raises(XeroUnavailable) as caught:
        world.client.find_contacts()

    assert caught.value.transient and caught.value.status == 500
    assert len(world.xero.api_requests()) == 6
    assert world.clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]  # full jitter's ceiling, capped at 8 s


def test_given_backoff_would_exceed_inline_wait_then_gives_up_early_for_the_queue() -> None:
    world = World(max_attempts=10, max_inline_wait_seconds=3)
    world.xero.fail_next(502, count=10)

    with pytest.raises(XeroUnavailable):
        world.client.find_contacts()

    assert sum(world.clock.sleeps) <= 3
    assert world.clock.sleeps == [0.5, 1.0]


def test_given_lost_response_to_a_post_when_retried_then_same_idempotency_key_and_one_contact(
    world: World,
) -> None:
    world.xero.wire_faults.append(WireFault("lost"))

    saved = world.client.save_contacts([Contact(Name="Ada Lovelace", ContactNumber="cli_1")])

    posts = [r for r in world.xero.api_requests() if r.method == "POST"]
    assert len(posts) == 2
    keys = {r.headers["Idempotency-Key"] for r in posts}
    assert len(keys) == 1 and 0 < len(keys.pop()) <= 128
    assert [c["ContactID"] for c in world.xero.records("Contacts")] == [str(saved[0].ContactID)]
    assert world.statuses() == [None, 200] and world.calls[0].error == "ReadTimeout"


def test_given_caller_idempotency_key_then_it_is_sent_verbatim_and_too_long_keys_are_refused(
    world: World,
) -> None:
    world.client.save_contacts([Contact(Name="Ada")], idempotency_key="sync:cli_1:v3")

    assert world.xero.api_requests()[0].headers["Idempotency-Key"] == "sync:cli_1:v3"
    with pytest.raises(ValueError, match="Idempotency-Key"):
        world.client.save_contacts([Contact(Name="Bob")], idempotency_key="k" * 129)


def test_given_batch_with_a_bad_element_when_saved_then_each_element_comes_back_in_order(
    world: World,
) -> None:
    world.xero.seed("Contacts", {"Name": "Taken Pty Ltd"})

    result = world.client.save_contacts(
        [Contact(Name="Fresh Co"), Contact(Name="Taken Pty Ltd"), Contact(Name="Other Co")]
    )

    request = world.xero.api_requests()[0]
    assert request.url.params["summarizeErrors"] == "false"
    assert [c.Name for c in result] == ["Fresh Co", "Taken Pty Ltd", "Other Co"]
    assert result[0].ContactID and result[2].ContactID and not result[0].ValidationErrors
    assert result[1].ValidationErrors and "already assigned" in result[1].ValidationErrors[0].Message
    assert json.loads(request.content)["Contacts"][0] == {"Name": "Fresh Co"}


def test_given_existing_contact_when_create_contacts_put_then_per_element_error(world: World) -> None:
    [existing] = world.xero.seed("Contacts", {"Name": "Ada"})

    result = world.client.create_contacts([Contact(ContactID=existing["ContactID"], Name="Ada")])

    assert world.xero.api_requests()[0].method == "PUT"
    assert result[0].HasValidationErrors is True


def test_given_validation_exception_400_then_validation_error_with_per_element_messages(world: World) -> None:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"Name": "x", "ValidationErrors": [{"Message": "Email address must be valid."}]}],
    }
    world.xero.fail_next(400, body=json.dumps(body))

    with pytest.raises(XeroValidationError) as caught:
        world.client.save_contacts([Contact(Name="x", EmailAddress="nope")])

    assert caught.value.messages == ["Email address must be valid."]
    assert caught.value.transient is False
    assert caught.value.elements[0]["Name"] == "x"


def test_given_reused_key_with_different_body_then_permanent_request_error(world: World) -> None:
    world.client.save_contacts([Contact(Name="Ada")], idempotency_key="same")

    with pytest.raises(XeroRequestError, match="Idempotency") as caught:
        world.client.save_contacts([Contact(Name="Bob")], idempotency_key="same")

    assert caught.value.status == 400 and is_permanent(caught.value)
    assert world.contact_names() == ["Ada"]


def test_given_where_helpers_then_unsafe_text_is_refused_and_clauses_joined() -> None:
    # XeroAPI/Xero-Java#347: a `"` inside a where literal is a QueryParseException; no escape works.
    for unsafe in ('A "B"', 'A ""B""', "ends with \\", "line\nbreak"):
        assert not where_safe(unsafe)
        with pytest.raises(ValueError):
            where_eq("Name", unsafe)
    assert where_safe("O'Brien & Co 🦘")
    assert where_eq("Name", "O'Brien & Co 🦘") == 'Name=="O\'Brien & Co 🦘"'
    # calcinai/xero-php#416: == may be case-sensitive; Xero support advised ToLower().
    assert where_eq_ignore_case("EmailAddress", "HELLO@Bright.test") == (
        'EmailAddress!=null AND EmailAddress.ToLower()=="hello@bright.test"'
    )
    assert where_eq("IsCustomer", True) == "IsCustomer==true"
    assert where_eq("ContactID", UUID(int=1)) == 'ContactID==Guid("00000000-0000-0000-0000-000000000001")'
    assert where_any(where_eq("Name", "a"), "", where_eq("EmailAddress", "b")) == (
        '(Name=="a") OR (EmailAddress=="b")'
    )
    assert where_all(where_eq("Name", "a")) == 'Name=="a"'
    with pytest.raises(ValueError):
        where_eq('Name=="x" OR 1', "y")


def test_given_250_contacts_when_iterating_then_three_pages_are_fetched(world: World) -> None:
    world.xero.seed("Contacts", *({"Name": f"Contact {i:03}"} for i in range(250)))

    names = [c.Name for c in world.client.iter_contacts(page_size=100)]

    assert len(names) == 250 and len(set(names)) == 250
    assert [r.url.params["page"] for r in world.xero.api_requests()] == ["1", "2", "3"]


def test_given_modified_since_and_filters_then_xero_query_parameters_are_sent(world: World) -> None:
    since = datetime(2026, 1, 1, 10, 30, 15, 999_000, tzinfo=UTC)

    world.client.find_contacts(
        ids=["a", "b"], page=2, page_size=50, include_archived=True, summary_only=True, modified_since=since
    )

    request = world.xero.api_requests()[0]
    assert request.headers["If-Modified-Since"] == "2026-01-01T10:30:15"
    assert dict(request.url.params) == {
        "IDs": "a,b",
        "page": "2",
        "pageSize": "50",
        "includeArchived": "true",
        "summaryOnly": "true",
    }
    with pytest.raises(ValueError):
        format_if_modified_since(datetime(2026, 1, 1))


def test_given_contact_id_or_number_when_get_contact_then_found_or_none(world: World) -> None:
    # "#" and "?" would end the path if sent as they are.
    [ada] = world.xero.seed("Contacts", {"Name": "Ada", "ContactNumber": "cli #1?"})

    by_id = world.client.get_contact(ada["ContactID"])
    by_number = world.client.get_contact("cli #1?")
    missing = world.client.get_contact("cli_404")

    assert by_id is not None and by_id.Name == "Ada"
    assert by_number is not None and by_number.ContactID == ada["ContactID"]
    assert missing is None
    assert [c.endpoint for c in world.calls] == [
        "/Contacts/{ContactID}",
        "/Contacts/{ContactNumber}",
        "/Contacts/{ContactNumber}",
    ]
    assert world.xero.api_requests()[1].url.raw_path.endswith(b"/Contacts/cli%20%231%3F")


def test_given_connections_then_tenants_are_listed_from_the_identity_api(world: World) -> None:
    connections = world.client.connections()

    assert connections[0]["tenantId"] == TENANT_ID
    assert world.xero.api_requests()[0].url.path == "/connections"


def test_given_wrong_tenant_then_permanent_auth_error(world: World) -> None:
    client = world.xero.client(world.tokens, tenant_id="not-our-tenant")

    with pytest.raises(XeroAuthError) as caught:
        client.find_contacts()

    assert caught.value.status == 403 and world.xero.refreshes == 0


def test_given_budget_spent_then_client_raises_rate_limited_before_calling_xero() -> None:
    world = World(calls_per_minute=2, max_inline_wait_seconds=0)
    world.client.find_contacts()
    world.client.find_contacts()

    with pytest.raises(XeroRateLimited) as caught:
        world.client.find_contacts()

    assert isinstance(caught.value, BudgetExhausted)
    assert len(world.xero.api_requests()) == 2


def test_given_unknown_4xx_then_permanent_request_error(world: World) -> None:
    world.xero.fail_next(413, body="too big")

    with pytest.raises(XeroRequestError) as caught:
        world.client.find_contacts()

    assert caught.value.status == 413 and not caught.value.transient


def test_given_any_failure_then_no_token_appears_in_logs_or_errors(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    first = world.store.load()
    # A 401 (Xero expires the token early) and its refresh, then a 503, a timeout and a 500.
    world.clock.advance(60)
    world.xero.fault_profile(expire_tokens=True, expire_rate=1.0, min_token_age_seconds=1)
    client = world.xero.client(world.tokens, max_attempts=3)
    with caplog.at_level(logging.DEBUG, logger="shared"):
        client.find_contacts()
        world.xero.fault_profile()
        world.xero.wire_faults.append(WireFault("timeout"))
        world.xero.fail_next(503)
        world.xero.fail_next(500)
        with pytest.raises(XeroUnavailable) as caught:
            client.find_contacts()

    last = world.store.load()
    assert first is not None and last is not None and last.access_token != first.access_token
    secrets = [first.access_token, first.refresh_token, last.access_token, last.refresh_token, CLIENT_SECRET]
    text = caplog.text + str(caught.value) + repr(caught.value)
    assert all(secret and secret not in text for secret in secrets)
