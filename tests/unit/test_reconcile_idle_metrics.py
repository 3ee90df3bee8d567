"""The reconcile function publishes metrics only for a run with something to count: an idle firm's
scheduled runs (every 15 minutes and every hour) would otherwise pay for custom metrics every hour
(bench/cost.py, docs/benchmarks.md "Idle month")."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from functions.reconcile import handler
from shared.reconcile.model import RunResult

STARTED = datetime(2026, 11, 27, 3, 0, tzinfo=UTC)


def _result(summary: dict[str, int], healed: int = 0, status: str = "complete") -> RunResult:
    return RunResult.model_validate(
        {
            "run_id": "r",
            "mode": "xero_events",
            "status": status,
            "started_at": STARTED.isoformat(),
            "finished_at": (STARTED + timedelta(seconds=2)).isoformat(),
            "summary": summary,
            "healed": healed,
            "needs_person": sum(summary.values()),
            "report": {},
        }
    )


@pytest.fixture(autouse=True)
def metrics_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Metrics on, as deployed (the per-category lines are printed only then)."""
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setattr(handler.metrics, "namespace", "test")
    handler.metrics.clear_metrics()
    yield
    handler.metrics.clear_metrics()


def _emitted(result: RunResult, capsys: pytest.CaptureFixture[str]) -> set[str]:
    """Names of every metric the emit published: the batched ones and those ``single_metric``
    printed (``ReconcileDiscrepancies:<category>``)."""
    handler.emit(result)
    names = set(handler.metrics.metric_set)
    for line in capsys.readouterr().out.splitlines():
        doc = json.loads(line)
        for directive in doc["_aws"]["CloudWatchMetrics"]:
            names |= {f"{m['Name']}:{doc.get('category')}" for m in directive["Metrics"]}
    return names


def test_given_an_idle_run_when_it_finds_nothing_then_no_custom_metric_is_published(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _emitted(_result({}), capsys) == set()
    assert handler.worth_counting(_result({"field_drift": 0})) is False


def test_given_a_run_with_discrepancies_when_it_ends_then_the_alarm_metric_is_published_per_category(
    capsys: pytest.CaptureFixture[str],
) -> None:
    names = _emitted(_result({"missing_in_xero": 2, "field_drift": 0}), capsys)

    assert names == {"ReconcileRuns", "ReconcileDiscrepancies:missing_in_xero"}


def test_given_a_run_that_healed_or_stopped_part_way_when_it_ends_then_it_is_counted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert _emitted(_result({}, healed=3), capsys) == {"ReconcileRuns", "ReconcileHealed"}
    handler.metrics.clear_metrics()
    assert _emitted(_result({}, status="partial"), capsys) == {"ReconcileRuns"}
