"""The poll function publishes its runs, requests and queued counts only for a run that saw
changes or stopped early: an idle firm's poller runs every 2 minutes, and CloudWatch bills a
custom metric for every hour it is sent in (bench/cost.py, docs/benchmarks.md "Idle month")."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest

from functions.poll import handler
from sandbox.runtime import LambdaContext
from shared.poll import PollResult


class _Poller:
    def __init__(self, result: PollResult | Exception) -> None:
        self.result = result

    def run(self) -> PollResult:
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def _published(result: PollResult | Exception) -> set[str]:
    poll = object.__new__(handler.PollHandler)  # no settings: its Poller is the fake
    poll._poller = lambda _http: _Poller(result)  # type: ignore[method-assign,assignment,return-value]
    with contextlib.suppress(RuntimeError):  # a failed run raises, as Lambda needs it to
        poll.handle({}, LambdaContext("poll", 90))  # type: ignore[arg-type]
    return set(handler.metrics.metric_set)


@pytest.fixture(autouse=True)
def fresh_metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(handler.metrics, "namespace", "test")
    handler.metrics.clear_metrics()
    yield
    handler.metrics.clear_metrics()


def test_given_an_idle_run_when_it_sees_no_change_then_no_custom_metric_is_published() -> None:
    assert _published(PollResult(status="complete")) == set()


def test_given_a_run_that_queued_changes_when_it_ends_then_runs_requests_and_queued_are_published() -> None:
    names = _published(PollResult(status="complete", queued=3, seen=4))

    assert names == {"PollRuns", "PollIgnitionRequests", "PollEventsQueued"}
    assert handler.metrics.metric_set["PollEventsQueued"]["Value"] == [3.0]


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (PollResult(status="skipped", reason="budget"), {"PollSkippedForBudget"}),
        (RuntimeError("Ignition down"), {"PollFailures", "PollIgnitionRequests"}),
    ],
)
def test_given_a_run_that_gave_way_or_failed_when_it_ends_then_that_is_counted(
    result: Any, expected: set[str]
) -> None:
    assert expected <= _published(result)
