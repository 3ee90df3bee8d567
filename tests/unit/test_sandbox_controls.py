"""The sandbox's schedules obey their EventBridge rule's state, as EventBridge does."""

from __future__ import annotations

import threading
import time

from sandbox.environment import PeriodicRunner


def test_given_a_disabled_rule_when_the_schedule_ticks_then_nothing_runs_until_it_is_enabled() -> None:
    enabled = threading.Event()
    ran = threading.Event()
    runner = PeriodicRunner(ran.set, 0.02, name="poll", enabled=enabled.is_set)
    runner.start()
    try:
        time.sleep(0.3)
        skipped_while_disabled, ran_while_disabled = runner.skipped, ran.is_set()
        enabled.set()
        assert ran.wait(5)
    finally:
        runner.stop()

    assert skipped_while_disabled > 0 and not ran_while_disabled
    assert runner.runs >= 1
