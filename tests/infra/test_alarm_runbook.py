"""Every alarm leads to the fix: its description links a runbook section that exists, and the
dashboard draws it with its threshold."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

import pytest

from tests.infra.conftest import Synthesised
from tests.markdown_links import REPO, github_anchors

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

LINK = re.compile(r"(?P<path>[\w./-]+\.md)#(?P<anchor>[\w-]+)")


def _alarms(synth: Synthesised) -> dict[str, str]:
    """Logical id -> description, its CloudFormation tokens (bucket names...) flattened to text."""
    return {
        logical_id: json.dumps(alarm["Properties"]["AlarmDescription"])
        for logical_id, alarm in synth.resources("AWS::CloudWatch::Alarm").items()
    }


def _dashboard(synth: Synthesised) -> dict[str, Any]:
    """The dashboard body as JSON: an alarm's ARN becomes ``arn:<logical id>``, any other token
    (a queue name, the region) a placeholder."""
    body = synth.only("AWS::CloudWatch::Dashboard")["Properties"]["DashboardBody"]
    parts = body["Fn::Join"][1] if isinstance(body, dict) else [body]
    text = ""
    for part in parts:
        if isinstance(part, str):
            text += part
        elif "Fn::GetAtt" in part and part["Fn::GetAtt"][1] == "Arn":
            text += f"arn:{part['Fn::GetAtt'][0]}"
        else:
            text += "TOKEN"
    result: dict[str, Any] = json.loads(text)
    return result


def test_given_github_style_anchors_when_computed_then_they_match_githubs_rules() -> None:
    """The helper the next test relies on, against anchors GitHub is known to produce."""
    markdown = (
        "# Runbook\n\n### PollFailing\n\n```sh\n# not a heading\n```\n"
        "## What's new: v1.2\n## Repeat\n## Repeat\n"
    )
    assert github_anchors(markdown) == {"runbook", "pollfailing", "whats-new-v12", "repeat", "repeat-1"}


def test_given_the_stack_when_each_alarm_is_read_then_its_runbook_link_resolves_to_its_own_section(
    synth: Synthesised,
) -> None:
    alarms = _alarms(synth)
    assert len(alarms) == 10
    for logical_id, description in alarms.items():
        # CloudWatch refuses a description over 1,024 characters; a bucket name adds up to 63.
        assert len(description) <= 900, logical_id
        links = [m for m in LINK.finditer(description) if m.group("path").startswith("docs/")]
        assert links, f"{logical_id} names no runbook section: {description}"
        for link in links:
            target = REPO / link.group("path")
            assert target.is_file(), f"{logical_id} links {link.group('path')}, which does not exist"
            anchors = github_anchors(target.read_text(encoding="utf-8"))
            assert link.group("anchor") in anchors, (
                f"{logical_id} links #{link.group('anchor')}: no such heading"
            )
        # The section is the alarm's own: its logical id starts with Monitoring<AlarmId>.
        own = [
            m
            for m in links
            if m.group("path") == "docs/runbook.md"
            and logical_id.lower().startswith(f"monitoring{m.group('anchor')}")
        ]
        assert own, f"{logical_id} does not link its own runbook section"


def test_given_the_dead_letter_alarm_when_read_then_it_says_to_replay_with_the_cli_not_aws_sqs(
    synth: Synthesised,
) -> None:
    (description,) = [
        d for k, d in _alarms(synth).items() if k.startswith("MonitoringDeadLetterQueueNotEmpty")
    ]
    assert "python -m cli replay dlq --client example --category" in description
    assert "aws sqs" not in description


def test_given_the_dashboard_when_synthesised_then_every_alarm_is_drawn_with_its_threshold(
    synth: Synthesised,
) -> None:
    """An alarm widget (``annotations.alarms``) is how CloudWatch draws an alarm's metric with its
    threshold line; the alarm status widget alone shows only a colour."""
    widgets = _dashboard(synth)["widgets"]
    drawn = Counter(
        alarm for widget in widgets for alarm in widget["properties"].get("annotations", {}).get("alarms", [])
    )
    expected = {f"arn:{logical_id}" for logical_id in _alarms(synth)}
    assert set(drawn) == expected
    assert all(count == 1 for count in drawn.values())
    # Laid out on CloudWatch's 24-column grid, none overlapping another.
    cells = [
        (x, y)
        for w in widgets
        for x in range(w["x"], w["x"] + w["width"])
        for y in range(w["y"], w["y"] + w["height"])
    ]
    assert all(w["x"] + w["width"] <= 24 for w in widgets)
    assert len(cells) == len(set(cells))


def test_given_the_dashboards_main_graphs_when_synthesised_then_the_alarms_thresholds_are_drawn_on_them(
    synth: Synthesised,
) -> None:
    alarms = synth.config.alarms
    lines = {
        (widget["properties"]["title"], line.get("yAxis", "left")): (line["value"], line["label"])
        for widget in _dashboard(synth)["widgets"]
        if "title" in widget["properties"]
        for line in widget["properties"].get("annotations", {}).get("horizontal", [])
    }
    assert {key: value for key, (value, _) in lines.items()} == {
        ("Dead-letter queue (should be 0)", "left"): 1,
        ("Sync queue", "right"): alarms.oldest_message_age_minutes * 60,
        ("API Gateway responses", "left"): alarms.ingest_5xx_per_period,
        ("Xero calls and limits", "right"): alarms.xero_day_limit_remaining_below,
        ("Xero authorisation", "left"): 1,
    }
    # Named after the alarm, as the e-mail and the runbook section are.
    assert {label.split(":")[0] for _, label in lines.values()} == {
        "alarm DeadLetterQueueNotEmpty",
        "alarm SyncQueueStuck",
        "alarm IngestServerErrors",
        "alarm XeroDailyBudgetLow",
        "alarm XeroAuthorisationLost",
    }
