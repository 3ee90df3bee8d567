"""``make run``'s story reads as a story: no log lines in it, money with two decimals and its
currency. The demo starts its own sandbox, so it runs in a process of its own."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parents[2]
# A number right before a currency code: "550.00 AUD", and the "550.0 AUD" this test forbids.
AMOUNT = re.compile(r"(?<![\w.,])(-?[\d,]+(?:\.\d+)?) ([A-Z]{3})\b")


def test_given_make_run_when_the_demo_tells_its_story_then_no_log_line_and_amounts_have_two_decimals() -> (
    None
):
    result = subprocess.run(
        [sys.executable, "-m", "sandbox", "demo"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]

    # The forged webhook is still refused (the story says so), but its warning is not printed.
    assert "a forged one was refused with 401" in result.stdout
    log_lines = [line for line in output.splitlines() if line.lstrip().startswith('{"level"')]
    assert log_lines == []

    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("inv_")}
    assert set(rows) == {"inv_acme_1", "inv_jane_1", "inv_bright_1"}
    # Ignition total, Xero total, paid: each with two decimals and the currency.
    assert AMOUNT.findall(rows["inv_jane_1"]) == [("550.00", "AUD")] * 3
    assert AMOUNT.findall(rows["inv_acme_1"]) == [("360.01", "AUD"), ("360.01", "AUD"), ("200.00", "AUD")]
    amounts = AMOUNT.findall(result.stdout)
    assert amounts, result.stdout
    assert all(re.fullmatch(r"-?[\d,]+\.\d{2}", number) for number, _ in amounts), amounts
    assert not re.search(r"(?<![\d.])\d+\.\d(?!\d)", "\n".join(rows.values())), "an amount with one decimal"
