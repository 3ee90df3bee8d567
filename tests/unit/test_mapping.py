from __future__ import annotations

from datetime import UTC, datetime

from shared.config import ContactRules
from shared.contact_fields import changed_fields, client_to_contact, split_person_name
from shared.matching import disambiguated_name
from shared.models.ignition import IgnitionClient

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def make_client(**overrides: object) -> IgnitionClient:
    data: dict[str, object] = {
        "slug": "cli_1",
        "name": "Acme Pty Ltd",
        "email": "accounts@acme.test",
        "created_at": NOW,
        "updated_at": NOW,
    }
    data.update(overrides)
    return IgnitionClient.model_validate(data)


def test_given_last_comma_first_when_split_then_first_and_last_are_swapped_back() -> None:
    assert split_person_name("Smith, Jane") == ("Jane", "Smith")
    assert split_person_name("Jane  van  Smith") == ("Jane van", "Smith")
    assert split_person_name("Cher") == (None, "Cher")


def test_given_person_client_when_mapped_then_names_phones_addresses_and_contact_number_are_set() -> None:
    client = make_client(
        name="Smith, Jane",
        kind="person",
        phone="+61 2 9999 0000",
        mobile="0400 000 000",
        addresses=[
            {"kind": "postal", "line1": "PO Box 1", "city": "Sydney", "postal_code": "2000", "country": "AU"}
        ],
    )

    contact, notes = client_to_contact(client, ContactRules())

    body = contact.to_xero()
    assert body["Name"] == "Smith, Jane"
    assert (body["FirstName"], body["LastName"]) == ("Jane", "Smith")
    assert body["ContactNumber"] == "cli_1"
    assert body["EmailAddress"] == "accounts@acme.test"
    assert [p["PhoneType"] for p in body["Phones"]] == ["DEFAULT", "MOBILE"]
    assert body["Addresses"] == [
        {
            "AddressType": "POBOX",
            "AddressLine1": "PO Box 1",
            "City": "Sydney",
            "PostalCode": "2000",
            "Country": "AU",
        }
    ]
    assert notes == []


def test_given_organisation_with_six_people_when_mapped_then_primary_is_named_and_five_kept_with_a_note() -> (
    None
):
    people = [{"first_name": f"P{i}", "last_name": "X", "email": f"p{i}@acme.test"} for i in range(6)]
    people.append({"first_name": "Pat", "last_name": "Primary", "primary": True})
    contact, notes = client_to_contact(make_client(contacts=people), ContactRules())

    assert (contact.FirstName, contact.LastName) == ("Pat", "Primary")
    assert contact.ContactPersons is not None and len(contact.ContactPersons) == 5
    assert "dropped: p5@acme.test" in notes[0]


def test_given_field_map_when_mapped_then_custom_fields_land_in_the_named_xero_fields() -> None:
    rules = ContactRules(field_map={"AccountNumber": "external_client_id", "TaxNumber": "custom_fields.abn"})
    client = make_client(external_client_id="EXT-9", custom_fields={"abn": "51 824 753 556"})

    contact, _ = client_to_contact(client, rules)

    assert contact.AccountNumber == "EXT-9"
    assert contact.TaxNumber == "51 824 753 556"


def test_given_missing_mapped_value_when_mapped_then_field_is_left_out_so_xero_keeps_its_value() -> None:
    rules = ContactRules(field_map={"AccountNumber": "external_client_id"})
    contact, _ = client_to_contact(make_client(), rules)
    assert "AccountNumber" not in contact.to_xero()


def test_given_long_name_when_disambiguated_then_result_fits_xero_limit_and_keeps_suffix() -> None:
    name = disambiguated_name("A" * 300, "cli_42")
    assert len(name) == 255
    assert name.endswith(" (cli_42)")


def test_given_previous_contact_when_compared_then_only_changed_fields_are_listed() -> None:
    before, _ = client_to_contact(make_client(), ContactRules())
    after, _ = client_to_contact(make_client(email="new@acme.test"), ContactRules())
    assert changed_fields(before, after) == ["EmailAddress"]
