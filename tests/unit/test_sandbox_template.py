"""sandbox/template.py: reading the synthesized template (intrinsics, functions, roles) without AWS."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.template import Physical, SandboxStack, TemplateError, short_id, template_cache_key

TEMPLATE: dict[str, Any] = {
    "Resources": {
        "StorageStateTable08B675A0": {"Type": "AWS::DynamoDB::Table", "Properties": {}},
        "QueuesDeadLetterQueue82AA3FB7": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "SecretsXeroToken650DA116": {
            "Type": "AWS::SecretsManager::Secret",
            "Properties": {"Name": "ignition-xero-sync/example/xero-token"},
        },
        "FunctionsSyncRoleBA75AE95": {"Type": "AWS::IAM::Role", "Properties": {}},
        "FunctionsSync42D52C40": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "functions.sync.handler.handler",
                "Role": {"Fn::GetAtt": ["FunctionsSyncRoleBA75AE95", "Arn"]},
                "Timeout": 60,
                "Environment": {
                    "Variables": {
                        "STATE_TABLE_NAME": {"Ref": "StorageStateTable08B675A0"},
                        "DLQ_URL": {"Ref": "QueuesDeadLetterQueue82AA3FB7"},
                        "XERO_TOKEN_SECRET_ID": "ignition-xero-sync/example/xero-token",
                    }
                },
            },
        },
        "CustomHelper": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["FunctionsSyncRoleBA75AE95", "Arn"]},
            },
        },
        "FunctionsSyncRoleDefaultPolicy": {
            "Type": "AWS::IAM::Policy",
            "Properties": {
                "Roles": [{"Ref": "FunctionsSyncRoleBA75AE95"}],
                "PolicyDocument": {
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sqs:SendMessage",
                            "Resource": {"Fn::GetAtt": ["QueuesDeadLetterQueue82AA3FB7", "Arn"]},
                        },
                        {
                            "Effect": "Allow",
                            "Action": "dynamodb:GetItem",
                            "Resource": {
                                "Fn::Join": [
                                    "",
                                    [{"Fn::GetAtt": ["StorageStateTable08B675A0", "Arn"]}, "/index/*"],
                                ]
                            },
                        },
                    ]
                },
            },
        },
    }
}


def _stack() -> SandboxStack:
    stack = SandboxStack(TEMPLATE, "sb")
    stack.physical.update(
        {
            "StorageStateTable08B675A0": Physical(
                "sb-StorageStateTable", {"Arn": "arn:aws:dynamodb:r:a:table/t"}
            ),
            "QueuesDeadLetterQueue82AA3FB7": Physical(
                "http://q/dlq.fifo", {"Arn": "arn:aws:sqs:r:a:dlq.fifo"}
            ),
            "FunctionsSyncRoleBA75AE95": Physical("sb-Role", {"Arn": "arn:aws:iam::a:role/sb-Role"}),
        }
    )
    stack._renamed["ignition-xero-sync/example/xero-token"] = "sb/xero-token"
    return stack


def test_given_a_function_when_read_then_its_environment_is_resolved_to_the_sandbox_names() -> None:
    (sync,) = _stack().functions().values()

    assert sync.name == "sync"
    assert sync.environment == {
        "STATE_TABLE_NAME": "sb-StorageStateTable",
        "DLQ_URL": "http://q/dlq.fifo",
        "XERO_TOKEN_SECRET_ID": "sb/xero-token",
    }
    assert sync.timeout_seconds == 60


def test_given_a_role_policy_when_read_then_its_statements_resolve_to_the_sandbox_arns() -> None:
    (sync,) = _stack().functions().values()

    assert [s["Resource"] for s in sync.statements] == [
        "arn:aws:sqs:r:a:dlq.fifo",
        "arn:aws:dynamodb:r:a:table/t/index/*",
    ]


def test_given_a_resource_the_sandbox_did_not_build_when_resolved_then_it_names_nothing_real() -> None:
    stack = _stack()

    assert stack.resolve({"Fn::GetAtt": ["Elsewhere", "Arn"]}).startswith("arn:unbuilt:")
    assert (
        stack.resolve({"Fn::Sub": "arn:${AWS::Partition}:s3:::${Elsewhere}"})
        == "arn:aws:s3:::unbuilt:Elsewhere"
    )


def test_given_an_env_variable_without_a_resource_when_looked_up_then_template_error() -> None:
    with pytest.raises(TemplateError):
        _stack().logical_id_of_env("NOT_THERE")
    assert _stack().logical_id_of_env("DLQ_URL") == "QueuesDeadLetterQueue82AA3FB7"
    assert short_id("QueuesDeadLetterQueue82AA3FB7") == "QueuesDeadLetterQueue"


def test_given_the_repository_when_the_cache_key_is_taken_twice_then_it_is_stable() -> None:
    assert template_cache_key() == template_cache_key()
    assert len(template_cache_key()) == 20
