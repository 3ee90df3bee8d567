"""Builds the real adapters behind the sync's ports from settings and configuration: the token
providers and the Ignition client are the same for the sync, the poller and the reconciliation.

Called lazily on the first event, not at import: a function whose secrets are not filled in yet
still starts, and reports a clear error per event instead of a Lambda init failure.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypedDict

import httpx

from shared.config import (
    HistoryNotes,
    IgnitionAccess,
    IntegrationConfig,
    RecordType,
    SyncSettings,
    XeroAccess,
)
from shared.contacts import ContactSync
from shared.errors import PermanentSyncError
from shared.gather import CallGather, GatheredXero
from shared.ignition.budget import IgnitionRequestBudget
from shared.ignition.reporting import IgnitionReportingClient
from shared.invoices import InvoiceSync
from shared.models.events import SyncEvent
from shared.money import AmountUnit
from shared.oauth import (
    IGNITION_TOKEN_LOCK,
    XERO_TOKEN_LOCK,
    ClientCredentialsTokenProvider,
    DynamoRefreshJournal,
    RefreshingTokenProvider,
    RefreshOutcome,
    SecretTokenStore,
    TokenProvider,
    TokenProviderOptions,
    read_client_credentials,
)
from shared.outcome import SyncOutcome
from shared.payments import PaymentSync
from shared.store.locks import DynamoLeaseLock
from shared.store.mappings import DynamoMappingStore
from shared.store.tax_rates import SharedTaxRates
from shared.xero.budget import DynamoCallBudget
from shared.xero.client import XeroCall, XeroClient
from shared.xero_to_ignition.events import is_xero_invoice_event
from shared.xero_to_ignition.wiring import XeroToIgnitionParts, build_xero_to_ignition

XERO_REAUTHORISE = "run `python -m cli connect xero --client NAME` and then replay the DLQ"
IGNITION_REAUTHORISE = "run `python -m cli connect ignition --client NAME` and then replay the DLQ"


class LedgerParts(TypedDict):
    xero: XeroClient | GatheredXero
    ignition: IgnitionReportingClient
    store: DynamoMappingStore
    unit: AmountUnit
    history_notes: HistoryNotes
    max_clock_skew: timedelta


@dataclass
class SyncService:
    contacts: ContactSync
    invoices: InvoiceSync
    payments: PaymentSync
    xero_to_ignition: XeroToIgnitionParts | None = None
    # Set when the sync gathers its batches' Xero calls (``batching.enabled``): the threads of a
    # batch enlist in it (``shared/collector.py``).
    gather: CallGather | None = None

    def apply(self, event: SyncEvent) -> SyncOutcome:
        if self.xero_to_ignition is not None and is_xero_invoice_event(event):
            return self.xero_to_ignition.handle(event)  # a Xero invoice, shared/xero_to_ignition
        handlers = {
            RecordType.CLIENT: self.contacts.handle,
            RecordType.INVOICE: self.invoices.handle,
            RecordType.PAYMENT: self.payments.handle,
        }
        return handlers[event.record_type](event)


def xero_token_provider(
    settings: XeroAccess, config: IntegrationConfig, on_refresh: Callable[[RefreshOutcome], None] | None
) -> tuple[TokenProvider, str | None]:
    """The provider for the configured auth mode, and the tenant id stored with the token set."""
    credentials = read_client_credentials(settings.xero_client_secret_id, provider="xero")
    store = SecretTokenStore(settings.xero_token_secret_id, provider="xero")
    token_url = f"{config.xero.identity_url}/connect/token"
    options = TokenProviderOptions(on_refresh=on_refresh, reauthorise_hint=XERO_REAUTHORISE)
    provider: TokenProvider
    if config.xero.auth_mode == "client_credentials":
        provider = ClientCredentialsTokenProvider(token_url, credentials, store, options)
    else:
        provider = RefreshingTokenProvider(
            token_url,
            credentials,
            store,
            DynamoLeaseLock(settings.state_table, XERO_TOKEN_LOCK),
            options,
            journal=DynamoRefreshJournal(settings.state_table, XERO_TOKEN_LOCK),
        )
    stored = store.load()
    return provider, stored.tenant_id if stored else None


def ignition_token_provider(settings: IgnitionAccess, config: IntegrationConfig) -> TokenProvider:
    # One secret holds Ignition's client credentials and its rotating token set.
    return RefreshingTokenProvider(
        config.ignition.token_url,
        read_client_credentials(settings.ignition_api_secret_id, provider="ignition"),
        SecretTokenStore(settings.ignition_api_secret_id, provider="ignition"),
        DynamoLeaseLock(settings.state_table, IGNITION_TOKEN_LOCK),
        TokenProviderOptions(provider="ignition", reauthorise_hint=IGNITION_REAUTHORISE),
        journal=DynamoRefreshJournal(settings.state_table, IGNITION_TOKEN_LOCK),
    )


def xero_client(
    settings: XeroAccess,
    config: IntegrationConfig,
    *,
    on_call: Callable[[XeroCall], None] | None = None,
    on_token_refresh: Callable[[RefreshOutcome], None] | None = None,
) -> XeroClient:
    """The connected organisation's client, spending from its one call budget."""
    tokens, tenant_id = xero_token_provider(settings, config, on_token_refresh)
    if tenant_id is None:
        raise PermanentSyncError(
            "the Xero token secret has no tenant_id: connect the organisation first "
            "(`python -m cli connect xero`)",
            category="not_connected",
        )
    budget = DynamoCallBudget(settings.state_table, tenant_id, config.xero)
    return XeroClient(config.xero, tokens, tenant_id, budget, on_call=on_call)


