"""The ``xero_to_ignition`` section of the integration configuration (``IntegrationConfig``).

Here rather than in shared/config.py so the feature's settings live with the feature; strict as
every configuration section is (an unknown key is an error, never silently ignored).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class XeroToIgnitionRules(BaseModel):
    """Xero -> Ignition (opt-in per firm, docs/xero-to-ignition.md): a DRAFT sales invoice a
    bookkeeper marks in Xero becomes an Ignition invoice draft through Ignition's MCP server."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    # A DRAFT whose Reference starts with this (trimmed, any case) is marked; None: not used.
    reference_prefix: str | None = Field(default="IGN:", min_length=1, max_length=50)
    # A line carrying this tracking option marks the invoice too; both or neither.
    tracking_category: str | None = Field(default=None, min_length=1, max_length=100)
    tracking_option: str | None = Field(default=None, min_length=1, max_length=100)
    # True: the reference prefix AND the tracking option; False: either one.
    require_both: bool = False
    # The reconciliation reports drafts nobody has finished in Ignition for longer than this.
    waiting_draft_days: int = Field(default=3, ge=1, le=365)
    # Xero account code -> Ignition service (its id, code or name); lines of other accounts get none.
    services_by_account_code: dict[str, str] = Field(default_factory=dict)
    # Also match a line's description to an Ignition service of that name (ignoring case).
    match_services_by_name: bool = False
    # A note in the Xero invoice's history with the draft's Ignition link (one Xero call).
    history_note: bool = True
    # Where the tool's app_path (the draft's link) is opened.
    app_url: str = Field(default="https://app.ignitionapp.com", pattern=r"^https?://")

    @model_validator(mode="after")
    def _a_usable_mark(self) -> XeroToIgnitionRules:
        if (self.tracking_category is None) != (self.tracking_option is None):
            raise ValueError("tracking_category and tracking_option go together")
        if self.reference_prefix is None and self.tracking_option is None:
            raise ValueError(
                "set reference_prefix or tracking_category/tracking_option: nothing marks an invoice"
            )
        if self.require_both and (self.reference_prefix is None or self.tracking_option is None):
            raise ValueError("require_both needs reference_prefix and tracking_category/option")
        return self
