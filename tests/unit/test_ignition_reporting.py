"""Ignition Reporting API client, against the emulator (in-process WSGI) and scripted fakes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.clock import Clock
from sandbox.ignition_emulator import IgnitionEmulator
from shared.config import IgnitionConfig
from shared.ignition.reporting import (
    IgnitionAuthError,
    IgnitionRateLimited,
    IgnitionReportingClient,
    IgnitionResponseError,
    IgnitionUnavailable,
)
from tests.ignition_double import put_record

BASE = "http://ignition.test/external/api/v1"


def client_record(slug: str, updated_at: str = "2025-02-01T00:00:00Z", **extra: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "name": f"Client {slug}",
        "created_at": "2025-01-01T00:00:00Z",
        "updated_at": updated_at,
        **extra,
    }


class Sleeps:
    """Records waits instead of sleeping; optionally moves a Clock forward by the same amount."""

    def __init__(self, clock: Clock | None = None) -> None:
        self.waits: list[float] = []
        self._clock = clock

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self._clock is not None:
            self._clock.advance(seconds)


@pytest.fixture
def emulator() -> IgnitionEmulator:
    return IgnitionEmulator(clock=Clock())


def seed(emulator: IgnitionEmulator, records: list[dict[str, Any]], resource: str = "clients") -> None:
    for record in records:
        put_record(emulator, resource, record)


def reporting_client(emulator: IgnitionEmulator, **kwargs: Any) -> IgnitionReportingClient:
    token = emulator.issue_token_set()["access_token"]
    http = httpx.Client(transport=httpx.WSGITransport(app=emulator.app))
    kwargs.setdefault("sleep", Sleeps())
    return IgnitionReportingClient(BASE, lambda: token, http=http, **kwargs)


def scripted(responses: list[httpx.Response | Exception]) -> tuple[httpx.Client, list[httpx.Request]]:
    """An httpx client answering each request with the next scripted response."""
    seen: list[httpx.Request] = []
    queue: Iterator[httpx.Response | Exception] = iter(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        item = next(queue)
        if isinstance(item, Exception):
            raise item
        return item

    return httpx.Client(transport=httpx.MockTransport(handler)), seen


def fake_client(
    responses: list[httpx.Response | Exception], **kwargs: Any
) -> tuple[IgnitionReportingClient, list[httpx.Request]]:
    http, seen = scripted(responses)
    kwargs.setdefault("sleep", Sleeps())
    kwargs.setdefault("jitter", lambda low, high: high)
    # One listing per call, so a script can answer it; the terminal-state passes have own tests.
    kwargs.setdefault("terminal_states", {})
    return IgnitionReportingClient(BASE, lambda: FAKE_TOKEN, http=http, **kwargs), seen


FAKE_TOKEN = "at-5f2c9e-not-a-real-token"
CLIENT_OK = httpx.Response(200, json=client_record("cli_1"))


# -- against the emulator ------------------------------------------------------------------------


def test_given_seven_clients_and_page_limit_three_when_iterated_then_three_pages_yield_all_in_order(
    emulator: IgnitionEmulator,
) -> None:
    seed(emulator, [client_record(f"cli_{i}", f"2025-02-0{i}T00:00:00Z") for i in range(7, 0, -1)])
    client = reporting_client(emulator, page_limit=3)

    slugs = [c.slug for c in client.iter_clients()]

    assert slugs == [f"cli_{i}" for i in range(1, 8)]
    # Three pages, and one for the (empty) pass over archived clients.
    assert emulator.state_snapshot()["requests"]["by_status"] == {"200": 4}


def test_given_updated_from_when_iterated_then_only_newer_clients_are_returned(
    emulator: IgnitionEmulator,
) -> None:
    seed(emulator, [client_record(f"cli_{i}", f"2025-02-0{i}T00:00:00Z") for i in range(1, 6)])
    client = reporting_client(emulator, page_limit=2)

    slugs = [c.slug for c in client.iter_clients(updated_from=datetime(2025, 2, 3, tzinfo=UTC))]

    assert slugs == ["cli_3", "cli_4", "cli_5"]


def test_given_a_known_slug_when_fetched_then_the_client_is_returned(emulator: IgnitionEmulator) -> None:
    seed(emulator, [client_record("cli_1", email="a@example.com", xero_contact_id="x-1")])

    found = reporting_client(emulator).get_client("cli_1")

    assert found is not None
    assert (found.slug, found.email, found.xero_contact_id) == ("cli_1", "a@example.com", "x-1")


def test_given_an_unknown_slug_when_fetched_then_none(emulator: IgnitionEmulator) -> None:
    assert reporting_client(emulator).get_client("cli_missing") is None


def test_given_the_rate_limit_is_reached_when_the_reset_is_near_then_the_client_waits_and_succeeds() -> None:
    clock = Clock()
    emulator = IgnitionEmulator(clock=clock, rate_limit=2, rate_limit_window_seconds=10)
    seed(emulator, [client_record("cli_1")])
    sleeps = Sleeps(clock)
    client = reporting_client(emulator, sleep=sleeps, clock=clock.time)

    results = [client.get_client("cli_1") for _ in range(3)]

    assert all(r is not None for r in results)
    assert len(sleeps.waits) == 1 and 0 < sleeps.waits[0] <= 11
    assert emulator.state_snapshot()["requests"]["by_status"] == {"200": 3, "429": 1}


def test_given_the_rate_limit_is_reached_when_the_reset_is_far_then_rate_limited_is_raised() -> None:
    clock = Clock()
    emulator = IgnitionEmulator(clock=clock, rate_limit=1)  # hourly window: too long to sit out
    seed(emulator, [client_record("cli_1")])
    client = reporting_client(emulator, clock=clock.time, max_wait_seconds=20)
    client.get_client("cli_1")

    with pytest.raises(IgnitionRateLimited) as caught:
        client.get_client("cli_1")

    assert 3_500 < caught.value.retry_after <= 3_601


def test_given_an_expired_token_when_called_then_auth_error(emulator: IgnitionEmulator) -> None:
    client = reporting_client(emulator)
    emulator.clock.advance(3_601)

    with pytest.raises(IgnitionAuthError) as caught:
        client.get_client("cli_1")

    assert caught.value.status == 401


def test_given_a_token_that_died_early_when_called_then_it_is_refreshed_once_and_the_call_succeeds(
    emulator: IgnitionEmulator,
) -> None:
    seed(emulator, [client_record("cli_1")])
    refreshed: list[str] = []

    def force_refresh(stale: str) -> str:
        refreshed.append(stale)
        return str(emulator.issue_token_set()["access_token"])

    client = reporting_client(emulator, force_refresh=force_refresh)
    emulator.clock.advance(3_601)  # the emulator says the held token expired; our provider did not know

    found = client.get_client("cli_1")

    assert found is not None and found.slug == "cli_1"
    assert len(refreshed) == 1


def test_given_a_refreshed_token_also_refused_when_called_then_auth_error_without_looping(
    emulator: IgnitionEmulator,
) -> None:
    client = reporting_client(emulator, force_refresh=lambda stale: "still-not-valid")
    emulator.clock.advance(3_601)

    with pytest.raises(IgnitionAuthError):
        client.get_client("cli_1")


# -- against scripted responses ------------------------------------------------------------------


def test_given_updated_from_when_iterated_then_it_is_sent_as_utc_iso8601_with_the_limit() -> None:
    client, seen = fake_client(
        [httpx.Response(200, json={"data": [], "meta": {"pagination": {"has_more": False}}})]
    )

    list(client.iter_clients(updated_from=datetime(2025, 3, 1, 20, 0, tzinfo=UTC)))

    assert seen[0].url.params["updated_from"] == "2025-03-01T20:00:00Z"
    assert seen[0].url.params["limit"] == "250"
    assert "date_from" not in seen[0].url.params  # clients are not listed by date
    assert seen[0].headers["Authorization"] == f"Bearer {FAKE_TOKEN}"


def test_given_a_naive_updated_from_when_iterated_then_value_error() -> None:
    client, _ = fake_client([])

    with pytest.raises(ValueError, match="timezone-aware"):
        list(client.iter_clients(updated_from=datetime(2025, 3, 1)))


def test_given_a_429_with_retry_after_then_success_when_fetched_then_it_waits_that_long() -> None:
    sleeps = Sleeps()
    client, seen = fake_client([httpx.Response(429, headers={"Retry-After": "7"}), CLIENT_OK], sleep=sleeps)

    found = client.get_client("cli_1")

    assert found is not None and found.slug == "cli_1"
    assert sleeps.waits == [7.0]
    assert len(seen) == 2


def test_given_a_429_with_an_epoch_reset_header_when_fetched_then_it_waits_until_the_reset() -> None:
    sleeps = Sleeps()
    client, _ = fake_client(
        [httpx.Response(429, headers={"X-RateLimit-Reset": "1700000012"}), CLIENT_OK],
        sleep=sleeps,
        clock=lambda: 1_700_000_000.0,
    )

    client.get_client("cli_1")

    assert sleeps.waits == [12.0]


def test_given_a_custom_reset_header_name_when_rate_limited_then_that_header_is_read() -> None:
    sleeps = Sleeps()
    client, _ = fake_client(
        [httpx.Response(429, headers={"RateLimit-Reset": "3"}), CLIENT_OK],
        sleep=sleeps,
        rate_limit_reset_header="RateLimit-Reset",
    )

    client.get_client("cli_1")

    assert sleeps.waits == [3.0]


def test_given_5xx_and_timeouts_when_fetched_then_it_retries_with_growing_backoff() -> None:
    sleeps = Sleeps()
    client, seen = fake_client(
        [httpx.Response(502), httpx.ReadTimeout("slow"), httpx.Response(503), CLIENT_OK], sleep=sleeps
    )

    assert client.get_client("cli_1") is not None
    assert sleeps.waits == [0.5, 1.0, 2.0]  # jitter pinned to its ceiling
    assert len(seen) == 4


def test_given_persistent_5xx_when_fetched_then_unavailable_after_max_attempts() -> None:
    client, seen = fake_client([httpx.Response(500)] * 3, max_attempts=3)

    with pytest.raises(IgnitionUnavailable) as caught:
        client.get_client("cli_1")

    assert caught.value.status == 500
    assert len(seen) == 3


def test_given_401_when_fetched_then_auth_error_without_retry_and_without_the_token() -> None:
    client, seen = fake_client([httpx.Response(401)])

    with pytest.raises(IgnitionAuthError) as caught:
        client.get_client("cli_1")

    assert len(seen) == 1
    assert FAKE_TOKEN not in str(caught.value)


def test_given_a_page_that_repeats_its_cursor_when_iterated_then_response_error_not_a_loop() -> None:
    page = {"data": [client_record("cli_1")], "meta": {"pagination": {"has_more": True, "next_cursor": "c1"}}}
    client, _ = fake_client([httpx.Response(200, json=page)] * 3)

    with pytest.raises(IgnitionResponseError, match="without a new cursor"):
        list(client.iter_clients())


def test_given_an_invalid_record_when_iterated_then_the_error_names_the_slug_and_field() -> None:
    page = {"data": [{"slug": "cli_bad", "name": "x"}], "meta": {"pagination": {"has_more": False}}}
    client, _ = fake_client([httpx.Response(200, json=page)])

    with pytest.raises(IgnitionResponseError, match=r"'cli_bad' is invalid: created_at"):
        list(client.iter_clients())


def test_given_a_slug_with_reserved_characters_when_fetched_then_it_is_path_encoded() -> None:
    client, seen = fake_client([httpx.Response(404)])

    assert client.get_client("cli/../x") is None
    assert seen[0].url.raw_path.decode().endswith("/reporting/clients/cli%2F..%2Fx")


def test_given_a_wrapped_single_record_when_fetched_then_it_is_unwrapped() -> None:
    client, _ = fake_client([httpx.Response(200, json={"data": client_record("cli_1")})])

    found = client.get_client("cli_1")

    assert found is not None and found.slug == "cli_1"


def test_given_the_ignition_config_when_built_from_it_then_url_page_limit_and_terminal_states_are_used() -> (
    None
):
    http, seen = scripted([httpx.Response(200, json={"data": [], "meta": {}})] * 3)
    config = IgnitionConfig(
        api_url="https://ignition.example/api/",
        page_limit=200,
        updated_param="updated_since",
        terminal_states={"clients": ["archived", "deleted"]},
    )
    client = IgnitionReportingClient.from_config(config, lambda: FAKE_TOKEN, http=http)

    list(client.iter_clients(datetime(2025, 3, 1, tzinfo=UTC)))

    base = "https://ignition.example/api/reporting/clients?limit=200&updated_since=2025-03-01T00%3A00%3A00Z"
    assert sorted(str(r.url) for r in seen) == [base, f"{base}&state=archived", f"{base}&state=deleted"]


def test_given_a_page_limit_over_250_when_configured_then_refused() -> None:
    with pytest.raises(ValueError, match="250"):
        IgnitionConfig(page_limit=251)
    with pytest.raises(ValueError, match="250"):
        IgnitionReportingClient(BASE, lambda: FAKE_TOKEN, page_limit=251)


# -- invoices and payments -----------------------------------------------------------------------


def invoice_record(slug: str, updated_at: str = "2025-03-01T00:00:00Z", **extra: Any) -> dict[str, Any]:
    return {
        "slug": slug,
        "reference_number": f"INV-{slug}",
        "client": {"slug": "cli_1"},
        "amount": {"total": "110.00", "currency": "AUD"},
        "date": "2025-03-01",
        "payment_state": "unpaid",
        "items": [
            {
                "description": "Advice",
                "quantity": "1",
                "unit_price": {"amount": "100.00", "currency": "AUD"},
                "tax_rate": "10",
            }
        ],
        "created_at": "2025-02-01T00:00:00Z",
        "updated_at": updated_at,
        **extra,
    }


def payment_record(
    slug: str, invoices: list[str], created_at: str = "2025-03-05T00:00:00Z", **extra: Any
) -> dict[str, Any]:
    return {
        "slug": slug,
        "client": {"slug": "cli_1"},
        "amount": {"amount": "110.00", "currency": "AUD"},
        "invoices": [{"slug": inv} for inv in invoices],
        "created_at": created_at,
        **extra,
    }


def page(records: list[dict[str, Any]], cursor: str | None = None) -> httpx.Response:
    pagination = {"has_more": cursor is not None, "next_cursor": cursor}
    return httpx.Response(200, json={"data": records, "meta": {"pagination": pagination}})


def test_given_five_invoices_and_page_limit_two_when_iterated_then_all_arrive_in_order_with_exact_amounts(
    emulator: IgnitionEmulator,
) -> None:
    # Amounts as JSON numbers, which a float would read as 33.33499999...
    records = [
        invoice_record(
            f"inv_{i}", f"2025-03-0{i}T00:00:00Z", amount={"total": Decimal("33.335"), "currency": "AUD"}
        )
        for i in range(5, 0, -1)
    ]
    seed(emulator, records, "invoices")
    client = reporting_client(emulator, page_limit=2)

    invoices = list(client.iter_invoices())

    assert [i.slug for i in invoices] == [f"inv_{i}" for i in range(1, 6)]
    assert all(i.amount.raw == Decimal("33.335") and isinstance(i.amount.raw, Decimal) for i in invoices)
    # Three pages, and one each for the (empty) passes over void, voided and cancelled invoices.
    assert emulator.state_snapshot()["requests"]["by_status"] == {"200": 6}


def test_given_updated_from_when_invoices_are_iterated_then_only_newer_ones_are_returned(
    emulator: IgnitionEmulator,
) -> None:
    seed(emulator, [invoice_record(f"inv_{i}", f"2025-03-0{i}T00:00:00Z") for i in range(1, 5)], "invoices")

    slugs = [i.slug for i in reporting_client(emulator).iter_invoices(datetime(2025, 3, 3, tzinfo=UTC))]

    assert slugs == ["inv_3", "inv_4"]


def test_given_a_known_and_an_unknown_invoice_when_fetched_then_the_invoice_and_none(
    emulator: IgnitionEmulator,
) -> None:
    seed(emulator, [invoice_record("inv_1", tax_inclusive=True)], "invoices")
    client = reporting_client(emulator)

    found = client.get_invoice("inv_1")

    assert found is not None
    assert (found.slug, found.client.slug, found.tax_inclusive) == ("inv_1", "cli_1", True)
    assert found.items[0].tax_rate == Decimal("10") and found.amount.raw == "110.00"
    assert client.get_invoice("inv_missing") is None


def test_given_payments_without_updated_at_when_iterated_then_created_at_orders_and_filters_them(
    emulator: IgnitionEmulator,
) -> None:
    seed(
        emulator,
        [
            payment_record("pypay_a", ["inv_1"], "2025-03-04T00:00:00Z"),
            payment_record("pypay_b", ["inv_2"], "2025-03-01T00:00:00Z", updated_at="2025-03-06T00:00:00Z"),
            payment_record("pypay_c", ["inv_3"], "2025-03-02T00:00:00Z"),
        ],
        "payments",
    )
    client = reporting_client(emulator, page_limit=1)

    everything = [p.slug for p in client.iter_payments()]
    recent = [p.slug for p in client.iter_payments(datetime(2025, 3, 3, tzinfo=UTC))]

    assert everything == ["pypay_c", "pypay_a", "pypay_b"]
    assert recent == ["pypay_a", "pypay_b"]
    fetched = client.get_payment("pypay_a")
    assert fetched is not None and fetched.updated_at is None and fetched.invoices[0].slug == "inv_1"
    assert client.get_payment("pypay_missing") is None


def test_given_one_payment_on_several_pages_when_iterated_then_it_is_yielded_once_with_every_invoice() -> (
    None
):
    client, seen = fake_client(
        [
            page([payment_record("pypay_1", ["inv_1"]), payment_record("pypay_2", ["inv_9"])], "c1"),
            page([payment_record("pypay_1", ["inv_2", "inv_1"])], "c2"),
            page([payment_record("pypay_1", ["inv_1"]), payment_record("pypay_3", ["inv_3"])]),
        ]
    )

    payments = list(client.iter_payments())

    assert [p.slug for p in payments] == ["pypay_1", "pypay_2", "pypay_3"]
    assert [a.slug for a in payments[0].invoices] == ["inv_1", "inv_2"]
    assert len(seen) == 3


def test_given_a_payment_changed_between_pages_when_iterated_then_only_the_newest_copy_is_yielded() -> None:
    old = payment_record("pypay_1", ["inv_1"], state="succeeded")
    new = payment_record("pypay_1", ["inv_1"], state="refunded", updated_at="2025-03-09T00:00:00Z")
    client, _ = fake_client([page([old], "c1"), page([new], "c2"), page([old])])

    [payment] = list(client.iter_payments())

    assert payment.state == "refunded"


def test_given_a_number_amount_in_a_response_when_fetched_then_it_is_a_decimal_not_a_float() -> None:
    body = b'{"slug":"pypay_1","client":{"slug":"cli_1"},"amount":{"amount":0.1,"currency":"AUD"},'
    body += b'"invoices":[{"slug":"inv_1","amount":{"amount":0.1,"currency":"AUD"}}],'
    body += b'"created_at":"2025-03-01T00:00:00Z"}'
    client, _ = fake_client([httpx.Response(200, content=body)])

    payment = client.get_payment("pypay_1")

    assert payment is not None
    assert payment.amount.raw == Decimal("0.1") and isinstance(payment.amount.raw, Decimal)


def test_given_a_non_finite_number_in_a_response_when_fetched_then_response_error() -> None:
    client, _ = fake_client([httpx.Response(200, content=b'{"slug":"inv_1","amount":{"total":NaN}}')])

    with pytest.raises(IgnitionResponseError, match="non-JSON"):
        client.get_invoice("inv_1")


# -- Ignition's defaults that hide data: explicit window, terminal states in their own passes -----


def months_ago(today: date, months: int) -> date:
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return date(year, month + 1, min(today.day, 28))


def test_given_invoices_from_2014_to_next_year_when_iterated_then_each_is_read_through_an_explicit_window(
    emulator: IgnitionEmulator,
) -> None:
    today = emulator.clock.now().date()
    dates = {
        "inv_2014": date(2014, 6, 30),
        "inv_3_months_ago": months_ago(today, 3),
        "inv_today": today,
        "inv_next_year": today + timedelta(days=360),
    }
    seed(emulator, [invoice_record(slug, date=on.isoformat()) for slug, on in dates.items()], "invoices")
    client = reporting_client(emulator, clock=emulator.clock.time)

    assert sorted(i.slug for i in client.iter_invoices()) == sorted(dates)
    for slug in dates:
        assert client.get_invoice(slug) is not None
    # What the emulator itself answers without a window: this month's only.
    http, token = emulator.app.test_client(), emulator.issue_token_set()["access_token"]
    bare = http.get("/external/api/v1/reporting/invoices", headers={"Authorization": f"Bearer {token}"})
    assert [r["slug"] for r in bare.get_json()["data"]] == ["inv_today"]


def test_given_the_window_settings_when_invoices_are_listed_then_date_from_and_date_to_are_sent() -> None:
    now = datetime(2026, 11, 26, 23, 0, tzinfo=UTC).timestamp()
    client, seen = fake_client(
        [page([])], clock=lambda: now, window_start=date(2015, 7, 1), window_ahead_days=30
    )

    list(client.iter_invoices())

    assert (seen[0].url.params["date_from"], seen[0].url.params["date_to"]) == ("2015-07-01", "2026-12-26")


def test_given_an_invoice_dated_three_months_ago_and_paid_today_when_read_incrementally_then_it_is_returned(
    emulator: IgnitionEmulator,
) -> None:
    now = emulator.clock.now()
    old_date = months_ago(now.date(), 3).isoformat()
    seed(
        emulator,
        [
            invoice_record("inv_old_paid", now.isoformat(), date=old_date, payment_state="paid"),
            invoice_record("inv_old_untouched", "2025-03-01T00:00:00Z", date=old_date),
        ],
        "invoices",
    )
    client = reporting_client(emulator, clock=emulator.clock.time)

    changed = list(client.iter_invoices(now - timedelta(minutes=15)))

    assert [(i.slug, i.payment_state) for i in changed] == [("inv_old_paid", "paid")]


def test_given_archived_clients_and_cancelled_payments_when_iterated_then_their_passes_merge_in_change_order(
    emulator: IgnitionEmulator,
) -> None:
    states = ["active", "archived", "lead", "archived", "active"]
    seed(
        emulator,
        [
            client_record(f"cli_{i}", f"2025-02-0{i}T00:00:00Z", state=state)
            for i, state in enumerate(states, 1)
        ],
    )
    seed(
        emulator,
        [
            payment_record("pypay_1", ["inv_1"], "2025-03-01T00:00:00Z"),
            payment_record("pypay_2", ["inv_2"], "2025-03-02T00:00:00Z", state="cancelled"),
            payment_record("pypay_3", ["inv_3"], "2025-03-03T00:00:00Z"),
        ],
        "payments",
    )
    client = reporting_client(emulator, page_limit=2)

    clients = list(client.iter_clients())
    payments = list(client.iter_payments())

    # Oldest change first across both passes, so a reader may resume from the last one it saw.
    assert [(c.slug, c.state) for c in clients] == list(
        zip([f"cli_{i}" for i in range(1, 6)], states, strict=True)
    )
    assert [(p.slug, p.state) for p in payments] == [
        ("pypay_1", "succeeded"),
        ("pypay_2", "cancelled"),
        ("pypay_3", "succeeded"),
    ]
    assert client.get_client("cli_2") is not None and client.get_payment("pypay_2") is not None


def test_given_a_record_in_two_passes_when_iterated_then_each_version_comes_once_and_a_newer_one_too() -> (
    None
):
    """The same version listed by both passes is one record; a copy changed while the passes ran
    is newer, and dropping it would lose the change."""
    archived = client_record("cli_1", "2025-02-02T00:00:00Z", state="archived")
    by_pass = {
        None: [client_record("cli_0", "2025-02-01T00:00:00Z"), archived],
        "archived": [archived, client_record("cli_2", "2025-02-03T00:00:00Z", state="archived")],
        "inactive": [client_record("cli_0", "2025-02-04T00:00:00Z", state="inactive")],
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return page(by_pass[request.url.params.get("state")])

    client = IgnitionReportingClient(
        BASE,
        lambda: FAKE_TOKEN,
        http=httpx.Client(transport=httpx.MockTransport(handler)),
        terminal_states={"clients": ["archived", "inactive"]},
    )

    assert [(c.slug, c.state) for c in client.iter_clients()] == [
        ("cli_0", "active"),
        ("cli_1", "archived"),
        ("cli_2", "archived"),
        ("cli_0", "inactive"),
    ]


def test_given_a_slug_nowhere_when_fetched_then_each_terminal_state_is_asked_once_before_none() -> None:
    client, seen = fake_client(
        [httpx.Response(404)] * 4, terminal_states={"invoices": ["void", "voided", "cancelled"]}
    )

    assert client.get_invoice("inv_gone") is None
    assert [r.url.params.get("state") for r in seen] == [None, "void", "voided", "cancelled"]
    assert all(r.url.params["date_from"] == "2013-01-01" for r in seen)


def test_given_updated_since_on_both_sides_when_read_incrementally_then_it_filters_and_a_mismatch_fails() -> (
    None
):
    emulator = IgnitionEmulator(clock=Clock(), incremental_param="updated_since")
    seed(emulator, [client_record(f"cli_{i}", f"2025-02-0{i}T00:00:00Z") for i in range(1, 4)])
    since = datetime(2025, 2, 2, tzinfo=UTC)

    matching = reporting_client(emulator, updated_param="updated_since")
    assert [c.slug for c in matching.iter_clients(since)] == ["cli_2", "cli_3"]
    with pytest.raises(IgnitionResponseError, match="400"):
        list(reporting_client(emulator).iter_clients(since))
