"""Xero -> Ignition's exactly-once draft against the MCP emulator itself (sandbox/ignition_mcp.py over a
local port, the real client in shared/ignition/mcp.py), in both readings of ``list_invoices``: the
stricter one (unfinished drafts are not listed, the default) and the lenient one (they are).

A crash between create_invoice_draft and saving the draft record is a record store whose write of
``drafted`` fails once; RATE_LIMITED is the emulator's own limit. In both readings the emulator ends
with exactly one draft; under the stricter reading the retry is parked with words for the bookkeeper
instead of making a second draft, and the two ways out (the draft finished in Ignition, or a replay
that accepts making it anew) each end with one draft linked to the Xero invoice."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest

from sandbox.ignition_mcp import McpLimits
from shared.config import RecordType
from shared.ignition.drafts import CreatedDraft, IgnitionMcpRateLimited, InvoiceDraftRequest
from shared.ignition.mcp import IgnitionMcpClient
from shared.models.events import SyncEvent
from shared.models.ignition import IgnitionInvoice
from shared.reconcile.model import DRAFT_UNCONFIRMED
from shared.reconcile.wording import plain
from shared.xero_to_ignition.records import DraftRecord, DynamoDraftRecordStore
from shared.xero_to_ignition.safety_net import findings
from shared.xero_to_ignition.service import DraftUnconfirmed, RoundTrip, XeroToIgnition
from shared.xero_to_ignition.trigger import marker_of
from tests.fakes import InMemoryMappingStore
from tests.unit.test_ignition_mcp import CLIENT, World, world, world_module  # noqa: F401 - fixtures
from tests.unit.test_xero_to_ignition import (
    RULES,
    THREE_LINES_TOTAL,
    Crash,
    FakeXero,
    event_for,
    xero_invoice,
)

CONTACT = "c0ffee00-0000-4000-8000-000000000001"  # the contact xero_invoice() bills


class CrashingRecords(DynamoDraftRecordStore):
    """The state table's record store, whose write of one state fails once (the worker died)."""

    def __init__(self, table: str) -> None:
        super().__init__(table)
        self.crash_on_state: str | None = None

    def put(self, record: DraftRecord, *, previous: DraftRecord | None) -> DraftRecord:
        if self.crash_on_state == record.state:
            self.crash_on_state = None
            raise Crash(f"died before recording {record.state}")
        return super().put(record, previous=previous)


class LimitedOnce:
    """The MCP client, with the emulator's per-user limit spent for the next create_invoice_draft."""

    def __init__(self, client: IgnitionMcpClient, emulators: World) -> None:
        self.client = client
        self.world = emulators
        self.limit_next_create = False
        self.list_tax_rates = client.list_tax_rates
        self.list_services = client.list_services
        self.find_drafts = client.find_drafts

    def create_invoice_draft(self, request: InvoiceDraftRequest) -> CreatedDraft:
        if self.limit_next_create:
            self.limit_next_create = False
            self.world.mcp.limits = McpLimits(per_user_minute=0)
            try:
                return self.client.create_invoice_draft(request)
            finally:
                self.world.mcp.limits = McpLimits()
        return self.client.create_invoice_draft(request)


class Flow:
    def __init__(self, emulators: World, table: str) -> None:
        self.world = emulators
        self.invoice = xero_invoice()
        self.marker = marker_of(str(self.invoice.InvoiceID))
        self.records = CrashingRecords(table)
        self.xero = FakeXero(self.invoice)
        mappings = InMemoryMappingStore()
        mappings.owners[(RecordType.CLIENT, CONTACT)] = CLIENT
        client, _ = emulators.connected()
        self.drafts = LimitedOnce(client, emulators)
        self.service = XeroToIgnition(
            xero=self.xero, drafts=self.drafts, mappings=mappings, records=self.records, rules=RULES
        )

    def emulator_drafts(self) -> list[dict[str, object]]:
        state = httpx.get(f"{self.world.url}/_emulator/state", trust_env=False).json()
        return [d for d in state["invoice_drafts"] if self.marker in str(d["reference"])]

    def record(self) -> DraftRecord:
        record = self.records.get(self.marker)
        assert record is not None
        return record

    def crash_after_the_call(self) -> None:
        """The first try makes the draft, then dies before recording it."""
        self.records.crash_on_state = "drafted"
        with pytest.raises(Crash):
            self.service.handle(event_for(self.invoice))

    def parked(self) -> DraftUnconfirmed:
        """The retry under the stricter reading: it cannot see the draft, so it is parked."""
        with pytest.raises(DraftUnconfirmed) as parked:
            self.service.handle(event_for(self.invoice))
        return parked.value

    def unconfirmed_draft(self) -> dict[str, object]:
        """A draft made but never recorded, its retry parked: the one draft the emulator holds."""
        self.crash_after_the_call()
        self.parked()
        (draft,) = self.emulator_drafts()
        return draft


