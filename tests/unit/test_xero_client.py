"""XeroClient against a fake Xero (httpx.MockTransport) that behaves like the real one: 401 on
expired tokens, 429 with Retry-After, 503 plain text, Idempotency-Key replay, summarizeErrors."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from uuid import UUID

import httpx
import pytest

from shared.config import XeroConfig
from shared.errors import is_permanent
from shared.models.xero import Contact
from shared.oauth import ClientCredentials, InMemoryTokenStore, RefreshingTokenProvider, TokenSet
from shared.xero.budget import BudgetExhausted, InMemoryCallBudget
from shared.xero.client import (
    XeroCall,
    XeroClient,
    format_if_modified_since,
    where_all,
    where_any,
    where_eq,
    where_eq_ignore_case,
    where_safe,
)
from shared.xero.errors import (
    XeroAuthError,
    XeroRateLimited,
    XeroRequestError,
    XeroTokenRejected,
    XeroUnavailable,
    XeroValidationError,
)
from tests.unit.xero_fakes import (
    API_URL,
    CLIENT_ID,
    CLIENT_SECRET,
    TENANT_ID,
    TOKEN_URL,
    FakeClock,
    FakeXero,
    Fault,
)


class ThreadLock:
    """In-process stand-in for the DynamoDB lease lock (tested on its own in test_locks)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, timeout: float | None = None) -> None:
        assert self._lock.acquire(timeout=-1 if timeout is None else timeout)

    def extend(self, seconds: float | None = None) -> None:
        assert self._lock.locked()  # one process: the lease cannot be lost

    def release(self) -> None:
        self._lock.release()


class World:
    def __init__(self, **config: float) -> None:
        self.clock = FakeClock(start=1_767_225_600 + 5)
        self.fake = FakeXero(self.clock)
        issued = self.fake.issue()
        self.store = InMemoryTokenStore(
            TokenSet(
                access_token=issued["access_token"],
                refresh_token=issued["refresh_token"],
                expires_at=datetime.fromtimestamp(self.clock.time(), tz=UTC) + timedelta(minutes=30),
            )
        )
        self.calls: list[XeroCall] = []
        self.config = XeroConfig.model_validate({"api_url": API_URL, "max_inline_wait_seconds": 20, **config})
        self.tokens = RefreshingTokenProvider(
            TOKEN_URL,
            ClientCredentials(client_id=CLIENT_ID, client_secret=CLIENT_SECRET),
            self.store,
            ThreadLock(),
            clock=self.clock.time,
            http=httpx.Client(transport=self.fake.transport()),
            sleep=self.clock.sleep,
        )
        self.budget = InMemoryCallBudget(self.config, clock=self.clock.time, sleep=self.clock.sleep)
        self.client = XeroClient(
            self.config,
            self.tokens,
            TENANT_ID,
            self.budget,
            http=httpx.Client(transport=self.fake.transport()),
            on_call=self.calls.append,
            sleep=self.clock.sleep,
            rand=lambda: 1.0,  # worst case of full jitter: the cap itself
        )

    def statuses(self) -> list[int | None]:
        return [c.status for c in self.calls]


@pytest.fixture
def world() -> World:
    return World()


def test_given_a_call_then_bearer_token_tenant_and_accept_headers_are_sent(world: World) -> None:
    world.client.find_contacts()

    request = world.fake.api_requests()[0]
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
    world.fake.add_contact(Name="Ada")
    world.fake.revoke_access_tokens()

    contacts = world.client.find_contacts()

    assert [c.Name for c in contacts] == ["Ada"]
    assert world.fake.refresh_calls == 1
    first, second = world.fake.api_requests()
    assert first.headers["Authorization"] != second.headers["Authorization"]
    stored = world.store.load()
    assert stored is not None and second.headers["Authorization"] == f"Bearer {stored.access_token}"
    assert world.statuses() == [401, 200]


def test_given_token_expired_even_after_a_successful_refresh_then_a_transient_error_after_exactly_one_refresh(
    world: World,
) -> None:
    # A withdrawn connection fails the refresh itself (invalid_grant); a TokenExpired right after a
    # successful refresh is a token replaced or expired in between: a fault to retry, not a verdict.
    world.fake.on_api_request = lambda request: world.fake.revoke_access_tokens()

    with pytest.raises(XeroTokenRejected) as caught:
        world.client.find_contacts()

    assert caught.value.transient is True
    assert is_permanent(caught.value) is False
    assert world.fake.refresh_calls == 1
    assert world.statuses() == [401, 401]


def test_given_429_with_short_retry_after_then_client_waits_that_long_and_succeeds(world: World) -> None:
    world.fake.api_faults = [Fault("status", 429, {"Retry-After": "7", "X-Rate-Limit-Problem": "minute"})]

    world.client.find_contacts()

    assert world.clock.sleeps == [7.0]
    assert world.statuses() == [429, 200]
    assert world.calls[0].rate_limit_problem == "minute"


