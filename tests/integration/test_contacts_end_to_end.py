"""Contact sync scenarios, through the whole path: Ignition emulator -> signed webhook -> API front
-> real ingest handler -> SQS (moto) -> real sync handler -> Xero emulator."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.ignition.webhook import sign_webhook
from tests.integration.conftest import World, iso

pytestmark = pytest.mark.integration


def test_given_new_client_when_created_in_ignition_then_one_contact_with_its_details_and_a_mapping(
    world: World,
) -> None:
    slug = world.slug()
    record = world.client(
        slug,
        name="Smith, Jane",
        kind="person",
        phone="+61 2 9000 0000",
        addresses=[
            {
                "kind": "street",
                "line1": "1 George St",
                "city": "Sydney",
                "postal_code": "2000",
                "country": "AU",
            }
        ],
    )

    delivery = world.put_client(record)["delivery"]
    world.settle()

    assert delivery["status"] == 202
    (contact,) = world.contacts(ContactNumber=slug)
    assert contact["Name"] == "Smith, Jane"
    assert (contact["FirstName"], contact["LastName"]) == ("Jane", "Smith")
    assert contact["EmailAddress"] == f"{slug}@example.test"
    assert any(
        p["PhoneType"] == "DEFAULT" and p["PhoneNumber"] == "+61 2 9000 0000" for p in contact["Phones"]
    )
    assert any(a["AddressType"] == "STREET" and a["City"] == "Sydney" for a in contact["Addresses"])
    mapping = world.mapping(slug)
    assert mapping is not None and mapping.xero_id == contact["ContactID"]
    assert world.calls_since_start() == 2  # one search, one write
    archived = [k for k in world.s3_keys("raw/") if delivery["event_id"] in k]
    assert len(archived) == 1


def test_given_synced_client_when_updated_in_ignition_then_the_same_contact_changes(world: World) -> None:
    slug = world.slug()
    world.put_client(world.client(slug))
    world.settle()
    (before,) = world.contacts(ContactNumber=slug)

    world.put_client(world.client(slug, name=f"Renamed {slug}", email=f"new-{slug}@example.test"))
    world.settle()

    (after,) = world.contacts(ContactNumber=slug)
    assert after["ContactID"] == before["ContactID"]
    assert (after["Name"], after["EmailAddress"]) == (f"Renamed {slug}", f"new-{slug}@example.test")
    assert world.calls_since_start() == 3  # an update through the mapping is a single call


def test_given_same_webhook_delivered_three_times_then_exactly_one_contact(world: World) -> None:
    slug = world.slug()
    delivery = world.put_client(world.client(slug))["delivery"]
    world.redeliver(delivery["event_id"])
    world.redeliver(delivery["event_id"])
    world.settle()

    assert len(world.contacts(ContactNumber=slug)) == 1
    assert world.calls_since_start() == 2


def test_given_newer_update_synced_when_an_older_update_arrives_late_then_the_newer_values_stay(
    world: World,
) -> None:
    slug = world.slug()
    now = datetime.now(UTC)
    world.put_client(world.client(slug, name=f"Newest {slug}", updated_at=iso(now)))
    world.settle()

    older = world.client(slug, name=f"Older {slug}", updated_at=iso(now - timedelta(minutes=10)))
    world.send_event("client.updated", older, occurred_at=iso(now - timedelta(minutes=10)))
    world.settle()

    (contact,) = world.contacts(ContactNumber=slug)
    assert contact["Name"] == f"Newest {slug}"
    assert world.calls_since_start() == 2  # the stale event made no Xero call


def test_given_contact_already_in_xero_with_same_email_when_client_created_then_it_is_linked(
    world: World,
) -> None:
    slug = world.slug()
    (existing,) = world.seed_contacts(
        {"Name": f"ACME {slug} (entered by hand)", "EmailAddress": f"{slug}@EXAMPLE.test"}
    )

    world.put_client(world.client(slug))
    world.settle()

    matches = world.contacts(EmailAddress=f"{slug}@example.test")
    assert [c["ContactID"] for c in matches] == [existing["ContactID"]]
    assert matches[0]["ContactNumber"] == slug
    mapping = world.mapping(slug)
    assert mapping is not None and mapping.match_method == "email"


def test_given_two_clients_with_the_same_name_then_two_contacts_and_neither_is_merged(world: World) -> None:
    first, second = world.slug("first"), world.slug("second")
    shared_name = f"Smith & Co {world.tag}"
    world.put_client(world.client(first, name=shared_name))
    world.settle()
    world.put_client(world.client(second, name=shared_name))
    world.settle()

    (a,) = world.contacts(ContactNumber=first)
    (b,) = world.contacts(ContactNumber=second)
    assert a["ContactID"] != b["ContactID"]
    assert a["Name"] == shared_name
    assert b["Name"] == f"{shared_name} ({second})"


def test_given_hint_without_the_record_when_delivered_then_the_reporting_api_supplies_it(
    world: World,
) -> None:
    slug = world.slug()
    world.put_client(world.client(slug, name=f"From API {slug}"), payload="id")
    world.settle()

    (contact,) = world.contacts(ContactNumber=slug)
    assert contact["Name"] == f"From API {slug}"


def test_given_forged_signature_then_401_and_nothing_is_queued_or_stored(world: World) -> None:
    before = set(world.s3_keys(""))
    body = json.dumps(
        {
            "id": f"evt_forged_{world.tag}",
            "type": "client.created",
            "occurred_at": iso(datetime.now(UTC)),
            "data": world.client(world.slug()),
        }
    ).encode()
    forged = sign_webhook(body, "not-the-secret", world.sandbox.webhook)

    response = world.post_webhook(body, {**forged, "Content-Type": "application/json"})
    unsigned = world.post_webhook(body, {"Content-Type": "application/json"})

    assert (response.status_code, unsigned.status_code) == (401, 401)
    assert response.json()["error"] == "unauthorized"
    assert world.sandbox.queue_depth() == (0, 0)
    assert set(world.s3_keys("")) == before


def test_given_authentic_but_malformed_webhook_then_400_naming_the_problem_and_the_body_is_quarantined(
    world: World,
) -> None:
    body = json.dumps(
        {"id": f"evt_bad_{world.tag}", "type": "client.created", "data": {"name": "no slug"}}
    ).encode()
    headers = sign_webhook(body, world.sandbox.info()["webhook_secret"], world.sandbox.webhook)

    response = world.post_webhook(body, {**headers, "Content-Type": "application/json"})

    assert response.status_code == 400
    problem = response.json()
    assert problem["error"] == "invalid_payload" and "occurred_at" in problem["message"]
    (key,) = [k for k in world.s3_keys("quarantine/") if problem["reference"] in k]
    stored, metadata = world.s3_object(key)
    assert stored == body
    assert metadata["error"] == "invalid_payload"
    assert world.sandbox.queue_depth() == (0, 0)


def test_given_authentic_oversized_webhook_then_413_and_it_is_quarantined(world: World) -> None:
    padding = "x" * (world.sandbox.webhook.max_body_bytes + 1)
    body = json.dumps(
        {
            "id": f"evt_big_{world.tag}",
            "type": "client.created",
            "occurred_at": iso(datetime.now(UTC)),
            "data": {**world.client(world.slug()), "notes": padding},
        }
    ).encode()
    headers = sign_webhook(body, world.sandbox.info()["webhook_secret"], world.sandbox.webhook)

    response = world.post_webhook(body, {**headers, "Content-Type": "application/json"})

    assert response.status_code == 413
    assert any(response.json()["reference"] in k for k in world.s3_keys("quarantine/"))


def test_given_xero_answers_429_with_retry_after_then_the_client_waits_and_the_contact_is_created(
    world: World,
) -> None:
    slug = world.slug()
    # A short-lived limit (Xero's concurrent-call limit): the client sleeps Retry-After in-process.
    world.xero_fail_next(status=429, count=1, retry_after=1, problem="concurrent")

    world.put_client(world.client(slug))
    world.settle()

    assert len(world.contacts(ContactNumber=slug)) == 1
    assert world.xero_state()["requests"]["by_status"].get("429", 0) >= 1
    assert world.dead_letters_for(slug) == []


def test_given_xero_answers_503_twice_then_the_sync_retries_and_succeeds(world: World) -> None:
    slug = world.slug()
    world.xero_fail_next(status=503, count=2)

    world.put_client(world.client(slug))
    world.settle()

    assert len(world.contacts(ContactNumber=slug)) == 1
    assert world.dead_letters_for(slug) == []


def test_given_expired_xero_access_token_then_one_refresh_and_the_sync_completes(world: World) -> None:
    refreshes_before = world.xero_state()["token_refreshes"]
    world.sandbox.clock.advance(31 * 60)  # the emulator's clock: every access token it issued has expired

    slug = world.slug()
    world.put_client(world.client(slug))
    world.settle()

    state = world.xero_state()
    assert len(world.contacts(ContactNumber=slug)) == 1
    assert state["token_refreshes"] == refreshes_before + 1
    assert state["invalid_grants"] == 0


def test_given_two_xero_contacts_share_the_email_when_client_created_then_dead_lettered_with_the_reason(
    world: World,
) -> None:
    slug = world.slug()
    email = f"{slug}@example.test"
    world.seed_contacts(
        {"Name": f"One {slug}", "EmailAddress": email}, {"Name": f"Two {slug}", "EmailAddress": email}
    )

    world.put_client(world.client(slug))
    world.settle()

    (dead,) = world.dead_letters_for(slug)
    assert dead["category"] == "ambiguous_match"
    assert "share the email" in dead["reason"]
    assert len(world.contacts(EmailAddress=email)) == 2
    assert world.mapping(slug) is None