def ignition_client(
    settings: IgnitionAccess,
    config: IntegrationConfig,
    *,
    http: httpx.Client | None = None,
    background: bool = False,
    tokens: TokenProvider | None = None,
    **options: Any,
) -> IgnitionReportingClient:
    """The Reporting API client, spending from the practice's one request budget (``background``:
    only above the reserve left to the sync and the reconciliation). ``tokens``: a provider kept
    across runs (its cached access token saves the secret reads of a new one)."""
    tokens = tokens or ignition_token_provider(settings, config)
    return IgnitionReportingClient.from_config(
        config.ignition,
        tokens.access_token,
        force_refresh=tokens.force_refresh,
        http=http,
        budget=IgnitionRequestBudget.in_table(settings.state_table, config.ignition, background=background),
        **options,
    )


def build_sync_service(
    settings: SyncSettings,
    config: IntegrationConfig,
    *,
    on_xero_call: Callable[[XeroCall], None] | None = None,
    on_token_refresh: Callable[[RefreshOutcome], None] | None = None,
    on_ignition_mcp_refresh: Callable[[RefreshOutcome], None] | None = None,
) -> SyncService:
    client = xero_client(settings, config, on_call=on_xero_call, on_token_refresh=on_token_refresh)
    gather = (
        CallGather(max_wait_seconds=config.batching.gather_wait_seconds) if config.batching.enabled else None
    )
    xero: XeroClient | GatheredXero = client if gather is None else GatheredXero(client, gather)
    ignition = ignition_client(settings, config)
    store = DynamoMappingStore(settings.state_table)
    contacts = ContactSync(
        xero=xero, ignition=ignition, store=store, rules=config.contacts, ignition_config=config.ignition
    )
    xero_to_ignition = build_xero_to_ignition(
        settings, config, xero=client, mappings=store, on_token_refresh=on_ignition_mcp_refresh
    )
    # What the invoice and payment use cases are both built with.
    unit, notes = config.ignition.amount_unit, config.xero.history_notes
    skew = timedelta(seconds=config.ignition.max_clock_skew_seconds)
    parts = LedgerParts(
        xero=xero, ignition=ignition, store=store, unit=unit, history_notes=notes, max_clock_skew=skew
    )
    invoices = InvoiceSync(
        **parts,
        contacts=contacts,
        rules=config.invoices,
        drafted_from=xero_to_ignition.round_trip.origin,
        # One read of the tax rates an hour for all of the sync's environments, not one each.
        tax_rates=SharedTaxRates(xero, settings.state_table, client.tenant_id),
    )
    payments = PaymentSync(**parts, invoices=invoices, rules=config.payments)
    return SyncService(
        contacts=contacts,
        invoices=invoices,
        payments=payments,
        xero_to_ignition=xero_to_ignition,
        gather=gather,
    )
