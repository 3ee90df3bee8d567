"""The dashboard says when a backlog lands in Xero: its "Backlog" widget's metric math, read back
from the synthesised dashboard and evaluated here, agrees with shared/backlog.py, on the default
tier and on Xero's 2026 Starter tier."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.backlog import lands
from tests.infra.conftest import Synthesised, synthesise_variant
from tests.infra.test_alarm_runbook import _dashboard

pytestmark = [pytest.mark.infra, pytest.mark.xdist_group("infra")]

TEN_PM = datetime(2026, 11, 27, 22, 0, tzinfo=UTC)
SHOWN = ["changes queued", "Xero calls they need", "calls left today", "UTC midnights to wait",
         "hours until all landed"]  # fmt: skip


@pytest.fixture(scope="module")
def starter(tmp_path_factory: pytest.TempPathFactory) -> Synthesised:
    """clients/example.json on Xero's Starter tier (1,000 calls a day; our budget 960)."""
    return synthesise_variant(
        tmp_path_factory.mktemp("starter"), {"xero": {"day_limit": 1_000, "calls_per_day": 960}}
    )


def _backlog(synth: Synthesised) -> dict[str, Any]:
    (widget,) = [
        w for w in _dashboard(synth)["widgets"] if w["properties"].get("title", "").startswith("Backlog")
    ]
    return dict(widget)


def _expressions(widget: dict[str, Any]) -> dict[str, tuple[str, str, bool]]:
    """id (the label where no other expression refers to it) -> (expression, label, shown) for
    every math expression of the widget, in the dashboard's order."""
    out: dict[str, tuple[str, str, bool]] = {}
    for row in widget["properties"]["metrics"]:
        options = row[-1]
        if "expression" in options:
            label = options.get("label", "")
            out[options.get("id", label)] = (options["expression"], label, options.get("visible", True))
    return out


class _Number(float):
    """A data point: dividing by zero gives no value rather than raising (the IF guarding it
    picks its other branch), as in CloudWatch."""

    def __truediv__(self, other: float) -> float:
        return math.nan if other == 0 else float(self) / other


def _evaluate(widget: dict[str, Any], inputs: dict[str, float | None], now: datetime) -> dict[str, float]:
    """The widget's expressions at one time step: FILL(m, REPEAT) keeps the value (one step has
    nothing to repeat), FILL(m, v) gives v for a missing point, EPOCH(m) is the step's time."""
    functions: dict[str, Any] = {
        "IF": lambda condition, yes, no: yes if condition else no,
        "FILL": lambda value, default: default if value is None and default is not None else value,
        "REPEAT": None,
        "FLOOR": math.floor,
        "CEIL": math.ceil,
        "EPOCH": lambda _series: now.timestamp(),
    }
    values: dict[str, Any] = {k: (None if v is None else _Number(v)) for k, v in inputs.items()}
    pending = {name: expression for name, (expression, _, _) in _expressions(widget).items()}
    while pending:  # the dashboard lists an expression before those it reads: evaluate when ready
        ready = {n: e for n, e in pending.items() if set(re.findall(r"\b[a-z]\w*\b", e)) <= set(values)}
        assert ready, f"unresolvable: {pending}"
        for name, expression in ready.items():
            scope = {**functions, **values}
            values[name] = _Number(eval(expression, {"__builtins__": {}}, scope))  # noqa: S307
            del pending[name]
    return values


def test_given_the_example_stack_when_synthesised_then_the_backlog_widget_shows_when_it_lands(
    synth: Synthesised,
) -> None:
    widget = _backlog(synth)

    shown = [label for _, label, visible in _expressions(widget).values() if visible is not False]
    assert shown == SHOWN
    assert "55/min, 4,800 a UTC day" in widget["properties"]["title"]
    read = {row[1] for row in widget["properties"]["metrics"] if isinstance(row[0], str)}
    assert {"ApproximateNumberOfMessagesVisible", "ApproximateNumberOfMessagesNotVisible", "XeroCalls",
            "EventsSynced", "XeroDayLimitRemaining"} <= read  # fmt: skip


@pytest.mark.parametrize(
    ("queued", "calls", "synced", "xero_left"),
    [
        (300, 120.0, 60.0, 900.0),  # lands today: 600 calls, 860 of ours left
        (1_000, 200.0, 100.0, 140.0),  # two midnights: 2,000 calls, 100 of ours left
        (500, 0.0, 0.0, 10.0),  # day spent, nothing synced this period: 2 calls a record assumed
        (2_000, 0.0, 0.0, None),  # no Xero call seen yet: a whole day's budget taken as left
    ],
)
def test_given_a_starter_tier_backlog_when_the_widget_computes_then_it_agrees_with_the_estimate(
    starter: Synthesised, queued: int, calls: float, synced: float, xero_left: float | None
) -> None:
    widget = _backlog(starter)
    xero = starter.config.runtime.xero

    got = _evaluate(
        widget,
        {
            "visible": queued * 0.9,
            "inflight": queued * 0.1,
            "xcalls": calls,
            "synced": synced,
            "dayleft": xero_left,
        },
        TEN_PM,
    )

    per_record = calls / synced if synced else 2.0
    left = (xero_left if xero_left is not None else xero.day_limit) - (xero.day_limit - xero.calls_per_day)
    expected = lands(queued, per_record, left, xero, TEN_PM)
    assert got["need"] == pytest.approx(expected.calls)
    assert got["days"] == expected.days_after_today
    assert got["hours until all landed"] == pytest.approx(expected.hours)
    assert "1,000/day" in str(starter.raw["Resources"])  # the budget alarm names the tier's limit
