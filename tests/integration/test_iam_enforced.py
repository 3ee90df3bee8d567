"""Each function runs under its own role from the synthesized template, and AWS's refusals are
reproduced (sandbox/iam.py): a grant missing from infra/ fails here as it would in AWS."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from sandbox.iam import acting_as, revoked
from shared import aws
from shared.reconcile.adapters import S3Artifacts
from tests.integration.conftest import World

pytestmark = pytest.mark.integration


def test_given_sync_role_without_dlq_send_when_an_event_fails_permanently_then_no_dlq_message_with_reason(
    world: World,
) -> None:
    """The scenario of test_given_two_xero_contacts_share_the_email_..., with the one grant that
    lets the sync function park a permanent failure taken out of its role."""
    role = world.sandbox.role("sync")
    assert role is not None, "the integration sandbox enforces IAM"
    slug = world.slug()
    email = f"{slug}@example.test"
    world.seed_contacts(
        {"Name": f"One {slug}", "EmailAddress": email}, {"Name": f"Two {slug}", "EmailAddress": email}
    )
    denied_before = len(role.denied)

    with revoked(role, "sqs:SendMessage", "DeadLetterQueue"):
        world.put_client(world.client(slug))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not any(
            r.action == "sqs:SendMessage" and "DeadLetterQueue" in r.resource
            for r in role.denied[denied_before:]
        ):
            time.sleep(0.1)
        refused = [r for r in role.denied[denied_before:] if "DeadLetterQueue" in r.resource]
        assert refused and refused[0].action == "sqs:SendMessage"
        assert world.dead_letters_for(slug) == []

    # With the grant back (as infra/functions.py deploys it), the message returns after its
    # visibility timeout and is parked once, with its reason.
    world.settle()
    (dead,) = world.dead_letters_for(slug)
    assert dead["category"] == "ambiguous_match"
    assert "share the email" in dead["reason"]


def test_given_the_ingest_role_when_it_reads_a_mapping_then_access_denied_as_aws_answers(
    world: World,
) -> None:
    sandbox = world.sandbox
    assert sandbox.resources is not None
    key = {"pk": {"S": f"map#client#{world.slug()}"}, "sk": {"S": "forward"}}

    with acting_as(sandbox.role("ingest")), pytest.raises(ClientError) as refused:
        aws.client("dynamodb").get_item(TableName=sandbox.resources.state_table, Key=key)
    # The operator (no function role) is not restricted.
    aws.client("dynamodb").get_item(TableName=sandbox.resources.state_table, Key=key)

    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "assumed-role/" in refused.value.response["Error"]["Message"]


def test_given_the_xero_webhook_role_when_it_updates_a_mapping_item_then_denied_but_its_event_items_pass(
    world: World,
) -> None:
    sandbox = world.sandbox
    assert sandbox.resources is not None
    table = sandbox.resources.state_table
    update = {"UpdateExpression": "SET seen = :t", "ExpressionAttributeValues": {":t": {"S": "1"}}}

    with acting_as(sandbox.role("xero_webhook")):
        aws.client("dynamodb").update_item(
            TableName=table, Key={"pk": {"S": f"xero-event#{world.tag}"}, "sk": {"S": "x"}}, **update
        )
        with pytest.raises(ClientError, match="dynamodb:UpdateItem"):
            aws.client("dynamodb").update_item(
                TableName=table, Key={"pk": {"S": f"map#client#{world.tag}"}, "sk": {"S": "x"}}, **update
            )


def test_given_reconcile_lists_only_its_work_prefix_when_its_working_set_is_missing_then_it_starts_afresh(
    world: World, tmp_path: Path
) -> None:
    sandbox = world.sandbox
    assert sandbox.resources is not None
    artifacts = S3Artifacts(sandbox.resources.bucket)
    path = tmp_path / "work.sqlite3"

    with acting_as(sandbox.role("reconcile")):
        found = artifacts.get_file(f"reconcile/work/{world.tag}.sqlite3", path)
        # What S3 answers a role without s3:ListBucket on the key: 403, not 404.
        with pytest.raises(ClientError) as refused:
            aws.client("s3").head_object(Bucket=sandbox.resources.bucket, Key=f"reconcile/work/{world.tag}")

    assert found is False
    assert refused.value.response["Error"]["Code"] in ("AccessDenied", "403")
