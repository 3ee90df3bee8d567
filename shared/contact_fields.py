"""An Ignition client -> the Xero contact written for it (names, people, phones, addresses, mapped
fields), and which fields a write changed. Pure functions: no I/O, so every rule is unit-testable."""

from __future__ import annotations

from shared.config import ContactRules
from shared.models.ignition import IgnitionAddress, IgnitionClient, IgnitionContactPerson
from shared.models.xero import Address, Contact, ContactPerson, Phone

XERO_NAME_MAX = 255
XERO_CONTACT_PERSONS_MAX = 5


def split_person_name(name: str) -> tuple[str | None, str | None]:
    """Ignition often stores people as "Last, First"; otherwise the last word is the surname."""
    name = " ".join(name.split())
    if "," in name:
        last, _, first = name.partition(",")
        return (first.strip() or None), (last.strip() or None)
    first, _, last = name.rpartition(" ")
    return (first or None), (last or None)


def _address(address: IgnitionAddress) -> Address:
    return Address(
        AddressType="POBOX" if address.kind == "postal" else "STREET",
        AddressLine1=address.line1,
        AddressLine2=address.line2,
        City=address.city,
        Region=address.region,
        PostalCode=address.postal_code,
        Country=address.country,
    )


def _person(person: IgnitionContactPerson) -> ContactPerson:
    return ContactPerson(
        FirstName=person.first_name,
        LastName=person.last_name,
        EmailAddress=person.email,
        IncludeInEmails=bool(person.email),
    )


def client_to_contact(
    client: IgnitionClient,
    rules: ContactRules,
    *,
    name: str | None = None,
    contact_number: str | None = None,
) -> tuple[Contact, list[str]]:
    """The Xero contact for ``client`` and notes on anything that could not be carried over.

    ``name`` overrides the client's name (disambiguation); ``contact_number`` is the external key
    written to Xero (the client slug unless the matched contact already carries the firm's own).
    """
    notes: list[str] = []
    first_name = last_name = None
    if client.kind == "person" and rules.split_person_names:
        first_name, last_name = split_person_name(client.name)

    people = list(client.contacts)
    primary = next((p for p in people if p.primary), None)
    if primary is not None and client.kind == "organisation":
        # Xero's FirstName/LastName on an organisation are its primary person.
        first_name, last_name = primary.first_name, primary.last_name
        people.remove(primary)
    if len(people) > XERO_CONTACT_PERSONS_MAX:
        notes.append(
            f"{len(people)} contact people; Xero keeps {XERO_CONTACT_PERSONS_MAX}, "
            f"dropped: {', '.join(p.email or p.last_name or '?' for p in people[XERO_CONTACT_PERSONS_MAX:])}"
        )
        people = people[:XERO_CONTACT_PERSONS_MAX]

    phones = [Phone(PhoneType="DEFAULT", PhoneNumber=client.phone)] if client.phone else []
    if client.mobile:
        phones.append(Phone(PhoneType="MOBILE", PhoneNumber=client.mobile))

    mapped_fields: dict[str, str] = {}
    for target, path in rules.field_map.items():
        value = client.field(path)
        if value is None or value == "":
            continue
        mapped_fields[target] = str(value)

    full_name = " ".join((name or client.name).split())
    if len(full_name) > XERO_NAME_MAX:
        notes.append(f"name truncated to {XERO_NAME_MAX} characters")
        full_name = full_name[:XERO_NAME_MAX]

    contact = Contact(
        Name=full_name,
        ContactNumber=contact_number if contact_number is not None else client.slug,
        FirstName=first_name,
        LastName=last_name,
        EmailAddress=client.email.strip() if client.email else None,
        Phones=phones or None,
        Addresses=[_address(a) for a in client.addresses] or None,
        ContactPersons=[_person(p) for p in people] or None,
        **mapped_fields,
    )
    return contact, notes


def changed_fields(before: Contact | None, after: Contact) -> list[str]:
    """Which fields of ``after`` differ from ``before`` (for the audit trail)."""
    sent = after.to_xero()
    if before is None:
        return sorted(sent)
    previous = before.to_xero()
    return sorted(key for key, value in sent.items() if previous.get(key) != value)
