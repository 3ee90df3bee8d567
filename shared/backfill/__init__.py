"""Use case: the first-time sync of a firm that already has records in Ignition and in Xero.

Every Ignition client, invoice and payment is matched against what Xero already holds, with the
same rules as the live sync (``shared.matching.choose_contact``, ``shared.billing.plan_invoice`` and
``allocate_payment``), and what is missing is written in batches. The cost is a few reads plus
one call per 50 writes, instead of two calls per record:

1. read every Ignition record of the phase (Reporting API, 500 a page) and the stored mappings
   (DynamoDB BatchGetItem); mapped records are done already;
2. read every Xero record of the phase once (``pageSize=1000``) and index it (contacts by
   ContactNumber, lower-cased e-mail, case-folded name and ContactID; invoices by InvoiceNumber and
   Reference; payments by Reference and invoice);
3. decide in memory per record: link to an existing Xero record, create one, skip or fail (with the
   reason; the backfill goes on);
4. write creates and updates 50 per call (``summarizeErrors=false``), then the mappings, each in
   its conditional transaction, and a checkpoint.

Every Xero call goes through the organisation's shared call budget (``DynamoCallBudget``), so a
backfill and the live sync never together exceed Xero's limits. When today's budget runs out the
run pauses with a checkpoint; running it again resumes. Interrupted anywhere, a rerun is harmless:
a record written to Xero but not yet mapped is found again by its external key (ContactNumber =
Ignition slug, InvoiceNumber/Reference, payment Reference) and linked, not written twice.

History notes (one call per record) are not written by the backfill; the audit trail in DynamoDB
records every decision.

Layout: ``engine.py`` runs the phases on one checkpoint; ``contacts.py``, ``invoices.py`` and
``payments.py`` each read, decide and hand their writes to ``batch.py``'s ``BackfillRun``, which
writes 50 a call, maps, audits, checkpoints, reports progress and waits out Xero's limits;
``ports.py`` says what the backfill needs from its adapters, ``results.py`` what it reports.
"""

from shared.backfill.engine import Backfill
from shared.backfill.ports import CheckpointPort, IgnitionPort, MappingsPort, XeroPort
from shared.backfill.results import (
    BackfillOptions,
    BackfillPaused,
    BackfillResult,
    Failure,
    ProgressUpdate,
)

__all__ = [
    "Backfill",
    "BackfillOptions",
    "BackfillPaused",
    "BackfillResult",
    "CheckpointPort",
    "Failure",
    "IgnitionPort",
    "MappingsPort",
    "ProgressUpdate",
    "XeroPort",
]
