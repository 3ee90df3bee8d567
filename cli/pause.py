"""``pause`` / ``resume``: stop writing to Xero without losing anything, and start again.

Paused means: the sync function's SQS event source mapping is disabled (Lambda stops receiving;
webhooks are still accepted, archived and queued) and the stack's EventBridge rules are disabled
(no scheduled reconciliation or poller run). Resuming enables both; the queued events then run
through the sync once each, in order per record (FIFO groups). Batches already in flight when
the pause lands finish. Made with the operator's own AWS credentials (``lambda:
UpdateEventSourceMapping``, ``events:DisableRule``/``EnableRule``), never a function's role.

For ``--sandbox`` the rules are the moto server's EventBridge rules and the mapping is the
sandbox's switch parameter (sandbox/controls.py), which its poller and schedules obey.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from cli.errors import CliError, Exit
from cli.target import STACK_PREFIX, Target
from shared import aws

SANDBOX_ENABLED, SANDBOX_DISABLED = "Enabled", "Disabled"


@dataclass(frozen=True)
class Switch:
    kind: str  # event_source_mapping | schedule
    name: str  # the mapping's UUID or parameter, the rule's name
    state: str  # as AWS reports it: Enabled, Disabled, Enabling, Disabling, ENABLED, DISABLED, ...

    @property
    def on(self) -> bool:
        return self.state.upper() in ("ENABLED", "ENABLING", "UPDATING", "CREATING")


def _stack_resources(target: Target) -> tuple[list[str], list[str]]:
    """The stack's event source mappings (UUIDs) and EventBridge rules (names)."""
    mappings: list[str] = []
    rules: list[str] = []
    paginator = aws.client("cloudformation").get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=f"{STACK_PREFIX}{target.name}"):
        for resource in page["StackResourceSummaries"]:
            kind, physical = resource["ResourceType"], resource.get("PhysicalResourceId")
            if physical and kind == "AWS::Lambda::EventSourceMapping":
                mappings.append(str(physical))
            elif physical and kind == "AWS::Events::Rule":
                rules.append(str(physical))
    return mappings, rules


def _sandbox_controls(target: Target) -> tuple[str, list[str]]:
    controls = (target.sandbox.controls if target.sandbox else None) or {}
    parameter = controls.get("event_source_parameter")
    if not parameter:
        raise CliError(
            "this sandbox has no pause switches (started by an older version)",
            Exit.CONFIG,
            hint="restart it: `.venv/bin/python -m sandbox serve`",
        )
    return str(parameter), [str(rule) for rule in (controls.get("schedule_rules") or {}).values()]


def switches(target: Target) -> list[Switch]:
    events = aws.client("events")
    found: list[Switch] = []
    if target.kind == "stack":
        mappings, rules = _stack_resources(target)
        lam = aws.client("lambda")
        for uuid in mappings:
            state = lam.get_event_source_mapping(UUID=uuid)["State"]
            found.append(Switch("event_source_mapping", uuid, state))
    else:
        parameter, rules = _sandbox_controls(target)
        value = aws.client("ssm").get_parameter(Name=parameter)["Parameter"]["Value"]
        found.append(Switch("event_source_mapping", parameter, value))
    for rule in rules:
        found.append(Switch("schedule", rule, events.describe_rule(Name=rule)["State"]))
    return found


def _set(target: Target, switch: Switch, on: bool) -> None:
    if switch.kind == "schedule":
        events = aws.client("events")
        (events.enable_rule if on else events.disable_rule)(Name=switch.name)
    elif target.kind == "stack":
        aws.client("lambda").update_event_source_mapping(UUID=switch.name, Enabled=on)
    else:
        aws.client("ssm").put_parameter(
            Name=switch.name, Value=SANDBOX_ENABLED if on else SANDBOX_DISABLED, Type="String", Overwrite=True
        )


def _retention_days(target: Target) -> float | None:
    attributes = aws.client("sqs").get_queue_attributes(
        QueueUrl=target.settings.sync_queue_url, AttributeNames=["MessageRetentionPeriod"]
    )["Attributes"]
    seconds = attributes.get("MessageRetentionPeriod")
    return round(int(seconds) / 86_400, 1) if seconds else None


def state(target: Target) -> dict[str, Any]:
    """``paused``: True when every switch is off, False when every one is on, None when mixed."""
    found = switches(target)
    on = [s.on for s in found]
    paused: bool | None = (not any(on)) if (all(on) or not any(on)) else None
    return {"paused": paused, "switches": [{**asdict(s), "on": s.on} for s in found]}


def set_paused(target: Target, paused: bool) -> dict[str, Any]:
    found = switches(target)
    if not found:
        raise CliError(f"{target.label} has no event source mapping or schedule to switch", Exit.CONFIG)
    # Pausing: the sync first (nothing more is written), then the schedules. Resuming: the
    # schedules last, so a reconciliation never runs while the backlog is still being written.
    for switch in sorted(found, key=lambda s: s.kind == "schedule"):
        _set(target, switch, not paused)
    result = state(target)
    queue = aws.client("sqs").get_queue_attributes(
        QueueUrl=target.settings.sync_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    result["queued"] = int(queue.get("ApproximateNumberOfMessages", 0))
    result["retention_days"] = _retention_days(target)
    return result


def summary(target: Target) -> dict[str, Any]:
    """For ``status``: the pause state, or why it could not be read (it never fails ``status``)."""
    try:
        return state(target)
    except CliError as exc:
        return {"paused": None, "unknown": str(exc)}
    except (ClientError, BotoCoreError) as exc:
        return {"paused": None, "unknown": f"{type(exc).__name__}: {exc}"}
