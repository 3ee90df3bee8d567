"""The sandbox's IAM evaluation (sandbox/iam.py): what AWS would allow or refuse, without AWS."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from sandbox.iam import Enforcer, Request, RolePolicy, Translator, revoked
from sandbox.template import FunctionSpec

TABLE = "arn:aws:dynamodb:ap-southeast-2:123456789012:table/state"
DLQ = "arn:aws:sqs:ap-southeast-2:123456789012:dlq.fifo"
BUCKET = "arn:aws:s3:::archive"


def _role(*statements: dict[str, Any]) -> RolePolicy:
    spec = FunctionSpec("sync", "Fn", "Role", {}, list(statements), 60)
    return RolePolicy(spec, "arn:aws:iam::123456789012:role/sandbox-SyncRole")


def _allow_when(action: str, resource: str, condition: dict[str, Any]) -> RolePolicy:
    """A role whose one Allow holds only under ``condition``."""
    return _role({"Effect": "Allow", "Action": action, "Resource": resource, "Condition": condition})


def _enforcer(role: RolePolicy) -> Enforcer:
    return Enforcer({role.function: role}, Translator({"state": "pk"}, {}))


def test_given_an_allow_on_the_queue_when_the_action_matches_case_insensitively_then_allowed() -> None:
    role = _role({"Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": DLQ})

    assert role.allows(Request("sqs:sendmessage", DLQ))
    assert not role.allows(Request("sqs:DeleteMessage", DLQ))
    assert not role.allows(Request("sqs:SendMessage", DLQ.replace("dlq", "other")))


def test_given_an_allow_and_a_deny_when_both_match_then_the_deny_wins() -> None:
    role = _role(
        {"Effect": "Allow", "Action": "s3:*", "Resource": f"{BUCKET}/*"},
        {"Effect": "Deny", "Action": "s3:DeleteObject", "Resource": f"{BUCKET}/raw/*"},
    )

    assert role.allows(Request("s3:DeleteObject", f"{BUCKET}/reports/x"))
    assert not role.allows(Request("s3:DeleteObject", f"{BUCKET}/raw/x"))


def test_given_a_leading_keys_condition_when_an_item_of_another_partition_is_updated_then_denied() -> None:
    role = _allow_when(
        "dynamodb:UpdateItem", TABLE, {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["xero-event#*"]}}
    )
    enforcer = _enforcer(role)

    enforcer.check(
        role, "dynamodb", "UpdateItem", {"TableName": "state", "Key": {"pk": {"S": "xero-event#1"}}}
    )
    with pytest.raises(ClientError) as refused:
        enforcer.check(role, "dynamodb", "UpdateItem", {"TableName": "state", "Key": {"pk": {"S": "map#c"}}})

    assert refused.value.response["Error"]["Code"] == "AccessDeniedException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert role.denied == [Request("dynamodb:UpdateItem", TABLE, {"dynamodb:LeadingKeys": ["map#c"]})]


def test_given_a_transaction_when_checked_then_each_part_needs_its_own_action() -> None:
    role = _role({"Effect": "Allow", "Action": "dynamodb:PutItem", "Resource": TABLE})
    enforcer = _enforcer(role)
    put = {"Put": {"TableName": "state", "Item": {"pk": {"S": "a"}}}}
    update = {"Update": {"TableName": "state", "Key": {"pk": {"S": "b"}}}}

    enforcer.check(role, "dynamodb", "TransactWriteItems", {"TransactItems": [put, put]})
    with pytest.raises(ClientError, match="dynamodb:UpdateItem"):
        enforcer.check(role, "dynamodb", "TransactWriteItems", {"TransactItems": [put, update]})


def test_given_list_bucket_only_under_a_prefix_when_listing_elsewhere_or_without_prefix_then_denied() -> None:
    role = _allow_when("s3:ListBucket", BUCKET, {"StringLike": {"s3:prefix": ["reconcile/work/*"]}})
    enforcer = _enforcer(role)

    enforcer.check(role, "s3", "ListObjectsV2", {"Bucket": "archive", "Prefix": "reconcile/work/r1.sqlite3"})
    for params in ({"Bucket": "archive", "Prefix": "raw/"}, {"Bucket": "archive"}):
        with pytest.raises(ClientError) as refused:
            enforcer.check(role, "s3", "ListObjectsV2", params)
        assert refused.value.response["Error"]["Code"] == "AccessDenied"


def test_given_no_list_bucket_when_a_missing_object_is_read_then_s3_answers_403_not_404() -> None:
    missing = ClientError({"Error": {"Code": "NoSuchKey"}}, "GetObject")
    without = _role({"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/raw/*"})
    with_list = _role(
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": f"{BUCKET}/raw/*"},
        {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": BUCKET},
    )

    denied = _enforcer(without).missing_object(without, {"Bucket": "archive", "Key": "raw/x"}, missing)
    kept = _enforcer(with_list).missing_object(with_list, {"Bucket": "archive", "Key": "raw/x"}, missing)

    assert denied.response["Error"]["Code"] == "AccessDenied"
    assert kept is missing


def test_given_a_revoked_grant_when_the_block_ends_then_the_grant_is_back() -> None:
    role = _role(
        {"Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes"], "Resource": DLQ}
    )

    with revoked(role, "sqs:SendMessage", "dlq"):
        assert not role.allows(Request("sqs:SendMessage", DLQ))
        assert role.allows(Request("sqs:GetQueueAttributes", DLQ))
    assert role.allows(Request("sqs:SendMessage", DLQ))


def test_given_batch_operations_when_translated_then_authorised_as_their_single_actions() -> None:
    translator = Translator({}, {})
    url = "http://127.0.0.1:5000/123456789012/dlq.fifo"

    (send,) = translator.requests("sqs", "SendMessageBatch", {"QueueUrl": url, "Entries": []})
    (head,) = translator.requests("s3", "HeadObject", {"Bucket": "archive", "Key": "raw/a.json"})

    assert send == Request("sqs:SendMessage", DLQ)
    assert head == Request("s3:GetObject", f"{BUCKET}/raw/a.json")
