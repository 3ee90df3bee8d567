"""The run's working set: both sides' compact rows in an SQLite file under /tmp, joined with SQL.

Why on disk: 100,000 records a side held as Python objects would cost hundreds of MB; here memory
is SQLite's page cache (capped below) plus one page of API results, whatever the size of the
organisation. The file is also the checkpoint: a run that stops early uploads it, and the next run
downloads it and carries on from the phase (and page) it reached.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import astuple
from decimal import Decimal
from pathlib import Path
from typing import Any

from shared.money import Money
from shared.reconcile.compare import (
    AllocationRow,
    ClientRow,
    ContactRow,
    InvoiceRow,
    MappingInfo,
    XeroInvoiceRow,
    XeroPaymentRow,
)
from shared.reconcile.model import CATEGORY_ORDER, Discrepancy

# SQLite page cache in KiB (negative = KiB): the memory bound of the join.
CACHE_KIB = 16_384

# What an Ignition row ends with: its mapping (compare.MappingInfo) and the record kept for a re-queue.
_MAPPED = "map_xero_id TEXT, map_updated_at TEXT, map_synced_at TEXT, raw TEXT"
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS ign_client (
    slug TEXT PRIMARY KEY, name TEXT, email TEXT, state TEXT, external_client_id TEXT,
    xero_contact_id TEXT, updated_at TEXT, {_MAPPED}, email_key TEXT);
CREATE TABLE IF NOT EXISTS xero_contact (
    contact_id TEXT PRIMARY KEY, number TEXT, name TEXT, email TEXT, status TEXT, updated TEXT,
    email_key TEXT, name_key TEXT);
CREATE TABLE IF NOT EXISTS ign_invoice (
    slug TEXT PRIMARY KEY, client_slug TEXT, number TEXT, state TEXT, payment_state TEXT, currency TEXT,
    total TEXT, expected_total TEXT, updated_at TEXT, {_MAPPED});
CREATE TABLE IF NOT EXISTS xero_invoice (
    invoice_id TEXT PRIMARY KEY, key_slug TEXT, number TEXT, status TEXT, currency TEXT, total TEXT,
    amount_paid TEXT, updated TEXT);
CREATE TABLE IF NOT EXISTS ign_alloc (
    alloc_id TEXT PRIMARY KEY, payment_slug TEXT, invoice_slug TEXT, client_slug TEXT, state TEXT,
    amount TEXT, currency TEXT, updated_at TEXT, {_MAPPED});
CREATE TABLE IF NOT EXISTS xero_payment (
    payment_id TEXT PRIMARY KEY, key_slug TEXT, invoice_id TEXT, amount TEXT, status TEXT, updated TEXT);
CREATE TABLE IF NOT EXISTS dead_letter (
    record_type TEXT, record_id TEXT, category TEXT, reason TEXT, PRIMARY KEY (record_type, record_id));
CREATE TABLE IF NOT EXISTS discrepancy (
    key TEXT PRIMARY KEY, seq INTEGER, rank INTEGER, body TEXT);
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS xc_number ON xero_contact(number);
CREATE INDEX IF NOT EXISTS xc_email ON xero_contact(email_key);
CREATE INDEX IF NOT EXISTS xc_name ON xero_contact(name_key);
CREATE INDEX IF NOT EXISTS ic_email ON ign_client(email_key);
CREATE INDEX IF NOT EXISTS ic_map ON ign_client(map_xero_id);
CREATE INDEX IF NOT EXISTS xi_key ON xero_invoice(key_slug);
CREATE INDEX IF NOT EXISTS xi_number ON xero_invoice(number);
CREATE INDEX IF NOT EXISTS ii_map ON ign_invoice(map_xero_id);
CREATE INDEX IF NOT EXISTS xp_key ON xero_payment(key_slug, invoice_id);
CREATE INDEX IF NOT EXISTS ia_map ON ign_alloc(map_xero_id);
CREATE INDEX IF NOT EXISTS ia_payment ON ign_alloc(payment_slug);
CREATE INDEX IF NOT EXISTS ia_invoice ON ign_alloc(invoice_slug);
CREATE INDEX IF NOT EXISTS ds_rank ON discrepancy(rank, seq);
"""


