"""The feature's adapters, built for the sync worker (shared/wiring.py calls this)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.config import IntegrationConfig, RecordType
from shared.models.events import SyncEvent
from shared.oauth import RefreshOutcome
from shared.outcome import SyncOutcome
from shared.store.mappings import MappingStore
from shared.xero_to_ignition.records import DynamoDraftRecordStore
from shared.xero_to_ignition.service import AUDIT_PREFIX, RoundTrip, XeroInvoiceReader, XeroToIgnition

if TYPE_CHECKING:
    from shared.config import IgnitionMcpAccess


@dataclass(frozen=True)
class XeroToIgnitionParts:
    # None where the feature is off: a Xero invoice event (a replay, say) is then skipped.
    drafts: XeroToIgnition | None
    # Always on: a draft made before the feature was turned off still comes back to its invoice.
    round_trip: RoundTrip

    def handle(self, event: SyncEvent) -> SyncOutcome:
        """One Xero invoice event from the queue (``events.is_xero_invoice_event``)."""
        if self.drafts is None:
            return SyncOutcome(
                "skipped_state",
                f"{AUDIT_PREFIX}{event.record_id}",
                decisions=["runtime.xero_to_ignition is not enabled"],
                record_type=RecordType.INVOICE,
            )
        return self.drafts.handle(event)


def build_xero_to_ignition(
    settings: IgnitionMcpAccess,
    config: IntegrationConfig,
    *,
    xero: XeroInvoiceReader,
    mappings: MappingStore,
    on_token_refresh: Callable[[RefreshOutcome], None] | None = None,
) -> XeroToIgnitionParts:
    records = DynamoDraftRecordStore(settings.state_table)
    rules = config.xero_to_ignition
    drafts = None
    if rules.enabled:
        # Imported only where the feature is on: the MCP SDK adds to every other firm's cold start.
        from shared.ignition.mcp import IgnitionMcpClient

        drafts = XeroToIgnition(
            xero=xero,
            drafts=IgnitionMcpClient.from_settings(settings, config, on_refresh=on_token_refresh),
            mappings=mappings,
            records=records,
            rules=rules,
            invoice_slug_prefix=config.reconcile.invoice_slug_prefix,
            app_url=rules.app_url,
        )
    return XeroToIgnitionParts(drafts=drafts, round_trip=RoundTrip(records))