@pytest.fixture(params=["stricter", "lenient"])
def flow(request: pytest.FixtureRequest, world: World, state_table: str) -> Iterator[Flow]:  # noqa: F811
    """Each test once per reading of list_invoices."""
    world.mcp.list_invoices_drafts = request.param == "lenient"
    yield Flow(world, state_table)
    world.mcp.list_invoices_drafts = False


@pytest.fixture
def strict(world: World, state_table: str) -> Flow:  # noqa: F811
    """The stricter reading only (the emulator's default): unfinished drafts are not listed."""
    return Flow(world, state_table)


def replay_anew(flow: Flow) -> SyncEvent:
    """The event as ``replay dlq --create-anew`` puts it back on the queue."""
    return event_for(flow.invoice).model_copy(update={"force": True, "source": "replay"})


def test_given_a_crash_after_the_mcp_call_when_redelivered_twice_then_exactly_one_draft_in_either_reading(
    flow: Flow,
) -> None:
    flow.crash_after_the_call()

    outcomes = []
    for at in ("2026-11-20T09:00:00.000", "2026-11-20T09:05:00.000"):  # redelivered, then a later edit
        try:
            outcomes.append(flow.service.handle(event_for(flow.invoice, at=at)).action)
        except DraftUnconfirmed as parked:
            outcomes.append(parked.category)

    (draft,) = flow.emulator_drafts()
    if flow.world.mcp.list_invoices_drafts:  # found by its reference: recorded, never made again
        assert outcomes == ["skipped_duplicate", "skipped_duplicate"]
        assert (flow.record().state, flow.record().draft_id) == ("drafted", draft["id"])
    else:  # not listed: the retry cannot tell, so it asks a person instead of making a second
        assert outcomes == ["draft_unconfirmed", "draft_unconfirmed"]
        assert flow.record().state == "unconfirmed"


def test_given_the_stricter_reading_when_a_retry_cannot_see_the_draft_then_parked_in_words_and_reported(
    strict: Flow,
) -> None:
    flow = strict
    flow.crash_after_the_call()

    reason = flow.parked().reason

    (draft,) = flow.emulator_drafts()
    assert "a draft may already exist in Ignition for INV-0042" in reason
    assert f'"{draft["reference"]}"' in reason and "--create-anew" in reason
    (finding,) = findings([flow.invoice], [flow.record()], RULES, now=flow.record().intent_at)
    assert finding.category == "ignition_draft" and finding.detail == f"{DRAFT_UNCONFIRMED}{reason}"
    happened, action, _ = plain(finding, "acme")
    assert "may already exist" in happened and "--create-anew" in action


def test_given_an_unconfirmed_draft_when_a_person_finishes_it_then_it_is_linked_and_later_events_find_it(
    strict: Flow,
) -> None:
    flow = strict
    draft = flow.unconfirmed_draft()

    url = f"{flow.world.url}/_emulator/invoice-drafts/{draft['id']}/finalise"
    finished = httpx.post(url, trust_env=False)
    origin = RoundTrip(flow.records).origin(IgnitionInvoice.model_validate(finished.json()["invoice"]))
    replayed = flow.service.handle(event_for(flow.invoice))

    assert origin == flow.invoice.InvoiceID
    assert flow.record().state == "finalised"
    assert replayed.action == "skipped_duplicate"
    assert len(flow.emulator_drafts()) == 1


def test_given_an_unconfirmed_draft_deleted_in_ignition_when_replayed_to_create_anew_then_one_draft(
    strict: Flow,
) -> None:
    flow = strict
    lost = flow.unconfirmed_draft()
    del flow.world.mcp.drafts[str(lost["id"])]  # the bookkeeper deleted it in Ignition

    anew = flow.service.handle(replay_anew(flow))
    again = flow.service.handle(replay_anew(flow))

    (draft,) = flow.emulator_drafts()
    assert (anew.action, anew.xero_id) == ("drafted", draft["id"])
    assert again.action == "skipped_duplicate"
    assert (flow.record().state, flow.record().draft_id) == ("drafted", draft["id"])


def test_given_rate_limited_by_the_emulator_when_retried_then_one_draft_without_asking_anyone(
    flow: Flow,
) -> None:
    flow.drafts.limit_next_create = True
    with pytest.raises(IgnitionMcpRateLimited):
        flow.service.handle(event_for(flow.invoice))
    held = flow.record()
    flow.world.ignition.clock.advance(timedelta(minutes=1).total_seconds())

    outcome = flow.service.handle(event_for(flow.invoice))

    (draft,) = flow.emulator_drafts()
    assert held.state == "held" and "RATE_LIMITED" in (held.reason or "")
    assert (outcome.action, flow.record().draft_id) == ("drafted", draft["id"])
    assert draft["total"] == str(THREE_LINES_TOTAL)