def _lower(value: str | None) -> str | None:
    return value.strip().casefold() if value and value.strip() else None


class WorkSet:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
        self._db.execute("PRAGMA journal_mode = OFF")  # a crash loses the run, not data: rebuilt
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute("PRAGMA temp_store = FILE")
        self._db.executescript(_SCHEMA)
        self._seq = self._scalar("SELECT COALESCE(MAX(seq), 0) FROM discrepancy") or 0

    def close(self) -> None:
        self._db.close()

    def _scalar(self, sql: str, *args: Any) -> Any:
        row = self._db.execute(sql, args).fetchone()
        return None if row is None else row[0]

    # -- progress ---------------------------------------------------------------------------------

    def meta(self, key: str, default: Any = None) -> Any:
        value = self._scalar("SELECT value FROM meta WHERE key = ?", key)
        return default if value is None else json.loads(value)

    def set_meta(self, key: str, value: Any) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    # -- loading (upserts: a resumed phase may read a record twice) -------------------------------

    def _many(self, sql: str, rows: Iterable[tuple[Any, ...]]) -> None:
        self._db.execute("BEGIN")
        self._db.executemany(sql, rows)
        self._db.execute("COMMIT")

    def add_clients(self, rows: Iterable[ClientRow]) -> None:
        self._many(
            "INSERT OR REPLACE INTO ign_client VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (r.slug, r.name, r.email, r.state, r.external_client_id, r.xero_contact_id, r.updated_at,
                 *astuple(r.mapping), r.raw, _lower(r.email))
                for r in rows
            ),
        )  # fmt: skip

    def add_contacts(self, rows: Iterable[ContactRow]) -> None:
        self._many(
            "INSERT OR REPLACE INTO xero_contact VALUES (?,?,?,?,?,?,?,?)",
            ((*astuple(r), _lower(r.email), _lower(r.name)) for r in rows),
        )

    def add_invoices(self, rows: Iterable[InvoiceRow]) -> None:
        self._many(
            "INSERT OR REPLACE INTO ign_invoice VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (r.slug, r.client_slug, r.number, r.state, r.payment_state, r.currency, r.total,
                 r.expected_total, r.updated_at, *astuple(r.mapping), r.raw)
                for r in rows
            ),
        )  # fmt: skip

    def add_xero_invoices(self, rows: Iterable[XeroInvoiceRow]) -> None:
        self._many("INSERT OR REPLACE INTO xero_invoice VALUES (?,?,?,?,?,?,?,?)", (astuple(r) for r in rows))

    def add_allocations(self, rows: Iterable[AllocationRow]) -> None:
        self._many(
            "INSERT OR REPLACE INTO ign_alloc VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                (r.alloc_id, r.payment_slug, r.invoice_slug, r.client_slug, r.state, r.amount, r.currency,
                 r.updated_at, *astuple(r.mapping), r.raw)
                for r in rows
            ),
        )  # fmt: skip

    def add_xero_payments(self, rows: Iterable[XeroPaymentRow]) -> None:
        self._many("INSERT OR REPLACE INTO xero_payment VALUES (?,?,?,?,?,?)", (astuple(r) for r in rows))

    def add_dead_letter(self, record_type: str, record_id: str, category: str, reason: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO dead_letter VALUES (?,?,?,?)", (record_type, record_id, category, reason)
        )

    def build_indexes(self) -> None:
        self._db.executescript(_INDEXES)

    # -- joins --------------------------------------------------------------------------------------

    def dead_letters(self) -> list[tuple[str, str, str, str]]:
        return list(self._db.execute("SELECT record_type, record_id, category, reason FROM dead_letter"))

    def is_dead(self, record_type: str, record_id: str) -> bool:
        return (
            self._scalar(
                "SELECT 1 FROM dead_letter WHERE record_type = ? AND record_id = ?", record_type, record_id
            )
            is not None
        )

    def clients(self) -> Iterator[tuple[ClientRow, ContactRow | None]]:
        """Each Ignition client with its Xero contact: the mapped one, else the one carrying its
        slug as ContactNumber (an active one first)."""
        rows = self._db.execute(
            """
            SELECT c.slug, c.name, c.email, c.state, c.external_client_id, c.xero_contact_id, c.updated_at,
                   c.map_xero_id, c.map_updated_at, c.map_synced_at, c.raw,
                   x.contact_id, x.number, x.name, x.email, x.status, x.updated
            FROM ign_client c
            LEFT JOIN xero_contact x ON x.contact_id = COALESCE(c.map_xero_id, (
                SELECT k.contact_id FROM xero_contact k WHERE k.number = c.slug
                ORDER BY k.status = 'ACTIVE' DESC LIMIT 1))
            """
        )
        for r in rows:
            client = ClientRow(r[0], r[1], r[2], r[3], r[4], r[5], r[6], MappingInfo(r[7], r[8], r[9]), r[10])
            yield client, (ContactRow(*r[11:17]) if r[11] is not None else None)

    def contact_candidates(self, client: ClientRow) -> list[ContactRow]:
        """Xero contacts the sync's matching would consider for an unlinked client."""
        rows = self._db.execute(
            """SELECT contact_id, number, name, email, status, updated FROM xero_contact
               WHERE number = ? OR (email_key IS NOT NULL AND email_key = ?) OR name_key = ?
                  OR contact_id = ?""",
            (client.slug, _lower(client.email), _lower(client.name), (client.xero_contact_id or "").lower()),
        )
        return [ContactRow(*r) for r in rows]

    def owner_of_contact(self, contact_id: str) -> str | None:
        value = self._scalar("SELECT slug FROM ign_client WHERE map_xero_id = ?", contact_id)
        return None if value is None else str(value)

    def duplicate_numbers(self, prefix: str) -> Iterator[tuple[str, list[str]]]:
        rows = self._db.execute(
            """SELECT number, GROUP_CONCAT(contact_id) FROM xero_contact
               WHERE status = 'ACTIVE' AND substr(number, 1, ?) = ?
               GROUP BY number HAVING COUNT(*) > 1""",
            (len(prefix), prefix),
        )
        for number, ids in rows:
            yield number, sorted(ids.split(","))

    def duplicate_emails(self) -> Iterator[tuple[str, list[str], list[str]]]:
        """(e-mail, active contact ids, Ignition client slugs) where the e-mail belongs to an
        Ignition client and has more active Xero contacts than Ignition clients."""
        rows = self._db.execute(
            """SELECT x.email_key, GROUP_CONCAT(x.contact_id), COUNT(*) AS n,
                      (SELECT GROUP_CONCAT(c.slug) FROM ign_client c WHERE c.email_key = x.email_key)
               FROM xero_contact x
               WHERE x.status = 'ACTIVE' AND x.email_key IN (SELECT email_key FROM ign_client)
               GROUP BY x.email_key
               HAVING n > (SELECT COUNT(*) FROM ign_client c WHERE c.email_key = x.email_key)"""
        )
        for email, ids, _, slugs in rows:
            yield email, sorted(ids.split(",")), sorted(slugs.split(","))

    def orphan_contacts(self, prefix: str, before: str) -> Iterator[ContactRow]:
        rows = self._db.execute(
            """SELECT contact_id, number, name, email, status, updated FROM xero_contact x
               WHERE status = 'ACTIVE' AND substr(number, 1, ?) = ? AND COALESCE(updated, '') < ?
                 AND NOT EXISTS (SELECT 1 FROM ign_client c WHERE c.slug = x.number)
                 AND NOT EXISTS (SELECT 1 FROM ign_client c WHERE c.map_xero_id = x.contact_id)""",
            (len(prefix), prefix, before),
        )
        for r in rows:
            yield ContactRow(*r)

    def invoices(self) -> Iterator[tuple[InvoiceRow, XeroInvoiceRow | None]]:
        rows = self._db.execute(
            """
            SELECT i.slug, i.client_slug, i.number, i.state, i.payment_state, i.currency, i.total,
                   i.expected_total, i.updated_at, i.map_xero_id, i.map_updated_at, i.map_synced_at, i.raw,
                   x.invoice_id, x.key_slug, x.number, x.status, x.currency, x.total, x.amount_paid, x.updated
            FROM ign_invoice i
            LEFT JOIN xero_invoice x ON x.invoice_id = COALESCE(i.map_xero_id, (
                SELECT k.invoice_id FROM xero_invoice k WHERE k.key_slug = i.slug
                ORDER BY k.status IN ('VOIDED', 'DELETED') LIMIT 1))
            """
        )
        for r in rows:
            invoice = InvoiceRow(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], MappingInfo(r[9], r[10], r[11]), r[12]
            )
            yield invoice, (XeroInvoiceRow(*r[13:21]) if r[13] is not None else None)

    def written_outside(self) -> Iterator[tuple[InvoiceRow, XeroInvoiceRow]]:
        """Ignition invoices whose number a live Xero invoice carries without our key (its Reference
        has no slug of ours), other than the one the sync linked: written by someone else, most
        likely Ignition's own Xero integration."""
        rows = self._db.execute(
            """
            SELECT i.slug, i.client_slug, i.number, i.state, i.payment_state, i.currency, i.total,
                   i.expected_total, i.updated_at, i.map_xero_id, i.map_updated_at, i.map_synced_at, i.raw,
                   x.invoice_id, x.key_slug, x.number, x.status, x.currency, x.total, x.amount_paid, x.updated
            FROM ign_invoice i JOIN xero_invoice x ON x.number = i.number
            WHERE i.number IS NOT NULL AND i.number <> '' AND x.key_slug IS NULL
              AND x.status NOT IN ('VOIDED', 'DELETED')
              AND (i.map_xero_id IS NULL OR i.map_xero_id <> x.invoice_id)
            ORDER BY i.number
            """
        )
        for r in rows:
            invoice = InvoiceRow(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], MappingInfo(r[9], r[10], r[11]), r[12]
            )
            yield invoice, XeroInvoiceRow(*r[13:21])

    def orphan_invoices(self, before: str) -> Iterator[XeroInvoiceRow]:
        rows = self._db.execute(
            """SELECT * FROM xero_invoice x
               WHERE key_slug IS NOT NULL AND status NOT IN ('VOIDED', 'DELETED')
                 AND COALESCE(updated, '') < ?
                 AND NOT EXISTS (SELECT 1 FROM ign_invoice i WHERE i.slug = x.key_slug)
                 AND NOT EXISTS (SELECT 1 FROM ign_invoice i WHERE i.map_xero_id = x.invoice_id)""",
            (before,),
        )
        for r in rows:
            yield XeroInvoiceRow(*r)

    def allocations(self) -> Iterator[tuple[AllocationRow, XeroPaymentRow | None]]:
        rows = self._db.execute(
            """
            SELECT a.alloc_id, a.payment_slug, a.invoice_slug, a.client_slug, a.state, a.amount, a.currency,
                   a.updated_at, a.map_xero_id, a.map_updated_at, a.map_synced_at, a.raw,
                   p.payment_id, p.key_slug, p.invoice_id, p.amount, p.status, p.updated
            FROM ign_alloc a
            LEFT JOIN xero_payment p ON p.payment_id = COALESCE(a.map_xero_id, (
                SELECT k.payment_id FROM xero_payment k
                WHERE k.key_slug = a.payment_slug AND k.invoice_id = (
                    SELECT COALESCE(i.map_xero_id, (
                        SELECT x.invoice_id FROM xero_invoice x WHERE x.key_slug = a.invoice_slug LIMIT 1))
                    FROM ign_invoice i WHERE i.slug = a.invoice_slug)
                ORDER BY k.status = 'DELETED' LIMIT 1))
            """
        )
        for r in rows:
            allocation = AllocationRow(
                r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], MappingInfo(r[8], r[9], r[10]), r[11]
            )
            yield allocation, (XeroPaymentRow(*r[12:18]) if r[12] is not None else None)

    def orphan_payments(self, before: str) -> Iterator[XeroPaymentRow]:
        rows = self._db.execute(
            """SELECT * FROM xero_payment p
               WHERE key_slug IS NOT NULL AND COALESCE(status, '') != 'DELETED' AND COALESCE(updated, '') < ?
                 AND NOT EXISTS (SELECT 1 FROM ign_alloc a WHERE a.payment_slug = p.key_slug)
                 AND NOT EXISTS (SELECT 1 FROM ign_alloc a WHERE a.map_xero_id = p.payment_id)""",
            (before,),
        )
        for r in rows:
            yield XeroPaymentRow(*r)

    def invoices_with_payment_issues(self) -> set[str]:
        """Invoice slugs one of whose payments is itself reported (bounded by the report's size)."""
        found = set()
        for (body,) in self._db.execute("SELECT body FROM discrepancy WHERE body LIKE '%\"payment\"%'"):
            discrepancy = Discrepancy.model_validate_json(body)
            if discrepancy.record_type == "payment" and discrepancy.ignition_id:
                found.add(discrepancy.ignition_id.split(":", 1)[-1])
        return found

    def mapped_but_unseen(self, kind: str) -> list[str]:
        """Mapped Xero ids the listing did not return: confirmed with IDs= calls before reporting."""
        sql = {
            "client": "SELECT map_xero_id FROM ign_client c WHERE map_xero_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM xero_contact x WHERE x.contact_id = c.map_xero_id)",
            "invoice": "SELECT map_xero_id FROM ign_invoice c WHERE map_xero_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM xero_invoice x WHERE x.invoice_id = c.map_xero_id)",
            "payment": "SELECT map_xero_id FROM ign_alloc c WHERE map_xero_id IS NOT NULL AND NOT EXISTS "
            "(SELECT 1 FROM xero_payment x WHERE x.payment_id = c.map_xero_id)",
        }[kind]
        return [r[0] for r in self._db.execute(sql)]

    # -- discrepancies ------------------------------------------------------------------------------

    def describe(self, item: Discrepancy) -> Discrepancy:
        """The finding with what a bookkeeper knows it by (client name, invoice number, amount and
        currency), read from the rows this run already loaded: Ignition's first, Xero's where
        Ignition has none (an orphan). Nothing is fetched; a value no row holds stays empty."""
        if item.client_name or item.invoice_number or item.amount:
            return item
        name: str | None = None
        number: str | None = None
        amount: tuple[str | None, str | None] = (None, None)
        client_slug: str | None = None
        kind, ignition_id, xero_id = str(item.record_type), item.ignition_id, item.xero_id
        if kind == "client":
            client_slug = ignition_id
            if xero_id and not self._scalar("SELECT 1 FROM ign_client WHERE slug = ?", ignition_id or ""):
                name = self._scalar("SELECT name FROM xero_contact WHERE contact_id = ?", xero_id)
        elif kind == "invoice":
            row = self._db.execute(
                "SELECT client_slug, number, total, currency FROM ign_invoice WHERE slug = ?",
                (ignition_id or "",),
            ).fetchone()
            if row is None and xero_id:
                row = self._db.execute(
                    "SELECT NULL, number, total, currency FROM xero_invoice WHERE invoice_id = ?", (xero_id,)
                ).fetchone()
            if row is not None:
                client_slug, number, amount = row[0], row[1], (row[2], row[3])
        elif kind == "payment":
            # An allocation "<payment>:<invoice>", or a dead letter's bare payment slug.
            row = self._db.execute(
                """SELECT a.client_slug, i.number, a.amount, a.currency FROM ign_alloc a
                   LEFT JOIN ign_invoice i ON i.slug = a.invoice_slug
                   WHERE a.alloc_id = ? OR a.payment_slug = ? LIMIT 1""",
                (ignition_id or "", ignition_id or ""),
            ).fetchone()
            if row is None and xero_id:
                row = self._db.execute(
                    """SELECT NULL, x.number, p.amount, x.currency FROM xero_payment p
                       LEFT JOIN xero_invoice x ON x.invoice_id = p.invoice_id WHERE p.payment_id = ?""",
                    (xero_id,),
                ).fetchone()
            if row is not None:
                client_slug, number, amount = row[0], row[1], (row[2], row[3])
        if name is None and client_slug:
            name = self._scalar("SELECT name FROM ign_client WHERE slug = ?", client_slug)
        money = None
        if amount[0] is not None and amount[1] and len(amount[1]) == 3:
            money = Money(amount=Decimal(amount[0]), currency=amount[1])
        if name is None and number is None and money is None:
            return item
        return item.model_copy(
            update={"client_name": name, "invoice_number": number or None, "amount": money}
        )

    def add_discrepancy(self, discrepancy: Discrepancy) -> bool:
        """Record it once: a second finding with the same key is dropped. True when new."""
        discrepancy = self.describe(discrepancy)
        self._seq += 1
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO discrepancy VALUES (?, ?, ?, ?)",
            (
                discrepancy.key,
                self._seq,
                CATEGORY_ORDER.index(discrepancy.category),
                discrepancy.model_dump_json(),
            ),
        )
        return cursor.rowcount == 1

    def update_discrepancy(self, discrepancy: Discrepancy) -> None:
        self._db.execute(
            "UPDATE discrepancy SET body = ? WHERE key = ?", (discrepancy.model_dump_json(), discrepancy.key)
        )

    def discrepancies(self) -> Iterator[Discrepancy]:
        for (body,) in self._db.execute("SELECT body FROM discrepancy ORDER BY rank, seq").fetchall():
            yield Discrepancy.model_validate_json(body)

    def iter_discrepancies(self) -> Iterator[Discrepancy]:
        """Streaming, for the report writers (no list of everything in memory)."""
        cursor = self._db.cursor()
        cursor.execute("SELECT body FROM discrepancy ORDER BY rank, seq")
        while batch := cursor.fetchmany(500):
            for (body,) in batch:
                yield Discrepancy.model_validate_json(body)

    def raw_record(self, record_type: str, ignition_id: str) -> str | None:
        table, column = {
            "client": ("ign_client", "slug"),
            "invoice": ("ign_invoice", "slug"),
            "payment": ("ign_alloc", "payment_slug"),
        }[record_type]
        value = self._scalar(f"SELECT raw FROM {table} WHERE {column} = ? AND raw IS NOT NULL", ignition_id)  # noqa: S608
        return None if value is None else str(value)

    def counts(self) -> dict[str, int]:
        """Discrepancies per category."""
        return self._count_by("category")

    def action_counts(self) -> dict[str, int]:
        """Discrepancies per action taken (requeued, reported, ...)."""
        return self._count_by("action")

    def _count_by(self, field: str) -> dict[str, int]:
        bodies = self._db.execute("SELECT body FROM discrepancy")
        return dict(Counter(json.loads(body)[field] for (body,) in bodies))

    def size(self, table: str) -> int:
        return int(self._scalar(f"SELECT COUNT(*) FROM {table}"))  # noqa: S608
