"""What the spec suites share: the converted spec, a fresh emulator and a bearer for its API."""

from __future__ import annotations

import pytest

from sandbox.clock import Clock
from sandbox.xero_emulator import DEFAULT_TENANT_ID, XeroEmulator
from tests.contract.test_xero_emulator_spec import ACCOUNTING_SPEC, Spec, _load


@pytest.fixture(scope="session")
def spec() -> Spec:
    return Spec(_load(ACCOUNTING_SPEC))


@pytest.fixture
def emulator() -> XeroEmulator:
    return XeroEmulator(clock=Clock())


@pytest.fixture
def headers(emulator: XeroEmulator) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {emulator.issue_token_set()['access_token']}",
        "xero-tenant-id": DEFAULT_TENANT_ID,
    }
