"""Hooks every test run needs: the chaos suite's figures, printed at the end of the run (the xdist
controller never loads tests/chaos/conftest.py, so the hooks live here)."""

from tests.chaos.report import pytest_runtest_logreport, pytest_terminal_summary

__all__ = ["pytest_runtest_logreport", "pytest_terminal_summary"]
