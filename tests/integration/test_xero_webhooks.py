"""Xero webhooks through the sandbox: signed POST /webhooks/xero on the API front -> the real
xero_webhook handler -> items in the state table (moto) for reconciliation to pick up."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from sandbox.environment import Sandbox
from shared import aws
from shared.xero.webhooks import sign

pytestmark = pytest.mark.integration


def _event(sandbox: Sandbox, resource_id: str, category: str = "CONTACT", **extra: Any) -> dict[str, Any]:
    return {
        "resourceUrl": f"https://api.xero.com/api.xro/2.0/Contacts/{resource_id}",
        "resourceId": resource_id,
        "eventDateUtc": "2026-11-02T01:15:39.902",
        "eventType": "UPDATE",
        "eventCategory": category,
        "tenantId": sandbox.xero.tenant_id,
        "tenantType": "ORGANISATION",
        **extra,
    }


def _post(sandbox: Sandbox, document: dict[str, Any], key: str | None = None) -> httpx.Response:
    info = sandbox.info()
    body = json.dumps(document).encode()
    headers = {
        "x-xero-signature": sign(body, key or info["xero_webhook_key"]),
        "Content-Type": "application/json",
    }
    return httpx.post(info["xero_webhook_url"], content=body, headers=headers, timeout=10)


def _delivery(*events: dict[str, Any]) -> dict[str, Any]:
    return {"events": list(events), "firstEventSequence": 1, "lastEventSequence": 1, "entropy": "ABCDEFGHIJ"}


def _item(sandbox: Sandbox, category: str, resource_id: str) -> dict[str, Any] | None:
    assert sandbox.resources is not None
    item = (
        aws.client("dynamodb")
        .get_item(
            TableName=sandbox.resources.state_table,
            Key={"pk": {"S": f"xero-event#{category}"}, "sk": {"S": resource_id}},
            ConsistentRead=True,
        )
        .get("Item")
    )
    return {k: next(iter(v.values())) for k, v in item.items()} if item else None


def test_given_xeros_intent_to_receive_when_posted_then_signed_gets_200_and_forged_gets_401_both_empty(
    sandbox: Sandbox,
) -> None:
    good = _post(sandbox, _delivery())
    forged = _post(sandbox, _delivery(), key="not-the-sandbox-key")

    assert (good.status_code, good.content) == (200, b"")
    assert (forged.status_code, forged.content) == (401, b"")


def test_given_signed_contact_and_invoice_events_when_posted_then_items_appear_in_the_state_table(
    sandbox: Sandbox,
) -> None:
    contact_id, invoice_id = str(uuid.uuid4()), str(uuid.uuid4())

    response = _post(sandbox, _delivery(_event(sandbox, contact_id), _event(sandbox, invoice_id, "INVOICE")))

    assert (response.status_code, response.content) == (200, b"")
    contact = _item(sandbox, "CONTACT", contact_id)
    assert contact is not None
    assert contact["event_type"] == "UPDATE"
    assert contact["event_date_utc"] == "2026-11-02T01:15:39.902Z"
    assert contact["tenant_id"] == sandbox.xero.tenant_id
    assert int(contact["expires_at"]) > 0
    assert _item(sandbox, "INVOICE", invoice_id) is not None


def test_given_an_event_of_another_organisation_when_posted_then_it_is_acknowledged_and_not_recorded(
    sandbox: Sandbox,
) -> None:
    contact_id = str(uuid.uuid4())

    response = _post(sandbox, _delivery(_event(sandbox, contact_id, tenantId=str(uuid.uuid4()))))

    assert response.status_code == 200
    assert _item(sandbox, "CONTACT", contact_id) is None


def test_given_an_authentic_but_malformed_body_when_posted_then_200_and_it_is_quarantined(
    sandbox: Sandbox,
) -> None:
    assert sandbox.resources is not None
    marker = str(uuid.uuid4())

    response = _post(sandbox, {"events": [{"resourceId": marker}]})

    assert (response.status_code, response.content) == (200, b"")
    s3 = aws.client("s3")
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=sandbox.resources.bucket, Prefix="quarantine/xero/").get(
            "Contents", []
        )
    ]
    bodies = [s3.get_object(Bucket=sandbox.resources.bucket, Key=k)["Body"].read() for k in keys]
    assert any(marker.encode() in body for body in bodies)
