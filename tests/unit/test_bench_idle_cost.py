"""The bench's idle-month metrics and Starter-tier figure (bench/cost.py, bench/__main__.py): pure
arithmetic over measured inputs, checked without a sandbox."""

from __future__ import annotations

import pytest

from bench import cost
from bench.__main__ import budget_figures

SCHEDULES = [
    {"expression": "rate(15 minutes)", "mode": "xero_events"},
    {"expression": "rate(1 hour)", "mode": "incremental"},
    {"expression": "cron(0 16 * * ? *)", "mode": "full"},
]


def test_given_metrics_every_15_minutes_when_costed_then_each_is_a_whole_metric_month() -> None:
    by_mode = {"xero_events": ["ReconcileRuns{service=reconcile}", "ReconcileHealed{service=reconcile}"]}

    assert cost.metric_months(by_mode, SCHEDULES) == pytest.approx(2.0)


def test_given_a_metric_only_the_daily_run_publishes_when_costed_then_30_hours_of_720_are_billed() -> None:
    by_mode = {"xero_events": [], "incremental": [], "full": ["ReconcileRuns{service=reconcile}"]}

    assert cost.metric_months(by_mode, SCHEDULES) == pytest.approx(30 / 720)


def test_given_one_metric_from_two_schedules_when_costed_then_its_hours_are_capped_at_the_month() -> None:
    by_mode = {"incremental": ["M"], "full": ["M"]}

    assert cost.metric_months(by_mode, SCHEDULES) == pytest.approx(1.0)
    assert cost.metric_months({}, SCHEDULES) == 0


def test_given_the_steady_invoice_cost_when_the_starter_figure_is_made_then_four_days_for_2000() -> None:
    raw = {"steady": {"by_kind": {"invoice": {"records": 6, "calls_per_record": 2.0}}}}

    (figure,) = budget_figures(raw)

    assert figure.unit == "hours" and figure.value == pytest.approx(4.0 * 24, abs=0.5)  # four days
    assert figure.detail["utc_days_spanned"] == 5 and figure.detail["calls"] == 4_000
    assert budget_figures({})[0].value is None


def test_given_a_gathered_invoice_burst_when_the_starter_figure_is_made_then_it_lands_within_the_hour() -> (
    None
):
    """A billing run arrives as a burst: the gathered burst's cost per invoice, not the steady one's."""
    raw = {
        "steady": {"by_kind": {"invoice": {"records": 6, "calls_per_record": 2.0}}},
        "burst_invoices": {"calls_per_record": 0.025},
    }

    (figure,) = budget_figures(raw)

    assert figure.detail["calls"] == 50 and figure.detail["utc_days_spanned"] == 1
    assert figure.value is not None and figure.value < 1


def test_given_the_pollers_schedule_when_the_stack_is_read_then_it_is_costed_as_the_poller() -> None:
    from bench.inventory import summarise

    template = {
        "Resources": {
            "FunctionsPollB6DF296A": {"Type": "AWS::Lambda::Function", "Properties": {"MemorySize": 256}},
            "PollRule": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "ScheduleExpression": "rate(2 minutes)",
                    "Targets": [{"Arn": {"Fn::GetAtt": ["FunctionsPollB6DF296A", "Arn"]}, "Id": "Target0"}],
                },
            },
        }
    }
    stack = {**summarise(template), "secrets": 0, "alarms": 0, "dashboards": 0, "kms_keys": 0}
    poll = cost.FunctionProfile(256, 50, {"dynamodb.UpdateItem": 3}, 900, 1000, ignition_calls=3)

    lines = cost.idle_month(stack, {"poll": poll}, 0).items

    assert stack["schedules"] == [{"expression": "rate(2 minutes)", "mode": "poll"}]
    invocations = next(line for line in lines if line["item"].startswith("poll (rate(2 minutes)"))
    assert invocations["quantity"] == 21_600
    assert not any("reconcile" in line["item"] for line in lines)
