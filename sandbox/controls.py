"""The sandbox's stand-ins for what ``python -m cli pause`` switches off in AWS: the sync function's
SQS event source mapping and the EventBridge schedules (reconciliation, poller).

The schedules are real EventBridge rules in the moto server (the CLI disables them with the same
``events.disable_rule`` call as in AWS). The event source mapping is an SSM parameter holding its
state (``Enabled``/``Disabled``): moto would invoke a Lambda ESM's function itself, in Docker, so
the sandbox keeps its own poller and models only the switch. A watcher thread (Lambda's service,
not a function: no role) reads both twice a second; the poller and the periodic runners ask it
before each receive or run, as Lambda and EventBridge stop invoking while disabled. What is in
flight finishes; queued messages stay on the queue (AWS: "Disabling an event source mapping
stops polling", Lambda developer guide, event source mappings).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from shared import aws

logger = logging.getLogger(__name__)

ENABLED = "Enabled"
DISABLED = "Disabled"
WATCH_SECONDS = 0.5


@dataclass(frozen=True)
class ControlNames:
    event_source_parameter: str
    schedule_rules: dict[str, str]  # schedule (reconcile, poll) -> rule name

    @classmethod
    def for_prefix(cls, prefix: str) -> ControlNames:
        return cls(
            event_source_parameter=f"/{prefix}/sandbox/sync-event-source-mapping",
            schedule_rules={name: f"{prefix}-{name}-schedule" for name in ("reconcile", "poll")},
        )


def create_controls(names: ControlNames, every: dict[str, float | None]) -> None:
    """Both switches on, as a deployed stack starts."""
    aws.client("ssm").put_parameter(
        Name=names.event_source_parameter, Value=ENABLED, Type="String", Overwrite=True
    )
    events = aws.client("events")
    for schedule, rule in names.schedule_rules.items():
        seconds = every.get(schedule)
        minutes = max(1, round((seconds or 3600) / 60))
        events.put_rule(
            Name=rule,
            ScheduleExpression=f"rate({minutes} minute{'s' if minutes > 1 else ''})",
            State="ENABLED",
            Description=f"sandbox {schedule} schedule (runs every {seconds} s)"
            if seconds
            else f"sandbox {schedule} schedule (not running: on demand only)",
        )


class ControlWatcher:
    def __init__(self, names: ControlNames) -> None:
        self._names = names
        self._sync = True
        self._rules = dict.fromkeys(names.schedule_rules, True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-controls", daemon=True)

    def start(self) -> None:
        self.refresh()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def sync_enabled(self) -> bool:
        return self._sync

    def schedule_enabled(self, schedule: str) -> bool:
        return self._rules.get(schedule, True)

    def refresh(self) -> None:
        ssm, events = aws.client("ssm"), aws.client("events")
        value = ssm.get_parameter(Name=self._names.event_source_parameter)["Parameter"]["Value"]
        self._sync = value != DISABLED
        for schedule, rule in self._names.schedule_rules.items():
            self._rules[schedule] = events.describe_rule(Name=rule)["State"] == "ENABLED"

    def _run(self) -> None:
        while not self._stop.wait(WATCH_SECONDS):
            try:
                self.refresh()
            except Exception:  # keep the last known state; the next read may work
                logger.warning("reading the sandbox's pause switches failed", exc_info=True)
