"""Xero -> Ignition: a DRAFT sales invoice a bookkeeper marks in Xero becomes an Ignition invoice
draft (Ignition's MCP server, its only write path); a person finishes it in Ignition with one click,
and the finished invoice comes back onto the same Xero invoice, never a second one.

- ``trigger``: which Xero invoices are marked (pure);
- ``drafting``: the draft built from a Xero invoice, totals to the cent or refused (pure);
- ``records``: the per-invoice record that makes the draft exactly once (DynamoDB state table);
- ``service``: the use case the sync worker runs, and the round trip's link for the invoice sync;
- ``events``: Xero's INVOICE webhook events as queue messages for the sync worker;
- ``safety_net``: what the reconciliation reports (marked without a draft, drafts left waiting).

docs/xero-to-ignition.md explains the feature, its set-up and its limits.
"""
