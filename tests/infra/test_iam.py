"""The functions' roles in the synthesized template: least privilege, and docs/security.md's
permissions table says exactly what the template grants."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from infra.functions import SYNC_ITEM_ACTIONS
from tests.infra.conftest import Synthesised

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

SECURITY_DOC = Path(__file__).resolve().parents[2] / "docs" / "security.md"
TABLE_HEADING = "## What each role may touch"

# Logical id (hash stripped) -> the name docs/security.md uses for it.
RESOURCE_NAMES = {
    "StorageStateTable": "state table",
    "StorageIdempotencyTable": "idempotency table",
    "StorageArchiveBucket": "archive bucket",
    "QueuesSyncQueue": "sync queue",
    "QueuesDeadLetterQueue": "dead-letter queue",
    "SecretsXeroClient": "Xero client secret",
    "SecretsXeroToken": "Xero token secret",
    "SecretsIgnitionApi": "Ignition API secret",
    "SecretsIgnitionWebhook": "Ignition webhook secret",
    "SecretsXeroWebhook": "Xero webhook secret",
    "ReportsTopic": "report topic",
}
ROLE_NAMES = {
    "FunctionsIngestRole": "ingest",
    "FunctionsSyncRole": "sync",
    "FunctionsXeroWebhookRole": "xero-webhook",
    "FunctionsReconcileRole": "reconcile",
    "FunctionsPollRole": "poll",
}

Grant = tuple[str, str, str, str]  # role, action, resource, condition


def _short(logical_id: str) -> str:
    return re.sub(r"[0-9A-F]{8}$", "", logical_id)


def _resource_name(role: str, value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return RESOURCE_NAMES[_short(value["Ref"])]
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = _short(value["Fn::GetAtt"][0])
        if target.endswith("Logs") and target.removesuffix("Logs") + "Role" == role:
            return "its log group"
        return RESOURCE_NAMES[target]
    if isinstance(value, dict) and "Fn::Join" in value:
        base, suffix = value["Fn::Join"][1]
        return f"{_resource_name(role, base)} `{suffix.lstrip('/')}`"
    raise AssertionError(f"resource not named in docs/security.md: {value}")


def _condition(statement: dict[str, Any]) -> str:
    parts = []
    for operator, keys in sorted(statement.get("Condition", {}).items()):
        for key, values in sorted(keys.items()):
            listed = values if isinstance(values, list) else [values]
            parts.append(f"{operator} `{key}` " + ", ".join(f"`{v}`" for v in listed))
    return "; ".join(parts)


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def template_grants(synth: Synthesised) -> set[Grant]:
    grants: set[Grant] = set()
    for policy in synth.resources("AWS::IAM::Policy").values():
        props = policy["Properties"]
        for role_ref in props["Roles"]:
            role = _short(role_ref["Ref"])
            if role not in ROLE_NAMES:
                continue
            for statement in props["PolicyDocument"]["Statement"]:
                assert statement["Effect"] == "Allow"
                for action in _listed(statement["Action"]):
                    for resource in _listed(statement["Resource"]):
                        grants.add(
                            (ROLE_NAMES[role], action, _resource_name(role, resource), _condition(statement))
                        )
    return grants


def documented_grants(text: str) -> set[Grant]:
    section = text.split(TABLE_HEADING, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Role")]
    grants: set[Grant] = set()
    for row in rows:
        role, actions, resources, condition = [cell.strip() for cell in row.strip("|").split("|")]
        for action in re.findall(r"`([a-z0-9-]+:[A-Za-z*]+)`", actions):
            for resource in [r.strip() for r in resources.split(";")]:
                grants.add((role, action, resource, condition))
    return grants


def _grants_of(synth: Synthesised, role: str) -> set[Grant]:
    return {g for g in template_grants(synth) if g[0] == role}


def test_given_the_security_doc_when_compared_to_the_template_then_every_role_grant_is_listed_exactly(
    synth: Synthesised,
) -> None:
    documented = documented_grants(SECURITY_DOC.read_text(encoding="utf-8"))
    deployed = template_grants(synth)

    assert sorted(deployed - documented) == [], "granted by infra/ but missing from docs/security.md"
    assert sorted(documented - deployed) == [], "claimed by docs/security.md but not granted by infra/"


def test_given_the_sync_role_when_synthesised_then_it_may_send_to_the_dead_letter_queue(
    synth: Synthesised,
) -> None:
    assert ("sync", "sqs:SendMessage", "dead-letter queue", "") in _grants_of(synth, "sync")


def test_given_the_token_secrets_when_synthesised_then_their_roles_may_only_put_a_new_value(
    synth: Synthesised,
) -> None:
    for role in ("sync", "reconcile"):
        writes = {
            (action, resource)
            for _, action, resource, _ in _grants_of(synth, role)
            if action.startswith("secretsmanager:")
            and action not in ("secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
        }
        assert writes == {
            ("secretsmanager:PutSecretValue", "Xero token secret"),
            ("secretsmanager:PutSecretValue", "Ignition API secret"),
        }, role


def test_given_the_sync_role_when_synthesised_then_it_has_only_the_item_actions_it_uses(
    synth: Synthesised,
) -> None:
    table_actions = {
        (action, resource)
        for _, action, resource, _ in _grants_of(synth, "sync")
        if action.startswith("dynamodb:")
    }

    expected = {(f"dynamodb:{a}", t) for a in SYNC_ITEM_ACTIONS for t in ("state table", "idempotency table")}
    assert table_actions == expected
    assert set(SYNC_ITEM_ACTIONS) == {"GetItem", "PutItem", "UpdateItem", "DeleteItem"}


def test_given_the_archive_bucket_when_synthesised_then_list_bucket_is_granted_only_on_the_work_prefix(
    synth: Synthesised,
) -> None:
    listing = {g for g in template_grants(synth) if g[1] == "s3:ListBucket"}

    assert listing == {
        ("reconcile", "s3:ListBucket", "archive bucket", "StringLike `s3:prefix` `reconcile/work/*`")
    }
