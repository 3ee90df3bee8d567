"""The chaos figures at the end of a pytest run, with or without xdist.

Each chaos test attaches its figures to its report (``user_properties``, which xdist carries from
the workers to the controller); ``tests/conftest.py`` imports these two hooks so the controller,
which never loads ``tests/chaos/conftest.py``, prints them.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

FIGURES_KEY = "chaos_figures"
_collected: list[dict[str, Any]] = []

COLUMNS = (
    ("profile", 24),
    ("records", 8),
    ("webhooks", 9),
    ("faults", 7),
    ("retries", 8),
    ("crashes", 8),
    ("refresh", 8),
    ("inv_grant", 9),
    ("dlq", 4),
    ("dup", 4),
    ("lost", 5),
    ("healed", 7),
    ("xero_calls", 10),
    ("secs", 6),
)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when != "call":
        return
    for name, value in report.user_properties:
        if name == FIGURES_KEY:
            _collected.append(json.loads(value) if isinstance(value, str) else dict(value))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _collected:
        return
    write = terminalreporter.write_line
    terminalreporter.section("chaos figures")
    write(" ".join(f"{title:>{width}}" for title, width in COLUMNS))
    totals: dict[str, int] = {}
    for row in sorted(_collected, key=lambda r: str(r["profile"])):
        cells = []
        for title, width in COLUMNS:
            value = row.get(title, "")
            if title == "refresh":
                value = f"{row['refreshes']}/{row['refreshes_needed']}"
            if isinstance(value, int) and title != "profile":
                totals[title] = totals.get(title, 0) + value
            cells.append(f"{value!s:>{width}}")
        write(" ".join(cells))
    write(
        "total: "
        + ", ".join(f"{title} {totals.get(title, 0)}" for title in ("records", "faults", "retries", "dlq"))
        + f", duplicates {totals.get('dup', 0)}, lost {totals.get('lost', 0)}"
    )
    for row in sorted(_collected, key=lambda r: str(r["profile"])):
        write(f"{row['profile']}: injected {json.dumps(row.get('injected', {}), sort_keys=True)}")