def test_given_429_with_retry_after_beyond_inline_wait_then_rate_limited_without_sleeping(
    world: World,
) -> None:
    world.fake.api_faults = [Fault("status", 429, {"Retry-After": "45", "X-Rate-Limit-Problem": "minute"})]

    with pytest.raises(XeroRateLimited) as caught:
        world.client.find_contacts()

    assert caught.value.retry_after == 45 and caught.value.problem == "minute" and caught.value.transient
    assert world.clock.sleeps == []


def test_given_day_limit_429_then_never_sleeps_even_for_a_short_retry_after(world: World) -> None:
    world.fake.api_faults = [Fault("status", 429, {"Retry-After": "3", "X-Rate-Limit-Problem": "day"})]

    with pytest.raises(XeroRateLimited) as caught:
        world.client.find_contacts()

    assert caught.value.problem == "day"
    assert world.clock.sleeps == []
    assert len(world.fake.api_requests()) == 1


def test_given_503_plain_text_then_retried_and_succeeds(world: World) -> None:
    world.fake.api_faults = [Fault("status", 503, body=b"Service Unavailable: scheduled maintenance")]

    world.client.find_contacts()

    assert world.statuses() == [503, 200]
    assert world.clock.sleeps == [0.5]


def test_given_persistent_5xx_then_unavailable_after_max_attempts_with_bounded_backoff() -> None:
    world = World(max_attempts=6, max_inline_wait_seconds=300)
    world.fake.api_faults = [Fault("status", 500, body=b"oops") for _ in range(10)]

    with pytest.raises(XeroUnavailable) as caught:
        world.client.find_contacts()

    assert caught.value.transient and caught.value.status == 500
    assert len(world.fake.api_requests()) == 6
    assert world.clock.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0]  # full jitter's ceiling, capped at 8 s


def test_given_backoff_would_exceed_inline_wait_then_gives_up_early_for_the_queue() -> None:
    world = World(max_attempts=10, max_inline_wait_seconds=3)
    world.fake.api_faults = [Fault("status", 502) for _ in range(10)]

    with pytest.raises(XeroUnavailable):
        world.client.find_contacts()

    assert sum(world.clock.sleeps) <= 3
    assert world.clock.sleeps == [0.5, 1.0]


def test_given_lost_response_to_a_post_when_retried_then_same_idempotency_key_and_one_contact(
    world: World,
) -> None:
    world.fake.api_faults = [Fault("lost")]

    saved = world.client.save_contacts([Contact(Name="Ada Lovelace", ContactNumber="cli_1")])

    posts = [r for r in world.fake.api_requests() if r.method == "POST"]
    assert len(posts) == 2
    keys = {r.headers["Idempotency-Key"] for r in posts}
    assert len(keys) == 1 and 0 < len(keys.pop()) <= 128
    assert len(world.fake.contacts) == 1
    assert saved[0].ContactID in world.fake.contacts
    assert world.statuses() == [None, 200] and world.calls[0].error == "ReadTimeout"


def test_given_caller_idempotency_key_then_it_is_sent_verbatim_and_too_long_keys_are_refused(
    world: World,
) -> None:
    world.client.save_contacts([Contact(Name="Ada")], idempotency_key="sync:cli_1:v3")

    assert world.fake.api_requests()[0].headers["Idempotency-Key"] == "sync:cli_1:v3"
    with pytest.raises(ValueError, match="Idempotency-Key"):
        world.client.save_contacts([Contact(Name="Bob")], idempotency_key="k" * 129)


def test_given_batch_with_a_bad_element_when_saved_then_each_element_comes_back_in_order(
    world: World,
) -> None:
    world.fake.add_contact(Name="Taken Pty Ltd")

    result = world.client.save_contacts(
        [Contact(Name="Fresh Co"), Contact(Name="Taken Pty Ltd"), Contact(Name="Other Co")]
    )

    request = world.fake.api_requests()[0]
    assert request.url.params["summarizeErrors"] == "false"
    assert [c.Name for c in result] == ["Fresh Co", "Taken Pty Ltd", "Other Co"]
    assert result[0].ContactID and result[2].ContactID and not result[0].ValidationErrors
    assert result[1].ValidationErrors and "already assigned" in result[1].ValidationErrors[0].Message
    assert json.loads(request.content)["Contacts"][0] == {"Name": "Fresh Co"}


def test_given_existing_contact_when_create_contacts_put_then_per_element_error(world: World) -> None:
    existing = world.fake.add_contact(Name="Ada")

    result = world.client.create_contacts([Contact(ContactID=existing["ContactID"], Name="Ada")])

    assert world.fake.api_requests()[0].method == "PUT"
    assert result[0].HasValidationErrors is True


