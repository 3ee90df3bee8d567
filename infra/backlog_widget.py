"""The dashboard's "Backlog" widget: when what is queued will have landed in Xero under the call
budget. CloudWatch metric math over metrics that exist anyway (the queue's depth, the sync's
XeroCalls, EventsSynced and Xero's XeroDayLimitRemaining): no metric of its own, so an idle month
costs nothing more. The arithmetic is ``shared/backlog.py``'s (tests/infra/test_backlog_widget.py
evaluates these expressions against it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch

from shared.backlog import DAY_SECONDS
from shared.burst_order import STAGGER_SECONDS
from shared.config import XeroConfig

# Calls per record when the sync made no call in the period (all of today's budget spent, or it
# has not started): a new client or an invoice written one at a time (docs/benchmarks.md, steady
# state). Whenever the sync ran in the period, the measured ratio is used instead.
FALLBACK_CALLS_PER_RECORD = 2.0

# The metrics the expressions read, by id (infra/monitoring.py supplies them).
INPUTS = ("visible", "inflight", "xcalls", "synced", "dayleft")


@dataclass(frozen=True)
class Step:
    id: str
    label: str
    expression: str
    shown: bool


def backlog_steps(xero: XeroConfig) -> list[Step]:
    """The expressions in dependency order; ``shown`` ones are the widget's values."""
    per_hour = xero.calls_per_minute * 60
    per_day = xero.calls_per_day
    margin = xero.day_limit - xero.calls_per_day
    stagger_hours = round(STAGGER_SECONDS / 3600, 6)
    to_midnight_hours = f"((FLOOR(EPOCH(queued) / {DAY_SECONDS}) + 1) * {DAY_SECONDS} - EPOCH(queued)) / 3600"
    return [
        Step("queued", "changes queued", "FILL(visible, 0) + FILL(inflight, 0)", True),
        Step(
            "cpr",
            "Xero calls per record",
            f"IF(FILL(synced, 0) > 0, FILL(xcalls, 0) / FILL(synced, 0), {FALLBACK_CALLS_PER_RECORD})",
            False,
        ),
        Step("need", "Xero calls they need", "queued * cpr", True),
        # Xero's count of the day's calls left, carried over the periods without a call (the sync
        # waiting for midnight), less our margin under Xero's limit; unknown = a whole day left.
        Step("xleft", "Xero's calls left today", f"FILL(FILL(dayleft, REPEAT), {xero.day_limit})", False),
        Step("left", "calls left today", f"IF(xleft > {margin}, xleft - {margin}, 0)", True),
        Step("rest", "calls after today", "need - left", False),
        Step("days", "UTC midnights to wait", f"IF(rest > 0, CEIL(rest / {per_day}), 0)", True),
        # The last day's share, no sooner than the window its records come back in after the reset.
        Step(
            "lastpace",
            "hours of the last day at the minute rate",
            f"(rest - (days - 1) * {per_day}) / {per_hour}",
            False,
        ),
        Step(
            "lastday",
            "hours into the last day",
            f"IF(lastpace > {stagger_hours}, lastpace, {stagger_hours})",
            False,
        ),
        Step(
            "hours",
            "hours until all landed",
            f"IF(rest > 0, {to_midnight_hours} + 24 * (days - 1) + lastday, need / {per_hour})",
            True,
        ),
    ]


def backlog_widget(
    xero: XeroConfig, inputs: Mapping[str, cloudwatch.IMetric], period: Duration
) -> cloudwatch.SingleValueWidget:
    built: dict[str, cloudwatch.IMetric] = dict(inputs)
    shown: list[cloudwatch.IMetric] = []
    for step in backlog_steps(xero):
        used = set(re.findall(r"\b[a-z]\w*\b", step.expression)) & set(built)
        expression = cloudwatch.MathExpression(
            expression=step.expression,
            using_metrics={name: built[name] for name in sorted(used)},
            label=step.label,
            period=period,
        )
        built[step.id] = expression
        if step.shown:
            shown.append(expression)
    return cloudwatch.SingleValueWidget(
        title=(
            f"Backlog: when it lands in Xero ({xero.calls_per_minute}/min, {xero.calls_per_day:,} a UTC day)"
        ),
        metrics=shown,
        width=24,
        height=4,
    )
