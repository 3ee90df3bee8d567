"""The Ignition MCP secret in the stack: only where runtime.xero_to_ignition is enabled (a firm
without the feature pays nothing for it), then readable and rotatable by the sync function only,
named in its environment, and watched by an alarm whose runbook section says how to reconnect."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tests.infra.conftest import Synthesised, synthesise_variant
from tests.markdown_links import REPO, github_anchors

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]


@pytest.fixture(scope="module")
def enabled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """clients/example.json with Xero -> Ignition drafts turned on."""
    return synthesise_variant(
        tmp_path_factory.mktemp("mcp-variant"), {"xero_to_ignition": {"enabled": True}}
    ).raw


def _of_type(raw: dict[str, Any], type_name: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in raw["Resources"].items() if v["Type"] == type_name}


def _mcp_secret(raw: dict[str, Any]) -> list[str]:
    return [
        logical_id
        for logical_id, secret in _of_type(raw, "AWS::SecretsManager::Secret").items()
        if secret["Properties"]["Name"].endswith("/ignition-mcp")
    ]


def _grants_on(raw: dict[str, Any], logical_id: str) -> dict[str, set[str]]:
    """Role (logical id, hash stripped) -> the actions it has on the resource ``logical_id``."""
    grants: dict[str, set[str]] = {}
    for policy in _of_type(raw, "AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            resources = (
                statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            )
            if {"Ref": logical_id} not in resources:
                continue
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            for role in policy["Properties"]["Roles"]:
                grants.setdefault(re.sub(r"[0-9A-F]{8}$", "", role["Ref"]), set()).update(actions)
    return grants


def _environments(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        function["Properties"]["Handler"].split(".")[1]: function["Properties"]["Environment"]["Variables"]
        for function in _of_type(raw, "AWS::Lambda::Function").values()
        if function["Properties"]["Handler"].startswith("functions.")
    }


def test_given_the_feature_off_when_synthesised_then_no_mcp_secret_variable_or_alarm(
    synth: Synthesised,
) -> None:
    assert _mcp_secret(synth.raw) == []
    assert all("IGNITION_MCP_SECRET_ID" not in env for env in _environments(synth.raw).values())
    assert not any("IgnitionMcp" in logical_id for logical_id in synth.resources("AWS::CloudWatch::Alarm"))


def test_given_the_feature_on_when_synthesised_then_only_the_sync_role_may_read_and_rotate_the_mcp_secret(
    enabled: dict[str, Any],
) -> None:
    (secret,) = _mcp_secret(enabled)

    assert _grants_on(enabled, secret) == {
        "FunctionsSyncRole": {
            "secretsmanager:GetSecretValue",
            "secretsmanager:DescribeSecret",
            "secretsmanager:PutSecretValue",
        }
    }
    # Never deleted with the stack: re-connecting needs the Ignition user.
    assert _of_type(enabled, "AWS::SecretsManager::Secret")[secret]["DeletionPolicy"] == "Retain"


def test_given_the_feature_on_when_synthesised_then_the_functions_are_told_the_secrets_name(
    enabled: dict[str, Any],
) -> None:
    (secret,) = _mcp_secret(enabled)
    name = _of_type(enabled, "AWS::SecretsManager::Secret")[secret]["Properties"]["Name"]

    environments = _environments(enabled)
    # The sync function reads it; the CLI reads every name from the sync function's environment.
    assert environments["sync"]["IGNITION_MCP_SECRET_ID"] == name


def test_given_the_feature_on_when_synthesised_then_a_lost_connection_alarms_with_its_runbook_section(
    enabled: dict[str, Any],
) -> None:
    (alarm,) = [
        a["Properties"]
        for logical_id, a in _of_type(enabled, "AWS::CloudWatch::Alarm").items()
        if logical_id.startswith("MonitoringIgnitionMcpAuthorisationLost")
    ]

    assert alarm["MetricName"] == "IgnitionMcpAuthorisationLost"
    assert alarm["Dimensions"] == [{"Name": "service", "Value": "sync"}]
    description = json.dumps(alarm["AlarmDescription"])
    assert "python -m cli connect ignition-mcp --client variant" in description
    anchor = description.split("docs/runbook.md#", 1)[1].split('"', 1)[0].rstrip(".")
    assert anchor in github_anchors((REPO / "docs" / "runbook.md").read_text(encoding="utf-8"))