def test_given_validation_exception_400_then_validation_error_with_per_element_messages(world: World) -> None:
    body = {
        "ErrorNumber": 10,
        "Type": "ValidationException",
        "Message": "A validation exception occurred",
        "Elements": [{"Name": "x", "ValidationErrors": [{"Message": "Email address must be valid."}]}],
    }
    world.fake.api_faults = [
        Fault("status", 400, body=json.dumps(body).encode(), content_type="application/json")
    ]

    with pytest.raises(XeroValidationError) as caught:
        world.client.save_contacts([Contact(Name="x", EmailAddress="nope")])

    assert caught.value.messages == ["Email address must be valid."]
    assert caught.value.transient is False
    assert caught.value.elements[0]["Name"] == "x"


def test_given_reused_key_with_different_body_then_permanent_request_error(world: World) -> None:
    world.client.save_contacts([Contact(Name="Ada")], idempotency_key="same")

    with pytest.raises(XeroValidationError, match="Idempotency"):
        world.client.save_contacts([Contact(Name="Bob")], idempotency_key="same")


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
    for i in range(250):
        world.fake.add_contact(Name=f"Contact {i:03}")

    names = [c.Name for c in world.client.iter_contacts(page_size=100)]

    assert len(names) == 250 and len(set(names)) == 250
    assert [r.url.params["page"] for r in world.fake.api_requests()] == ["1", "2", "3"]


def test_given_modified_since_and_filters_then_xero_query_parameters_are_sent(world: World) -> None:
    since = datetime(2026, 1, 1, 10, 30, 15, 999_000, tzinfo=UTC)

    world.client.find_contacts(
        ids=["a", "b"], page=2, page_size=50, include_archived=True, summary_only=True, modified_since=since
    )

    request = world.fake.api_requests()[0]
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
    ada = world.fake.add_contact(Name="Ada", ContactNumber="cli/1")

    by_id = world.client.get_contact(ada["ContactID"])
    by_number = world.client.get_contact("cli/1")
    missing = world.client.get_contact("cli_404")

    assert by_id is not None and by_id.Name == "Ada"
    assert by_number is not None and by_number.ContactID == ada["ContactID"]
    assert missing is None
    assert [c.endpoint for c in world.calls] == [
        "/Contacts/{ContactID}",
        "/Contacts/{ContactNumber}",
        "/Contacts/{ContactNumber}",
    ]
    assert world.fake.api_requests()[1].url.raw_path.endswith(b"/Contacts/cli%2F1")


def test_given_connections_then_tenants_are_listed_from_the_identity_api(world: World) -> None:
    connections = world.client.connections()

    assert connections[0]["tenantId"] == TENANT_ID
    assert world.fake.api_requests()[0].url.path == "/connections"


def test_given_wrong_tenant_then_permanent_auth_error(world: World) -> None:
    client = XeroClient(
        world.config,
        world.tokens,
        "not-our-tenant",
        world.budget,
        http=httpx.Client(transport=world.fake.transport()),
    )

    with pytest.raises(XeroAuthError) as caught:
        client.find_contacts()

    assert caught.value.status == 403 and world.fake.refresh_calls == 0


def test_given_budget_spent_then_client_raises_rate_limited_before_calling_xero() -> None:
    world = World(calls_per_minute=2, max_inline_wait_seconds=0)
    world.client.find_contacts()
    world.client.find_contacts()

    with pytest.raises(XeroRateLimited) as caught:
        world.client.find_contacts()

    assert isinstance(caught.value, BudgetExhausted)
    assert len(world.fake.api_requests()) == 2


def test_given_unknown_4xx_then_permanent_request_error(world: World) -> None:
    world.fake.api_faults = [Fault("status", 413, body=b"too big")]

    with pytest.raises(XeroRequestError) as caught:
        world.client.find_contacts()

    assert caught.value.status == 413 and not caught.value.transient


def test_given_any_failure_then_no_token_appears_in_logs_or_errors(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.fake.revoke_access_tokens()
    world.fake.api_faults = [Fault("status", 503), Fault("timeout"), Fault("status", 500)]
    with caplog.at_level(logging.DEBUG, logger="shared"), pytest.raises(XeroUnavailable) as caught:
        XeroClient(
            world.config.model_copy(update={"max_attempts": 3}),
            world.tokens,
            TENANT_ID,
            world.budget,
            http=httpx.Client(transport=world.fake.transport()),
            sleep=world.clock.sleep,
        ).find_contacts()

    secrets = [*world.fake.access_tokens, *world.fake.refresh_tokens, CLIENT_SECRET]
    text = caplog.text + str(caught.value) + repr(caught.value)
    assert all(secret not in text for secret in secrets)
